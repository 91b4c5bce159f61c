/**
 * The worker's side of the conversation's videos: a file is opened (container only), its frames are sampled as
 * transformers does (VIDEO.md §2, the session's sampler), their prompt tokens are checked against the context before
 * anything is decoded, then only the sampled frames are decoded (progress: frames decoded / total) and the video goes
 * to the session. The UI's facts (codec, container, frame thumbnails) are kept here beside what the session keeps.
 * A file that fails is named and left out; the conversation, the model and the other attachments stay.
 */
import { errorMessage } from '../errors';
import type { ChatVideoInfo, EngineApi, ModelVideoSampling, VideoAddRequest, VideoFrameInfo, VideoProgress, VideoRejection, VideoSampling } from './api';
import type { VideoInput } from '../model-io/processor';
import { formatFrameTimestamp } from '../model-io/video-prompt';
import { sampleVideoFrames, type SampledFrames } from '../model-io/video-sampling';
import type { ContextUsage } from '../session/types';
import { decodeVideoFrames, openVideo, VideoInputError, type OpenedVideo } from './video-input';

/** What the worker needs of the session's videos. */
export interface VideoSession {
  checkIdle(what: string): void;
  /** The model's video_sampling (with the side of the square tile a frame becomes); null without a model or a video path. */
  videoSampling(): ModelVideoSampling | null;
  /** Prompt tokens the expansion of a video sampled so takes; null without a model. */
  videoPromptTokens(sample: SampledFrames): number | null;
  contextUsage(): ContextUsage | null;
  addVideo(video: VideoInput): number;
  removeVideo(id: number): void;
  /** The videos in prompt order; each frame's id is the one the session's prompt pictures (PromptImage.id) carry. */
  videos(): (Pick<ChatVideoInfo, 'id' | 'name' | 'sent' | 'nativeFps' | 'totalFrames' | 'durationSeconds' | 'promptTokens'> & { frames: { id: number }[] })[];
}

export type ConversationVideosApi = Pick<EngineApi, 'videoSampling' | 'addVideos' | 'removeVideo' | 'listVideos'>;

/** What the session does not keep of a video, for the UI. */
type VideoFacts = Pick<ChatVideoInfo, 'bytes' | 'codec' | 'container' | 'width' | 'height' | 'sampling'> & { frames: Omit<VideoFrameInfo, 'id'>[] };

/** Opens and decodes video files; the browser's (mediabunny + WebCodecs) in the worker, replaceable in tests. */
export interface VideoDecoder {
  open(file: Blob, name: string): Promise<OpenedVideo>;
  decode: typeof decodeVideoFrames;
}

export const webCodecsVideoDecoder: VideoDecoder = { open: (file, name) => openVideo(file, name), decode: decodeVideoFrames };

function checkSampling({ fps, maxFrames }: VideoSampling): void {
  if (!(Number.isFinite(fps) && fps > 0)) throw new Error(`Frames per second must be a positive number (got ${fps}).`);
  if (!(Number.isInteger(maxFrames) && maxFrames >= 1)) throw new Error(`Max frames must be a whole number of at least 1 (got ${maxFrames}).`);
}

/**
 * The most frames (at most `upTo`) whose video still fits `room` tokens: tokens grow with the frame count, so a binary
 * search over max frames finds it; 0 when not even one frame fits.
 */
export function framesThatFit(upTo: number, room: number, tokensWith: (maxFrames: number) => number): number {
  let fits = 0;
  let low = 1;
  let high = upTo;
  while (low <= high) {
    const middle = Math.floor((low + high) / 2);
    if (tokensWith(middle) <= room) {
      fits = middle;
      low = middle + 1;
    } else high = middle - 1;
  }
  return fits;
}

