/**
 * What a chat session takes and gives: the knobs of one answer, its result and measurements, budget plans, visual-head
 * scores, attention snapshots and benchmark requests. Plain structured-cloneable data, so the worker API re-exports
 * these types unchanged for the UI.
 */
import type { BenchmarkOptions } from '../engine/benchmark';
import type { VideoInput } from '../model-io/processor';
import type { BudgetPolicy } from '../sparsemm/budgets';
import type { TimingComparison } from '../sparsemm/timing-stats';
import type { AnswerFidelity } from './fidelity-types';

/**
 * What the Benchmark tab asks for: the benchmark's own options less what the worker adds (the loaded model, its head
 * scores and the GPU context). `policies` may leave out `full`: the full cache always runs, as every ratio is against it.
 */
export type BenchmarkRequestData = Pick<BenchmarkOptions, 'promptLengths' | 'policies' | 'decodeSteps' | 'warmupSteps' | 'ratio' | 'window'>;

/** The knobs of one answer. */
export interface AskOptions {
  policy: BudgetPolicy;
  /** Average tokens kept per KV head, the window included (64-2048 in the UI). */
  budget: number;
  /** Most recent prompt tokens every head keeps. */
  window: number;
  /** SparseMM: share of the prefix budget every head gets regardless of its score. */
  ratio: number;
  /** Tokens to generate at most. */
  maxNewTokens: number;
}

/** Where the image tokens of a prompt came from (for the attention overlay). */
export interface ImageTokenLayout {
  /** Grid of local tiles (0 x 0 when the picture was not split); the global image always follows. */
  rows: number;
  cols: number;
  /** Side of one tile's token grid (sqrt of tokens per tile). */
  tokensPerSide: number;
  /** Size the processor resized the picture to before cutting tiles (the tiles cover exactly this). */
  resizedWidth: number;
  resizedHeight: number;
}

/**
 * A video for the next question, as the worker (WebCodecs) or the CLI (ffmpeg) decoded it: the track facts, the frames
 * sampled by VIDEO.md §2 (model-io/video-sampling.ts) and one frame per index, at the tile size where possible.
 */
export type { VideoInput };

/** One picture of a prompt: its tiles and image tokens, and where they sit among the prompt's image tokens. */
export interface PromptImage {
  /** The conversation's id of the picture (ConversationImageInfo.id). */
  id: number;
  name: string;
  tiles: number;
  imageTokens: number;
  /** Index of its first image token among the prompt's image tokens (an attention snapshot's weights are in that order). */
  firstImageToken: number;
  layout: ImageTokenLayout;
  /** Set when this is a frame of a video (one tile): the video (ConversationVideoInfo.id) and which frame. */
  video?: { id: number; file: string; frame: number; frameIndex: number; timestamp: number };
}

/** A picture of the conversation, as the chat lists it. */
export interface ConversationImageInfo {
  id: number;
  name: string;
  /** Pixels as decoded (what the processor gets). */
  width: number;
  height: number;
  /** Part of a question already asked (then it can only go with New chat); false: waits for the next question. */
  sent: boolean;
  /**
   * The size the processor resizes it to at the current longest image edge, before tiling (null without a model):
   * what "scaled to" reports for every picture, whether the decoder or the processor scaled it, down or up.
   */
  resizedWidth: number | null;
  resizedHeight: number | null;
  /** Tiles (grid + global image) and image tokens it takes at the current longest image edge (null without a model). */
  tiles: number | null;
  imageTokens: number | null;
  /** Its vision-tower features are on the GPU (a later question reuses them). */
  featuresCached: boolean;
}

/** A video of the conversation, as the chat lists it. */
export interface ConversationVideoInfo {
  id: number;
  /** The file's name. */
  name: string;
  /** Part of a question already asked; false: waits for the next question. */
  sent: boolean;
  nativeFps: number;
  totalFrames: number;
  durationSeconds: number;
  frameIndices: number[];
  timestamps: number[];
  /** Each sampled frame's id and label ("clip.mp4 frame 00:05"), as PromptImage lists them for the overlay and heatmap. */
  frames: { id: number; name: string }[];
  /** Image tokens (frames x tokens per frame) and all the prompt tokens its entry expands to (null without a model). */
  imageTokens: number | null;
  promptTokens: number | null;
  /** Every frame's vision-tower features are on the GPU. */
  featuresCached: boolean;
}

