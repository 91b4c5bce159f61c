/**
 * The worker's side of the conversation's pictures: files decoded in the worker (several at once; one that fails is
 * named and left out, the others kept), what the UI shows of each (file size, original size, thumbnail) beside what
 * the session keeps (pixels, tiles, image tokens, cached features), removal before sending, the longest-image-edge
 * setting, the context meter's numbers, and New chat.
 */
import type { ChatSession } from '../session/chat-session';
import type { ConversationImageInfo } from '../session/types';
import { errorMessage } from '../errors';
import type { ChatImageInfo, EngineApi } from './api';
import type { DecodedImage } from './image-input';

export type ConversationApi = Pick<EngineApi, 'addImages' | 'removeImage' | 'listImages' | 'contextUsage' | 'setLongestImageEdge' | 'newChat'>;

/** What the session does not keep of a picture file, for the UI. */
type FileFacts = Pick<ChatImageInfo, 'bytes' | 'originalWidth' | 'originalHeight' | 'scaledDown' | 'thumbnail'>;

export function createConversationState(
  session: ChatSession,
  decodeImage: (image: Blob, name: string, maxEdge: number) => Promise<DecodedImage>,
): ConversationApi {
  /** Per picture id of the session. */
  const facts = new Map<number, FileFacts>();

  const describe = (info: ConversationImageInfo): ChatImageInfo => {
    const known = facts.get(info.id);
    if (!known) throw new Error(`The worker lost the file of picture ${info.id} (${info.name}).`);
    return { ...info, ...known };
  };

  /** The session's pictures, described; facts of pictures the session dropped (New chat) are forgotten. */
  const list = (): ChatImageInfo[] => {
    const images = session.images();
    const live = new Set(images.map((image) => image.id));
    for (const id of facts.keys()) if (!live.has(id)) facts.delete(id);
    return images.map(describe);
  };

  return {
    async addImages(files) {
      if (files.length === 0) throw new Error('Choose at least one picture.');
      session.checkIdle('adding pictures');
      const added: ChatImageInfo[] = [];
      const rejected: { name: string; message: string }[] = [];
      // One at a time: each decode holds a canvas of the picture.
      for (const { file, name } of files) {
        try {
          // The processor uses at most size.longest_edge; keep a bit more for a sharp thumbnail, never the full 12000 px.
          const decoded = await decodeImage(file, name, session.imageEdgeLimit);
          const info = session.addImage(decoded.pixels, name);
          facts.set(info.id, {
            bytes: file.size,
            originalWidth: decoded.originalWidth,
            originalHeight: decoded.originalHeight,
            scaledDown: decoded.scaledDown,
            thumbnail: decoded.thumbnail,
          });
          added.push(describe(info));
        } catch (error) {
          rejected.push({ name, message: errorMessage(error) });
        }
      }
      // Tiles and tokens of the added ones as the list has them (the same numbers, one source).
      const byId = new Map(list().map((image) => [image.id, image]));
      return { added: added.map((image) => byId.get(image.id) ?? image), rejected, usage: session.contextUsage() };
    },

    removeImage(id) {
      session.removeImage(id);
      facts.delete(id);
      return session.contextUsage();
    },

    listImages() {
      return list();
    },

    contextUsage(question) {
      return session.contextUsage(question);
    },

    setLongestImageEdge(edge) {
      session.setLongestImageEdge(edge);
      return session.contextUsage();
    },

    newChat() {
      session.newChat();
      facts.clear();
    },
  };
}