export function createConversationVideos(session: VideoSession, decoder: VideoDecoder = webCodecsVideoDecoder): ConversationVideosApi {
  /** Per video id of the session. */
  const facts = new Map<number, VideoFacts>();

  const list = (): ChatVideoInfo[] => {
    const videos = session.videos();
    const live = new Set(videos.map((video) => video.id));
    for (const id of facts.keys()) if (!live.has(id)) facts.delete(id);
    return videos.flatMap((video) => {
      const known = facts.get(video.id);
      if (!known) return [];
      const { frames: sessionFrames, ...rest } = video;
      if (sessionFrames.length !== known.frames.length) throw new Error(`The session holds ${sessionFrames.length} frames of ${video.name}, the worker decoded ${known.frames.length}.`);
      return [{ ...rest, ...known, frames: known.frames.map((frame, i) => ({ ...frame, id: sessionFrames[i].id })) }];
    });
  };

  /** Adds one file, or says why not (a rejection: the file stays out, nothing else changes). */
  const addOne = async (file: Blob, name: string, request: VideoAddRequest, frameSize: number, onProgress: (progress: VideoProgress) => void): Promise<ChatVideoInfo | VideoRejection> => {
    onProgress({ name, stage: 'reading', decoded: 0, total: 0 });
    const video = await decoder.open(file, name);
    try {
      const sampling = { fps: request.fps, maxFrames: request.maxFrames };
      const sample = sampleVideoFrames(video.facts, sampling);
      // Before decoding: does the next prompt with this video (and room for the answer) fit the context?
      const usage = session.contextUsage();
      const tokens = session.videoPromptTokens(sample);
      if (usage && tokens !== null) {
        const room = usage.contextTokens - usage.usedTokens - request.answerTokens;
        if (tokens > room) {
          const fit = framesThatFit(sample.frameIndices.length - 1, room, (maxFrames) => session.videoPromptTokens(sampleVideoFrames(video.facts, { ...sampling, maxFrames })) ?? Infinity);
          const what = fit > 0 ? `${fit} ${fit === 1 ? 'frame fits' : 'frames fit'} (set max frames to ${fit} for this video)` : 'not even one frame fits: remove something or start a New chat';
          return {
            name,
            message:
              `"${name}" would need ${tokens} prompt tokens for its ${sample.frameIndices.length} frames, but the context has room for ${Math.max(0, room)} ` +
              `(${usage.usedTokens} used of ${usage.contextTokens}, ${request.answerTokens} kept for the answer): ${what}.`,
            framesThatFit: fit,
          };
        }
      }
      const frames = await decoder.decode(video, sample.frameIndices, frameSize, (p) => onProgress({ name, stage: 'decoding', decoded: p.decoded, total: p.total }));
      const id = session.addVideo({
        file: name,
        nativeFps: video.facts.nativeFps,
        totalFrames: video.facts.totalFrames,
        durationSeconds: sample.durationSeconds,
        frameIndices: sample.frameIndices,
        timestamps: sample.timestamps,
        frames: frames.map((frame) => frame.pixels),
      });
      facts.set(id, {
        bytes: file.size,
        codec: video.facts.codec,
        container: video.facts.container,
        width: video.facts.width,
        height: video.facts.height,
        sampling,
        frames: frames.map((frame) => ({ index: frame.index, timestamp: frame.timestamp, label: formatFrameTimestamp(frame.timestamp), thumbnail: frame.thumbnail })),
      });
      const added = list().find((info) => info.id === id);
      if (!added) throw new Error(`The session lost video ${name}.`);
      return added;
    } finally {
      video.close();
    }
  };

  return {
    videoSampling() {
      return session.videoSampling();
    },

    async addVideos(files, request, onProgress) {
      if (files.length === 0) throw new Error('Choose at least one video.');
      session.checkIdle('adding videos');
      const model = session.videoSampling();
      if (!model) {
        throw new Error('The loaded model has no video path (SmolVLM). Load SmolVLM2 (a -Video-Instruct model) to ask about videos; the conversation is unchanged.');
      }
      checkSampling(request);
      const added: ChatVideoInfo[] = [];
      const rejected: VideoRejection[] = [];
      // One at a time: each decode holds its frames' pixels until the session has them.
      for (const { file, name } of files) {
        try {
          const result = await addOne(file, name, request, model.frameSize, (progress) => void onProgress(progress));
          if ('message' in result) rejected.push(result);
          else added.push(result);
        } catch (error) {
          rejected.push({ name, message: error instanceof VideoInputError ? error.message : `"${name}" could not be added: ${errorMessage(error)}` });
        }
      }
      return { added, rejected, usage: session.contextUsage() };
    },

    removeVideo(id) {
      session.removeVideo(id);
      facts.delete(id);
      return session.contextUsage();
    },

    listVideos() {
      return list();
    },
  };
}