/** What a video would add to the prompt, from its track facts and the sampling settings (nothing decoded). */
export interface VideoTokenEstimate {
  frameIndices: number[];
  timestamps: number[];
  durationSeconds: number;
  /** frames x image tokens per frame. */
  imageTokens: number;
  /** Everything its `<video>` entry expands to (image tokens, timestamp lines, introduction). */
  promptTokens: number;
}

/** How full the model's context is. */
export interface ContextUsage {
  /** Tokens of the conversation so far (last prompt + its answer). */
  conversationTokens: number;
  /** Image tokens the pictures waiting for the next question add. */
  pendingImageTokens: number;
  /** Text tokens of the conversation so far (chat template, questions, answers, the markers around pictures). */
  textTokens: number;
  /** Image tokens of every picture of the next prompt, sent and pending, at the current longest image edge. */
  imageTokens: number;
  /** textTokens + imageTokens: what the next prompt holds (with the question when one was given). */
  usedTokens: number;
  /** Tokens the question given to contextUsage adds with its turn's chat template (in textTokens); 0 without one. */
  questionTokens: number;
  /** Image tokens the largest next picture would add at the current longest image edge (a square one). */
  nextImageTokens: number;
  /** The model's context (text_config.max_position_embeddings). */
  contextTokens: number;
  longestImageEdge: number;
  defaultLongestImageEdge: number;
  /** Lowest longest image edge (one tile). */
  tileSize: number;
}

/** One decode step of a run. */
export interface StepRecord {
  /** Tokens generated after this step (1 = the token from the prefill). */
  step: number;
  /** Bytes of the KV cache that hold tokens after this step (kept prompt tokens + generated ones, K and V). */
  kvBytes: number;
  /** Wall time of this step; 0 for step 1 (that token comes from the prefill, see prefillMs). */
  decodeMs: number;
}

/** Everything measured about one answer. Times are wall clock in the worker. */
export interface RunMetricsData {
  promptTokens: number;
  textTokens: number;
  imageTokens: number;
  /** Image encoding + text prefill + picking the first token (the engine's figure). */
  prefillMs: number;
  /** Of prefillMs: the vision tower over every tile (0 without an image). */
  visionMs: number;
  /** Of prefillMs: the text prefill and picking the first token. */
  textPrefillMs: number;
  /** From the question reaching the worker (image processing and tokenizing included) to the first token. */
  timeToFirstTokenMs: number;
  decodeMsPerToken: number;
  /** Decode speed: 1000 / decodeMsPerToken (0 when only one token was made). */
  tokensPerSecond: number;
  /** Bytes the allocator counted under 'kv' while the answer was generated (measured). */
  kvBytes: number;
  /** The engine's own figure for the same cache (GenerateResult.kvBytes); equal to kvBytes when the counts agree. */
  engineKvBytes: number;
  /** What the same prompt takes with the full cache. */
  fullCacheKvBytes: number;
  /** Largest total the allocator counted over every category while the answer was generated. */
  totalGpuBytes: number;
  weightBytes: number;
  generatedTokens: number;
  /** Pictures that went through the vision tower for this answer, and pictures whose features an earlier turn computed. */
  imagesEncoded: number;
  imagesReused: number;
  /** Of imagesEncoded and imagesReused, the video frames. */
  framesEncoded: number;
  framesReused: number;
  perStep: StepRecord[];
}

export interface RunResult {
  /** The answer as text (special tokens and the stop token removed). */
  answer: string;
  tokenIds: number[];
  /** The policy answer of a greedy comparison: how far it is from the full cache's (top-1 agreement, KL). */
  fidelity?: AnswerFidelity;
  policy: BudgetPolicy;
  options: AskOptions;
  metrics: RunMetricsData;
  stoppedBy: 'eos' | 'max' | 'cancel';
  /** Whether the policy compressed the cache (false for full, or a prompt shorter than the budget). */
  compressed: boolean;
  /** Prefix tokens kept per [layer][KV head] (the recent window comes on top). */
  capacities: number[][];
  /** Recent prompt tokens every KV head keeps besides its prefix selection. */
  windowLength: number;
  /** The first picture's layout; null when the conversation has no image. */
  imageLayout: ImageTokenLayout | null;
  /** Every picture of the prompt, in order. */
  images: PromptImage[];
  /** Things the person should know, e.g. "no visual-head scores: SparseMM used uniform scores". */
  warnings: string[];
}

