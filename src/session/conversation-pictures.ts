/**
 * The pictures and videos of one conversation: the ones already asked about (in prompt order) and the ones waiting
 * for the next question, each picture's and each video frame's vision-tower features computed once and kept on the GPU
 * (allocator category 'imageFeatures') for later turns, the longest-edge setting, and the context counts.
 *
 * A turn holds pictures or videos, never both (transformers' SmolVLM processor refuses both in one call); earlier turns
 * may hold the other kind: each entry of the one prompt is expanded by its own rule (see README "Video questions").
 */
import type { VlmModel } from '../engine/model';
import { idefics3ResizedSize } from '../model-io/image-grid';
import type { ChatMessage, PreparedImage, PreparedInputs, ProcessorImage, PromptMedia, PromptMediaSize, VideoInput, VlmProcessor } from '../model-io/processor';
import { formatFrameTimestamp } from '../model-io/video-prompt';
import type { ContextUsage, ConversationImageInfo, ConversationVideoInfo, ImageTokenLayout, PromptImage } from './types';

export { checkContext, ContextOverflowError } from './context-check';

/** A picture of the conversation, as decoded; also each frame of a video (the unit whose features are cached). */
export interface ConversationImage {
  id: number;
  name: string;
  pixels: ProcessorImage;
}

/** A video of the conversation: its sampled, decoded frames, each with its own id and label ("clip.mp4 frame 00:05"). */
export interface ConversationVideo {
  id: number;
  name: string;
  video: VideoInput;
  frames: ConversationImage[];
}

type ConversationItem = { kind: 'image'; image: ConversationImage } | { kind: 'video'; video: ConversationVideo };

const mixingMessage =
  'A question can carry pictures or videos, not both (transformers\' SmolVLM processor refuses images and videos in one call): ' +
  'ask about the waiting ones first, or remove them.';

/** Features of one picture, for the tile count they were computed with. */
interface CachedFeatures {
  buffer: GPUBuffer;
  numTiles: number;
}

/** The pictures of one prompt as the runs get them: features in prompt order, and what the result reports. */
export interface PictureInputs {
  features: GPUBuffer[];
  /** Pictures and video frames that went through the vision tower for this question, and ones whose features were cached. */
  encoded: number;
  reused: number;
  /** Of `encoded` and `reused`, the video frames (a video question reports frames, not pictures). */
  framesEncoded: number;
  framesReused: number;
  /** The vision tower over the `encoded` pictures, until the GPU finished them (ms; set by the session, 0 when none ran). */
  visionMs: number;
  images: PromptImage[];
}

export function pictureLayout(image: PreparedImage, model: VlmModel): ImageTokenLayout {
  const tile = model.config.vision.imageSize;
  const split = image.rows > 0 && image.cols > 0;
  return {
    rows: image.rows,
    cols: image.cols,
    tokensPerSide: Math.round(Math.sqrt(model.config.imageSeqLen)),
    resizedWidth: split ? image.cols * tile : tile,
    resizedHeight: split ? image.rows * tile : tile,
  };
}

export class ConversationPictures {
  /** Pictures and videos of the turns already asked, in prompt order. */
  private sent: ConversationItem[] = [];
  /** Pictures or videos that go with the next question. */
  private pending: ConversationItem[] = [];
  private nextId = 1;
  /** Vision-tower features per picture (or frame) id. */
  private features = new Map<number, CachedFeatures>();
  private visionRuns = 0;
  /** Longest picture edge for the processor; null = the model's own. */
  private edge: number | null = null;

  /** Vision-tower runs so far (one per picture or frame not found in the feature cache). */
  get visionPasses(): number {
    return this.visionRuns;
  }

  get longestEdge(): number | null {
    return this.edge;
  }

  /** Every picture and video of the next prompt, in order (sent ones, then the pending ones), as the processor takes them. */
  get media(): PromptMedia[] {
    return [...this.sent, ...this.pending].map((item) => (item.kind === 'image' ? item.image.pixels : item.video.video));
  }

