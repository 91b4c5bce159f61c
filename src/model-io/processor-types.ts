/**
 * What the processor takes and gives (messages, pictures, videos, the prepared prompt) and its interface; the
 * implementation is processor.ts, which re-exports all of this.
 */
import type { RawImage } from '@huggingface/transformers';
import type { ModelConfig } from './config';
import type { RawImageLike, VideoInput } from './video-frames';

/** What the processor needs of a loaded model (a LoadedModel or weight-less LoadedModelFiles both fit). */
export interface ProcessorSource {
  config: ModelConfig;
  files: Map<string, ArrayBuffer>;
}

export interface ChatMessage {
  role: 'user' | 'assistant';
  text: string;
  /**
   * Pictures that go before this message's text, one image entry each in the chat template (as the model card and
   * transformers' Idefics3 processor do it). The pictures handed to prepare() are taken in message order.
   */
  imageCount?: number;
  /** Shorthand for imageCount: 1. */
  hasImage?: boolean;
  /**
   * Videos that go before this message's text, one video entry each (transformers' SmolVLM video path). A message
   * holds pictures or videos, never both (transformers refuses mixing them in one processor call).
   */
  videoCount?: number;
}

/** How many pictures a message carries (imageCount, or 1 for hasImage). */
export function messageImageCount(message: ChatMessage): number {
  return message.imageCount ?? (message.hasImage ? 1 : 0);
}

export function messageVideoCount(message: ChatMessage): number {
  return message.videoCount ?? 0;
}

/** What the processor takes as a picture: a transformers RawImage (the CLI's decoder) or plain pixels (the worker's). */
export type ProcessorImage = RawImage | RawImageLike;

/** A picture or a video of a prompt, in message order. */
export type PromptMedia = ProcessorImage | VideoInput;

/** Where a frame of a video came from (a PreparedImage of a video frame carries it). */
export interface PreparedFrameSource {
  /** Index of its video among the prompt's videos. */
  video: number;
  /** Its position among the video's sampled frames, its frame index in the file and its time in seconds. */
  frame: number;
  frameIndex: number;
  timestamp: number;
}

/** A video of the prompt: its track facts, the sampled frames and the image tokens they take. */
export interface PreparedVideo extends Omit<VideoInput, 'frames'> {
  /** frames x imageSeqLen. */
  imageTokens: number;
  /** Index of its first frame in PreparedInputs.images (its frames follow each other). */
  firstImage: number;
}

/** video_sampling of preprocessor_config.json (SmolVLM2), with the tile each frame becomes. */
export interface VideoSamplingDefaults {
  fps: number;
  maxFrames: number;
  /** Side of the square tile each frame becomes (max_image_size.longest_edge): what decoders should deliver. */
  frameSize: number;
}

/** Where one picture (or one video frame) of a prompt went: its tiles and its run of `<image>` tokens. */
export interface PreparedImage {
  /** Tiles of this picture (local tiles, then its global one). */
  numTiles: number;
  /** Grid of local tiles (0 x 0 when the picture was not split). */
  rows: number;
  cols: number;
  /** Index of its first tile in pixelValues (the pictures' tiles follow each other in prompt order). */
  firstTile: number;
  /** Number of its `<image>` tokens (numTiles * imageSeqLen). */
  imageTokenCount: number;
  /** Index of its first `<image>` token among all image tokens of the prompt (imageTokenPositions). */
  firstImageToken: number;
  /** Set on a video frame (one tile, never split): which video and frame. */
  frameOf?: PreparedFrameSource;
}

export interface PreparedInputs {
  inputIds: Uint32Array;
  /** [numTiles, 3, tileHeight, tileWidth], normalised as the model expects. Empty without an image. */
  pixelValues: Float32Array;
  numTiles: number;
  tileHeight: number;
  tileWidth: number;
  /** Grid of local tiles of the first picture (0 x 0 when it was not split); a global tile always comes last. */
  imageRows: number;
  imageCols: number;
  /** Each picture and each video frame in prompt order; numTiles and imageTokenCount are their sums. */
  images: PreparedImage[];
  /** Each video in prompt order (its frames are in images). */
  videos: PreparedVideo[];
  /** The chat-templated prompt after every `<image>` / `<video>` entry was expanded, before tokenization. */
  promptText: string;
  /** Number of `<image>` tokens in inputIds (numTiles * imageSeqLen). */
  imageTokenCount: number;
  /** Position of every `<image>` token in inputIds, in order (tile-major, as the connector emits them). */
  imageTokenPositions: Uint32Array;
}

/** A picture by its size, or a video by its sampled frames' times (what a prompt's length depends on). */
export type PromptMediaSize =
  | { kind: 'image'; width: number; height: number }
  | { kind: 'video'; timestamps: readonly number[]; durationSeconds: number };

export interface PrepareOptions {
  /**
   * Longest picture edge after the first resize (the processor's size.longest_edge; default the model's own). Lower
   * means fewer tiles, hence fewer image tokens. At least one tile (max_image_size.longest_edge).
   */
  longestEdge?: number;
}

export interface VlmProcessor {
  /**
   * `media`: the pictures and videos of every message, in message order (a single picture or null for one or none).
   * A message with a video is rendered with transformers' video chat template; each frame becomes one tile.
   */
  prepare(media: PromptMedia | readonly PromptMedia[] | null, messages: ChatMessage[], options?: PrepareOptions): Promise<PreparedInputs>;
  /** The model's video_sampling settings; null for a model without a video path (SmolVLM, Idefics3). */
  videoSampling: VideoSamplingDefaults | null;
  /** Prompt tokens a video's `<video>` entry expands to (its timestamped frames, introduction and outro), from its sampled frames' times. */
  videoPromptTokensFor(video: { timestamps: readonly number[]; durationSeconds: number }): number;
  /**
   * Tokens of the prompt `messages` make with these pictures (by size, at `longestEdge`) and videos (by their sampled
   * frames' times): exactly what prepare() would tokenize, without pixels.
   */
  promptTokensFor(messages: ChatMessage[], media: readonly PromptMediaSize[], longestEdge?: number): number;
  /** The model's own longest picture edge (preprocessor_config size.longest_edge) and the tile size (the lowest allowed). */
  defaultLongestEdge: number;
  tileSize: number;
  /**
   * Image tokens a width x height picture takes (tiles x imageSeqLen) at `longestEdge` (default the model's own),
   * computed from the processor's resize rules without touching pixels (for the context meter before a question).
   */
  imageTokensFor(width: number, height: number, longestEdge?: number): number;
  /** Prompt tokens the picture's `<image>` entry expands to: its image tokens plus the markers around its tiles. */
  imagePromptTokensFor(width: number, height: number, longestEdge?: number): number;
  /** The prompt text after the chat template (before `<image>` / `<video>` expansion). */
  chatPrompt(messages: ChatMessage[]): string;
  tokenize(text: string): number[];
  decode(ids: number[], options?: { skipSpecialTokens?: boolean }): string;
  /** Token ids that end generation (`<end_of_utterance>`, the tokenizer's and config's EOS). */
  eosTokenIds: number[];
  imageTokenId: number;
  imageSeqLen: number;
  vocabSize: number;
}