/** A full-cache answer and the chosen policy's answer to the same question, measured side by side. */
export interface CompareResult {
  full: RunResult;
  /** Null when the policy run did not take place. */
  policy: RunResult | null;
  /** How the two runs compare, measured under the same conditions (session/compare-run.ts). */
  measurements: CompareMeasurements;
}

/** Bytes one decode step reads, per cache: the text weights plus the K/V rows it attends (mean over the steps). */
export interface DecodeBytes {
  /** Weight bytes per step (the same for both caches). */
  weightBytes: number;
  fullKvBytes: number;
  policyKvBytes: number;
  /** (weights + policy K/V) / (weights + full K/V): the policy's share of the full cache's bytes. */
  ratio: number;
  /** 1 / ratio: the decode speedup those bytes allow where decode is bound by memory bandwidth (a GPU). */
  bound: number;
}

/** What Compare measured of its two runs, for the ratios and the notes under them. */
/** How many of a prompt's pictures and video frames went through the vision tower, and how many came from the feature cache. */
export interface VisionCounts {
  encoded: number;
  reused: number;
  /** Of `encoded` and `reused`, the video frames. */
  framesEncoded: number;
  framesReused: number;
}

export interface CompareMeasurements {
  /** How the decode steps were timed: GPU timestamp queries, or wall clock where the adapter has none. */
  timing: 'gpu-timestamps' | 'wall-clock';
  /** The adapter is a CPU emulation (SwiftShader, ...): its times are not GPU times. */
  softwareAdapter: boolean;
  /** The prompt's pictures, once for both runs: through the vision tower now (ms), or from the feature cache. */
  vision: VisionCounts & { ms: number };
  /** Text prefill (with the policy's selection kernels), wall clock per repeat: full cache the baseline. */
  prefill: TimingComparison;
  /** The runs in the order their prefills ran (A B B A ...). */
  prefillOrder: ('full' | 'policy')[];
  /** Per-step decode times of the lockstep decoding: full cache the baseline (median, IQR, verdict). */
  decode: TimingComparison;
  bytes: DecodeBytes;
}

/** A piece of streamed answer. `run` is 0 for a plain answer and the full-cache run of a comparison, 1 for the policy run. */
export interface TokenEvent {
  run: 0 | 1;
  /** Text added since the previous event (may be empty when a token only completes a multi-byte character). */
  delta: string;
  /** The whole answer so far. */
  text: string;
  /** Tokens generated so far. */
  tokens: number;
}

export type TokenCallback = (event: TokenEvent) => void;

/** KV budgets a policy would give the last prompt (for the budget bars before or between runs). */
export interface BudgetPlan {
  promptLength: number;
  compressed: boolean;
  capacities: number[][];
  windowLength: number;
  warnings: string[];
}

/** Visual-head scores of the loaded model. */
export interface HeadScoresInfo {
  /** Mean score per [layer][query head]. */
  matrix: number[][];
  kvHeads: number;
  /** Where they came from: a search in this browser, an imported file, or the cache of an earlier session. */
  origin: 'search' | 'import' | 'cache';
  /** Probe samples per head in the file. */
  samples: number;
}

/** Progress of the visual-head search. */
export interface HeadSearchProgress {
  done: number;
  total: number;
}

export interface HeadSearchOptions {
  samples: number;
  seed?: number;
  maxNewTokens?: number;
}

/** Attention of the last generated token over the image tokens, per (layer, query head). */
export interface AttentionSnapshot {
  layers: number;
  heads: number;
  /** weights[layer][head] = one weight per image token in prompt order. */
  weights: Float32Array[][];
  /** The first picture's layout (weights of picture i start at images[i].firstImageToken). */
  layout: ImageTokenLayout;
  /** Every picture of the prompt, in order. */
  images: PromptImage[];
}