  /** Every picture and every video frame of the next prompt, in prompt order: the units whose features are cached. */
  get featureUnits(): ConversationImage[] {
    return [...this.sent, ...this.pending].flatMap((item) => (item.kind === 'image' ? [item.image] : item.video.frames));
  }

  /** Pictures and videos waiting for the next question. */
  get pendingCounts(): { images: number; videos: number } {
    const videos = this.pending.filter((item) => item.kind === 'video').length;
    return { images: this.pending.length - videos, videos };
  }

  add(pixels: ProcessorImage, name: string): ConversationImage {
    if (this.pendingCounts.videos > 0) throw new Error(mixingMessage);
    const image: ConversationImage = { id: this.nextId++, name, pixels };
    this.pending.push({ kind: 'image', image });
    return image;
  }

  /** A video for the next question; its frames get their own ids (their features are cached one by one). */
  addVideo(video: VideoInput, name = video.file): ConversationVideo {
    if (this.pendingCounts.images > 0) throw new Error(mixingMessage);
    const frames = video.frames.map((pixels, i) => ({ id: this.nextId++, name: `${name} frame ${formatFrameTimestamp(video.timestamps[i] ?? 0)}`, pixels }));
    const added: ConversationVideo = { id: this.nextId++, name, video, frames };
    this.pending.push({ kind: 'video', video: added });
    return added;
  }

  /** Takes a waiting picture or video off the next question. */
  remove(id: number): void {
    const idOf = (item: ConversationItem): number => (item.kind === 'image' ? item.image.id : item.video.id);
    if (this.sent.some((item) => idOf(item) === id)) throw new Error('This picture or video is already part of the conversation; start a new chat to drop it.');
    const index = this.pending.findIndex((item) => idOf(item) === id);
    if (index < 0) throw new Error(`No picture or video ${id} waits for the next question.`);
    const [removed] = this.pending.splice(index, 1);
    // A waiting item's features exist only after a question that failed; they are of no use without it.
    if (removed.kind === 'video') for (const frame of removed.video.frames) this.dropFeatures(frame.id);
  }

  /** The pending pictures became part of the conversation (their question was answered). */
  markSent(): void {
    this.sent = [...this.sent, ...this.pending];
    this.pending = [];
  }

  /** A new conversation with the same pictures (a new model): they all go with its first question again. */
  requeueAll(model: VlmModel | null): void {
    this.freeFeatures(model);
    this.pending = [...this.sent, ...this.pending];
    this.sent = [];
  }

  clear(model: VlmModel | null): void {
    this.freeFeatures(model);
    this.sent = [];
    this.pending = [];
  }

  /** Changes the longest edge (checked against the tile size); features made at another edge are dropped. */
  setLongestEdge(edge: number | null, processor: VlmProcessor | null, model: VlmModel | null): void {
    if (edge !== null && (!Number.isInteger(edge) || (processor && edge < processor.tileSize))) {
      throw new Error(`The longest image edge must be a whole number of at least one tile (${processor?.tileSize ?? '?'} px), got ${edge}.`);
    }
    if (edge === this.edge) return;
    this.edge = edge;
    this.freeFeatures(model);
  }

  /** Every picture in prompt order; tiles and image tokens at the current longest edge once a model is loaded. */
  info(ready: { processor: VlmProcessor; model: VlmModel } | null): ConversationImageInfo[] {
    const describe = (image: ConversationImage, sent: boolean): ConversationImageInfo => {
      const imageTokens = ready ? ready.processor.imageTokensFor(image.pixels.width, image.pixels.height, this.edge ?? undefined) : null;
      const resized = ready ? idefics3ResizedSize(image.pixels.width, image.pixels.height, this.edge ?? ready.processor.defaultLongestEdge) : null;
      return {
        id: image.id,
        name: image.name,
        width: image.pixels.width,
        height: image.pixels.height,
        resizedWidth: resized?.width ?? null,
        resizedHeight: resized?.height ?? null,
        sent,
        tiles: ready && imageTokens !== null ? imageTokens / ready.model.config.imageSeqLen : null,
        imageTokens,
        featuresCached: this.features.has(image.id),
      };
    };
    const pictures = (items: ConversationItem[], sent: boolean): ConversationImageInfo[] =>
      items.flatMap((item) => (item.kind === 'image' ? [describe(item.image, sent)] : []));
    return [...pictures(this.sent, true), ...pictures(this.pending, false)];
  }

