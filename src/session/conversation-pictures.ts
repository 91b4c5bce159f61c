/**
 * The pictures of one conversation: the ones already asked about (in prompt order) and the ones waiting for the next
 * question, each picture's vision-tower features computed once and kept on the GPU (allocator category
 * 'imageFeatures') for later turns, the longest-edge setting, and the context check made before any GPU work.
 */
import type { VlmModel } from '../engine/model';
import { idefics3ResizedSize } from '../model-io/image-grid';
import type { ChatMessage, PreparedImage, PreparedInputs, ProcessorImage, VlmProcessor } from '../model-io/processor';
import type { ContextUsage, ConversationImageInfo, ImageTokenLayout, PromptImage } from './types';

/** A picture of the conversation, as decoded. */
export interface ConversationImage {
  id: number;
  name: string;
  pixels: ProcessorImage;
}

/** Features of one picture, for the tile count they were computed with. */
interface CachedFeatures {
  buffer: GPUBuffer;
  numTiles: number;
}

/** The pictures of one prompt as the runs get them: features in prompt order, and what the result reports. */
export interface PictureInputs {
  features: GPUBuffer[];
  /** Pictures that went through the vision tower for this question, and ones whose features were cached. */
  encoded: number;
  reused: number;
  /** The vision tower over the `encoded` pictures, until the GPU finished them (ms; set by the session, 0 when none ran). */
  visionMs: number;
  images: PromptImage[];
}

/** A prompt the model's context cannot hold; thrown before any GPU work. */
export class ContextOverflowError extends Error {
  constructor(
    message: string,
    readonly neededTokens: number,
    readonly contextTokens: number,
  ) {
    super(message);
    this.name = 'ContextOverflowError';
  }
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

/** Refuses a prompt that with its answer would not fit the model's context, saying by how much and what to do. */
export function checkContext(model: VlmModel, prepared: PreparedInputs, maxNewTokens: number): void {
  const context = model.config.text.maxPositionEmbeddings;
  const promptTokens = prepared.inputIds.length;
  const needed = promptTokens + maxNewTokens;
  if (needed <= context) return;
  const imageTokens = prepared.imageTokenCount;
  throw new ContextOverflowError(
    `This prompt needs ${promptTokens} tokens (${promptTokens - imageTokens} text, ${imageTokens} image) plus ${maxNewTokens} for the answer: ` +
      `${needed - context} more than the model's context of ${context} tokens. Remove an image, start a new chat, set "longest image edge" lower, or ask for fewer new tokens.`,
    needed,
    context,
  );
}

export class ConversationPictures {
  /** Pictures of the turns already asked, in prompt order. */
  private sent: ConversationImage[] = [];
  /** Pictures that go with the next question. */
  private pending: ConversationImage[] = [];
  private nextId = 1;
  /** Vision-tower features per picture id. */
  private features = new Map<number, CachedFeatures>();
  private visionRuns = 0;
  /** Longest picture edge for the processor; null = the model's own. */
  private edge: number | null = null;

  /** Vision-tower runs so far (one per picture not found in the feature cache). */
  get visionPasses(): number {
    return this.visionRuns;
  }

  get longestEdge(): number | null {
    return this.edge;
  }