  /** Every video in prompt order, with its frames' ids and labels and, once a model is loaded, the tokens it takes. */
  videoInfo(processor: VlmProcessor | null): ConversationVideoInfo[] {
    const describe = ({ id, name, video, frames }: ConversationVideo, sent: boolean): ConversationVideoInfo => ({
      id,
      name,
      sent,
      nativeFps: video.nativeFps,
      totalFrames: video.totalFrames,
      durationSeconds: video.durationSeconds,
      frameIndices: [...video.frameIndices],
      timestamps: [...video.timestamps],
      frames: frames.map((frame) => ({ id: frame.id, name: frame.name })),
      imageTokens: processor ? frames.length * processor.imageSeqLen : null,
      promptTokens: processor ? processor.videoPromptTokensFor(video) : null,
      featuresCached: frames.every((frame) => this.features.has(frame.id)),
    });
    const videos = (items: ConversationItem[], sent: boolean): ConversationVideoInfo[] =>
      items.flatMap((item) => (item.kind === 'video' ? [describe(item.video, sent)] : []));
    return [...videos(this.sent, true), ...videos(this.pending, false)];
  }

  /** Each picture by its size and each video by its frames' times: what the prompt's length depends on. */
  private sizes(items: ConversationItem[]): PromptMediaSize[] {
    return items.map((item) =>
      item.kind === 'image'
        ? { kind: 'image', width: item.image.pixels.width, height: item.image.pixels.height }
        : { kind: 'video', timestamps: item.video.video.timestamps, durationSeconds: item.video.video.durationSeconds },
    );
  }

  /** Prompt tokens every entry expands to (image tokens and markers; a video's timestamp lines too) at the current longest edge. */
  promptTokens(processor: VlmProcessor): number {
    return [...this.sent, ...this.pending].reduce((n, item) => n + this.expansionTokens(item, processor), 0);
  }

  /**
   * How full the context is: the conversation's own text (last prompt and answer, less what that prompt's pictures
   * and videos expanded to) plus every entry's expansion at the current longest edge (a changed edge re-processes the
   * sent ones too), split into image tokens and the rest (markers and a video's timestamp lines, counted as text).
   */
  usage(conversation: { tokens: number; pictureTokens: number }, model: VlmModel, processor: VlmProcessor): ContextUsage {
    const tokensOf = (items: ConversationItem[]): number => items.reduce((n, item) => n + this.imageTokensOf(item, processor), 0);
    const longestImageEdge = this.edge ?? processor.defaultLongestEdge;
    const imageTokens = tokensOf(this.sent) + tokensOf(this.pending);
    const markers = this.promptTokens(processor) - imageTokens;
    const textTokens = conversation.tokens - conversation.pictureTokens + markers;
    return {
      conversationTokens: conversation.tokens,
      pendingImageTokens: tokensOf(this.pending),
      textTokens,
      imageTokens,
      usedTokens: textTokens + imageTokens,
      questionTokens: 0,
      // A square picture at the longest edge is split into the most tiles.
      nextImageTokens: processor.imageTokensFor(longestImageEdge, longestImageEdge, longestImageEdge),
      contextTokens: model.config.text.maxPositionEmbeddings,
      longestImageEdge,
      defaultLongestImageEdge: processor.defaultLongestEdge,
      tileSize: processor.tileSize,
    };
  }

  /**
   * `usage` with the next question in it: the tokens of the prompt `messages` make, counted exactly as prepare()
   * tokenizes it (the chat template with every picture and video expanded, at the current longest edge).
   */
  withQuestion(usage: ContextUsage, messages: ChatMessage[], processor: VlmProcessor): ContextUsage {
    const promptTokens = processor.promptTokensFor(messages, this.sizes([...this.sent, ...this.pending]), this.edge ?? undefined);
    const questionTokens = promptTokens - usage.usedTokens;
    return { ...usage, questionTokens, textTokens: usage.textTokens + questionTokens, usedTokens: promptTokens };
  }

  private imageTokensOf(item: ConversationItem, processor: VlmProcessor): number {
    if (item.kind === 'video') return item.video.frames.length * processor.imageSeqLen;
    return processor.imageTokensFor(item.image.pixels.width, item.image.pixels.height, this.edge ?? undefined);
  }

  private expansionTokens(item: ConversationItem, processor: VlmProcessor): number {
    if (item.kind === 'video') return processor.videoPromptTokensFor(item.video.video);
    return processor.imagePromptTokensFor(item.image.pixels.width, item.image.pixels.height, this.edge ?? undefined);
  }

  private dropFeatures(id: number, model: VlmModel | null = null): void {
    const cached = this.features.get(id);
    if (!cached) return;
    if (model) model.ctx.allocator.destroy(cached.buffer);
    else cached.buffer.destroy();
    this.features.delete(id);
  }

  /** Frees every picture's and frame's features (New chat, another model or device, another longest edge). */
  freeFeatures(model: VlmModel | null): void {
    for (const id of [...this.features.keys()]) this.dropFeatures(id, model);
  }

  /**
   * The features of every picture and frame of the prompt, in order: from the cache, or through the vision tower
   * once (then kept, counted by the allocator as 'imageFeatures'). `units` is featureUnits at prepare time.
   */
  inputsFor(model: VlmModel, prepared: PreparedInputs, units: ConversationImage[]): PictureInputs {
    const { vision } = model.config;
    const tileValues = vision.numChannels * vision.imageSize * vision.imageSize;
    const features: GPUBuffer[] = [];
    let encoded = 0;
    let reused = 0;
    let framesEncoded = 0;
    let framesReused = 0;
    if (units.length !== prepared.images.length) throw new Error(`The prompt has ${prepared.images.length} pictures and frames, the conversation ${units.length}.`);
    prepared.images.forEach((image, i) => {
      const unit = units[i];
      let cached = this.features.get(unit.id);
      if (cached && cached.numTiles !== image.numTiles) {
        this.dropFeatures(unit.id, model);
        cached = undefined;
      }
      const isFrame = image.frameOf !== undefined;
      if (cached) {
        reused += 1;
        if (isFrame) framesReused += 1;
      } else {
        const pixels = prepared.pixelValues.subarray(image.firstTile * tileValues, (image.firstTile + image.numTiles) * tileValues);
        cached = { buffer: model.encodeImage(pixels, image.numTiles, 'imageFeatures'), numTiles: image.numTiles };
        this.features.set(unit.id, cached);
        this.visionRuns += 1;
        encoded += 1;
        if (isFrame) framesEncoded += 1;
      }
      features.push(cached.buffer);
    });
    const videoIds = [...this.sent, ...this.pending].flatMap((item) => (item.kind === 'video' ? [item.video.id] : []));
    const images = prepared.images.map((image, i): PromptImage => ({
      id: units[i].id,
      name: units[i].name,
      tiles: image.numTiles,
      imageTokens: image.imageTokenCount,
      firstImageToken: image.firstImageToken,
      layout: pictureLayout(image, model),
      ...(image.frameOf
        ? { video: { id: videoIds[image.frameOf.video], file: prepared.videos[image.frameOf.video].file, frame: image.frameOf.frame, frameIndex: image.frameOf.frameIndex, timestamp: image.frameOf.timestamp } }
        : {}),
    }));
    return { features, encoded, reused, framesEncoded, framesReused, visionMs: 0, images };
  }
}