  /** Every picture of the next prompt, in order (sent ones, then the pending ones). */
  get all(): ConversationImage[] {
    return [...this.sent, ...this.pending];
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  add(pixels: ProcessorImage, name: string): ConversationImage {
    const image: ConversationImage = { id: this.nextId++, name, pixels };
    this.pending.push(image);
    return image;
  }

  remove(id: number): void {
    if (this.sent.some((image) => image.id === id)) throw new Error('This picture is already part of the conversation; start a new chat to drop it.');
    const index = this.pending.findIndex((image) => image.id === id);
    if (index < 0) throw new Error(`No picture ${id} waits for the next question.`);
    this.pending.splice(index, 1);
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
      const imageTokens = ready ? this.tokensOf(image, ready.processor) : null;
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
    return [...this.sent.map((image) => describe(image, true)), ...this.pending.map((image) => describe(image, false))];
  }

  /** Prompt tokens every picture's entry expands to (image tokens and markers) at the current longest edge. */
  promptTokens(processor: VlmProcessor): number {
    const edge = this.edge ?? undefined;
    return this.all.reduce((n, image) => n + processor.imagePromptTokensFor(image.pixels.width, image.pixels.height, edge), 0);
  }

  /**
   * How full the context is: the conversation's own text (last prompt and answer, less what that prompt's pictures
   * expanded to) plus every picture's expansion at the current longest edge (a changed edge re-processes the sent
   * ones too), split into image tokens and the markers around them (counted as text).
   */
  usage(conversation: { tokens: number; pictureTokens: number }, model: VlmModel, processor: VlmProcessor): ContextUsage {
    const tokensOf = (images: ConversationImage[]): number => images.reduce((n, image) => n + this.tokensOf(image, processor), 0);
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
   * `usage` with the next question in it: the tokens of the prompt `messages` make, counted as the check at send time
   * counts them (the chat template tokenized, each `<image>` entry expanded at the current longest edge).
   */
  withQuestion(usage: ContextUsage, messages: ChatMessage[], processor: VlmProcessor): ContextUsage {
    const templated = processor.tokenize(processor.chatPrompt(messages));
    const entries = templated.filter((id) => id === processor.imageTokenId).length;
    const promptTokens = templated.length - entries + this.promptTokens(processor);
    const questionTokens = promptTokens - usage.usedTokens;
    return { ...usage, questionTokens, textTokens: usage.textTokens + questionTokens, usedTokens: promptTokens };
  }

  private tokensOf(image: ConversationImage, processor: VlmProcessor): number {
    return processor.imageTokensFor(image.pixels.width, image.pixels.height, this.edge ?? undefined);
  }

  /** Frees every picture's features (New chat, another model or device, another longest edge). */
  freeFeatures(model: VlmModel | null): void {
    for (const cached of this.features.values()) {
      if (model) model.ctx.allocator.destroy(cached.buffer);
      else cached.buffer.destroy();
    }
    this.features.clear();
  }

  /**
   * The features of every picture of the prompt, in order: from the cache, or through the vision tower once (then
   * kept, counted by the allocator as 'imageFeatures').
   */
  inputsFor(model: VlmModel, prepared: PreparedInputs, pictures: ConversationImage[]): PictureInputs {
    const { vision } = model.config;
    const tileValues = vision.numChannels * vision.imageSize * vision.imageSize;
    const features: GPUBuffer[] = [];
    let encoded = 0;
    let reused = 0;
    prepared.images.forEach((image, i) => {
      const picture = pictures[i];
      let cached = this.features.get(picture.id);
      if (cached && cached.numTiles !== image.numTiles) {
        model.ctx.allocator.destroy(cached.buffer);
        cached = undefined;
      }
      if (cached) reused += 1;
      else {
        const pixels = prepared.pixelValues.subarray(image.firstTile * tileValues, (image.firstTile + image.numTiles) * tileValues);
        cached = { buffer: model.encodeImage(pixels, image.numTiles, 'imageFeatures'), numTiles: image.numTiles };
        this.features.set(picture.id, cached);
        this.visionRuns += 1;
        encoded += 1;
      }
      features.push(cached.buffer);
    });
    const images = prepared.images.map((image, i) => ({
      id: pictures[i]?.id ?? -1,
      name: pictures[i]?.name ?? `image ${i + 1}`,
      tiles: image.numTiles,
      imageTokens: image.imageTokenCount,
      firstImageToken: image.firstImageToken,
      layout: pictureLayout(image, model),
    }));
    return { features, encoded, reused, visionMs: 0, images };
  }
}
