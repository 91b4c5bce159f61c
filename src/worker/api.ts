/**
 * The contract between the UI and the engine worker. The UI imports only these types and talks to
 * the worker through comlink; every value that crosses the boundary is structured-cloneable
 * (plain objects, arrays, Map, Blob) except callbacks, which the UI wraps with comlink's `proxy`.
 */
import type { BenchmarkPolicySpec, BenchmarkProgress, BenchmarkReport, BenchmarkRun } from '../engine/benchmark';
import type { AdapterSummary } from '../engine/gpu';
import type { ModelLoadStep } from '../engine/model';
import type { WeightFormat } from '../model-io/quantize';
import type { BudgetPolicy } from '../sparsemm/budgets';
import type { FidelitySweepProgress, FidelitySweepRequest, FidelitySweepResult, OcrEvalProgress, OcrEvalRequest, OcrEvalResult } from '../session/fidelity-types';
import type { AskOptions, AttentionSnapshot, BenchmarkRequestData, BudgetPlan, CompareResult, ContextUsage, ConversationImageInfo, HeadScoresInfo, HeadSearchOptions, HeadSearchProgress, RunResult, TokenCallback } from '../session/types';

/** The policies' names and labels (one table, in src/sparsemm/policies.ts): a value the UI takes from below. */
export { policyTable } from '../sparsemm/policies';
export { uniformScoresWarning } from '../session/uniform-scores-note';
/** The budget-sweep list rules (pure, src/sparsemm/fidelity.ts), so the form says what is wrong before a run. */
export { parseBudgetList, sweepPolicies } from '../sparsemm/fidelity';
/** The seeded generator (pure, src/sparsemm/random.ts), so the views demo draws its synthetic data with the same one. */
export { mulberry32 } from '../sparsemm/random';
/** The shared timing rule (pure, src/sparsemm/timing-stats.ts): Compare shows its verdicts and spreads in these words. */
export { describeTimingComparison, formatMedianWithSpread } from '../sparsemm/timing-stats';
export type { StepTimeSummary, TimingComparison } from '../sparsemm/timing-stats';
export type { WeightFormat } from '../model-io/quantize';
/** An image token's rectangle in original pixels (src/sparsemm/image-token-map.ts), which the attention overlay draws. */
export type { ImageTokenRect } from '../sparsemm/image-token-map';

export type { AdapterSummary, BenchmarkPolicySpec, BenchmarkProgress, BenchmarkReport, BenchmarkRun, BudgetPolicy };
/** What a chat session takes and gives (answers, metrics, budget plans, head scores), unchanged for the UI. */
export type * from '../session/types';
/** The fidelity sweep's request, rows and progress (session/fidelity-types.ts). */
export type * from '../session/fidelity-types';

export type InitResult = { ok: true; adapter: AdapterSummary } | { ok: false; error: string };

/** Where the model files come from. Mirrors the loader's ModelSource so the worker can pass it through unchanged. */
export type ModelSourceSpec =
  | { kind: 'hub'; modelId: string; revision?: string }
  | { kind: 'url'; baseUrl: string }
  /** Files picked from a local folder, keyed by their name inside the model folder (e.g. "config.json"). */
  | { kind: 'files'; files: Map<string, Blob> };

/** Progress of one file, as the worker reports it while loading. */
export interface FileProgress {
  file: string;
  loadedBytes: number;
  /** Null while the server has not said how large the file is. */
  totalBytes: number | null;
  fromCache: boolean;
  done: boolean;
  /** Average transfer rate since this file started, in bytes per second (0 when it came from the cache). */
  bytesPerSecond: number;
}

export type ProgressCallback = (progress: FileProgress) => void;

export type { ModelLoadStep };
/** After the files: what the load does on the GPU (uploading the weights, then compiling every kernel). */
export type LoadStepCallback = (step: ModelLoadStep) => void;

export interface ModelFileSummary {
  name: string;
  bytes: number;
}

/** What the UI shows after a load: plain numbers and strings, read from the model's own config and weights. */
export interface ModelSummary {
  /** Hub id, base URL or "local folder". */
  name: string;
  /** The loader's stable id of the source (also its cache key prefix). */
  sourceId: string;
  modelType: string;
  text: {
    layers: number;
    heads: number;
    kvHeads: number;
    headDim: number;
    hiddenSize: number;
    vocabSize: number;
  };
  vision: {
    layers: number;
    heads: number;
    /** Side of one square tile fed to the vision encoder, in pixels. */
    tileSize: number;
    patchSize: number;
    /** Image tokens one tile becomes after the pixel-shuffle connector. */
    tokensPerTile: number;
    /** Largest tile count for one image (grid + global tile), when the preprocessor config says; else null. */
    maxTiles: number | null;
  };
  tensorCount: number;
  /** Bytes of all tensors in the weights file(s). */
  weightBytes: number;
  /** Bytes of every file loaded (weights, config, tokenizer, ...). */
  totalBytes: number;
  /** True when every file came from the browser cache (no network). */
  fromCache: boolean;
  /** Set when the model loaded but could not be saved for offline use (e.g. storage quota). */
  cacheWarning: string | null;
  files: ModelFileSummary[];
  /** The weights on the GPU: the format loaded, its bytes, every format's bytes for this model, what stayed bf16. */
  weights: { format: WeightFormat; gpuBytes: number; bytesByFormat: Record<WeightFormat, number>; note: string | null } | null;
}

/** What each weight format of a model takes on the GPU (EngineApi.weightFormatSizes). */
export interface WeightFormatSizes {
  sourceId: string;
  bytesByFormat: Record<WeightFormat, number>;
}

/** A picture file for the conversation, as the person dropped, pasted or picked it. */
export interface ImageFile {
  file: Blob;
  /** File name as given (shown as text only). */
  name: string;
}

/** A picture of the conversation as the UI shows it: the session's facts plus the file's. */
export interface ChatImageInfo extends ConversationImageInfo {
  /** Size of the file in bytes. */
  bytes: number;
  /** Size the picture had in the file (width and height are what the processor gets). */
  originalWidth: number;
  originalHeight: number;
  /** True when the picture was larger than the processor would use and was scaled down in the worker. */
  scaledDown: boolean;
  /** A small PNG of the picture for the UI (at most 512 px on its longest side). */
  thumbnail: Blob;
}

/** What addImages did with each file: the pictures it added, and the files it left out with why. */
export interface AddImagesResult {
  added: ChatImageInfo[];
  /** Each message names its file (non-images, empty and corrupt files). */
  rejected: { name: string; message: string }[];
  /** Null before a model is loaded. */
  usage: ContextUsage | null;
}

/** A video file for the conversation, as the person dropped, pasted or picked it. */
export interface VideoFile {
  file: Blob;
  /** File name as given (shown as text only). */
  name: string;
}

/** How a video is sampled (VIDEO.md §2): frames per second and the most frames; the model's `video_sampling` by default. */
export interface VideoSampling {
  fps: number;
  maxFrames: number;
}

/** The model's video_sampling: its defaults, and the side of the square tile each frame becomes. */
export interface ModelVideoSampling extends VideoSampling {
  /** Pixels (video_sampling.video_size.longest_edge: 512 for SmolVLM2); a frame is one tile, never split. */
  frameSize: number;
}

/** How to add videos: their sampling, and the tokens to keep free for the answer when checking the context. */
export interface VideoAddRequest extends VideoSampling {
  answerTokens: number;
}

/** One sampled frame of a video, as the strip shows it. */
export interface VideoFrameInfo {
  /** The conversation's id of this frame: an attention snapshot's PromptImage.id names it (the overlay, the heatmap). */
  id: number;
  /** Frame index in the file (presentation order), as the sampler chose it. */
  index: number;
  /** Seconds: index / the track's average frame rate. */
  timestamp: number;
  /** "00:05": the timestamp as the prompt writes it. */
  label: string;
  /** A small JPEG of the frame (its aspect ratio kept). */
  thumbnail: Blob;
}

/** A video of the conversation as the UI shows it: the file's facts, the sampled frames and what they cost. */
export interface ChatVideoInfo {
  id: number;
  name: string;
  /** Size of the file in bytes. */
  bytes: number;
  /** Part of a question already asked; false: waits for the next question. */
  sent: boolean;
  /** "H.264 (AVC)", "VP9", ... and the container ("MP4", "WebM"). */
  codec: string;
  container: string;
  width: number;
  height: number;
  /** The track's facts as the sampler took them (the CLI's ffprobe gives the same). */
  nativeFps: number;
  totalFrames: number;
  durationSeconds: number;
  /** The settings it was sampled with. */
  sampling: VideoSampling;
  frames: VideoFrameInfo[];
  /** Prompt tokens its expansion takes (frame blocks and the timestamp lines); null without a model. */
  promptTokens: number | null;
}

/** Progress of adding one video: reading its container, then decoding its sampled frames. */
export interface VideoProgress {
  name: string;
  stage: 'reading' | 'decoding';
  decoded: number;
  total: number;
}

export type VideoProgressCallback = (progress: VideoProgress) => void;

/** A video left out, with why. */
export interface VideoRejection {
  name: string;
  message: string;
  /**
   * Set when the video would overflow the context: the most frames that still fit (0: none). Adding it again with
   * maxFrames set to this adds it.
   */
  framesThatFit?: number;
}

/** What addVideos did with each file. */
export interface AddVideosResult {
  added: ChatVideoInfo[];
  rejected: VideoRejection[];
  /** Null before a model is loaded. */
  usage: ContextUsage | null;
}

/** A model the browser cache holds. */
export interface CachedModelInfo {
  /** The loader's source id ("hub/<id>@<rev>", "url/<base>"). */
  sourceId: string;
  bytes: number;
  files: number;
}

/** Things the worker reports on its own. */
export type EngineEvent =
  | { type: 'device-lost'; message: string }
  | { type: 'device-restored'; message: string }
  | { type: 'device-restore-failed'; message: string };

export type EngineEventCallback = (event: EngineEvent) => void;

/** What the worker can do beyond the core chat, decided by which engine modules exist in this build. */
export interface EngineFeatures {
  visualHeadSearch: boolean;
  attentionMaps: boolean;
  benchmark: boolean;
}

export interface EngineApi {
  /** Creates the worker's GPUDevice. Safe to call again: later calls return the first result. */
  init(): Promise<InitResult>;
  /**
   * Loads config, tokenizer and weights; caches downloads for offline use. Rejects with an Error whose
   * message is meant for people. A second call while one is running cancels the first. The kernels are compiled
   * here (onStep reports it), so that the first question compiles nothing. `weightFormat`: how the text decoder's
   * projections and lm_head are held on the GPU (bf16 by default; q8 / q4 are made while loading).
   */
  loadModel(source: ModelSourceSpec, onProgress: ProgressCallback, onStep?: LoadStepCallback, weightFormat?: WeightFormat): Promise<ModelSummary>;
  /** Aborts a running loadModel (its promise then rejects with an AbortError). */
  cancelLoad(): void;
  /**
   * The GPU bytes of the model's weights in each format, from its config.json alone (nothing else is read): from the
   * picked folder or the browser cache; with `download`, config.json is fetched (a few KB; not cached). null when
   * only a download would tell. Rejects with a message for people (no such file, not an Idefics3 config, ...).
   */
  weightFormatSizes(source: ModelSourceSpec, download: boolean): Promise<WeightFormatSizes | null>;
  /**
   * The source id of the model that answers now (ModelSummary.sourceId), or null. After a failed load it says whether
   * the previous model is still there (a load that fails before the upload leaves it; one that fails on the GPU does not).
   */
  loadedModelId(): string | null;
  /** Lists the models the browser cache holds, with their sizes. */
  listCachedModels(): Promise<CachedModelInfo[]>;
  /** Deletes one cached model (the loaded one stays loaded); resolves with the bytes freed. */
  removeCachedModel(sourceId: string): Promise<number>;
  /** Subscribes to worker-side events (device loss and recovery). One subscriber; a new one replaces the old. */
  onEvent(callback: EngineEventCallback): void;
  features(): EngineFeatures;

  /**
   * Decodes pictures for the next question, in order, after the ones already added. A non-image, empty or corrupt
   * file is left out and named in `rejected`; the others are added. Pictures larger than the processor uses are
   * scaled down first. Rejects (nothing added) while a job runs.
   */
  addImages(files: ImageFile[]): Promise<AddImagesResult>;
  /**
   * The model's video sampling (`video_sampling` of its preprocessor config: fps, max frames, frame size), or null when
   * the loaded model has no video path (SmolVLM; SmolVLM2 has one) or no model is loaded.
   */
  videoSampling(): ModelVideoSampling | null;
  /**
   * Reads each video's container, samples its frames (VIDEO.md §2) with `request`'s fps and max frames, checks their
   * tokens (with `answerTokens` kept free) against the context before decoding anything, then decodes only the sampled frames (onProgress: frames decoded / total) and
   * adds the video for the next question. A file that is not a usable video, or one that would overflow the context,
   * is left out and named in `rejected` (an overflow says how many frames fit); the others are added. Rejects
   * (nothing added) while a job runs or when the model has no video path.
   */
  addVideos(files: VideoFile[], request: VideoAddRequest, onProgress: VideoProgressCallback): Promise<AddVideosResult>;
  /** Takes a video that waits for the next question off it; returns the usage. */
  removeVideo(id: number): ContextUsage | null;
  /** Every video of the conversation in prompt order: the sent ones, then the ones waiting. */
  listVideos(): ChatVideoInfo[];
  /** Takes a picture that waits for the next question off it (a sent one goes only with New chat); returns the usage. */
  removeImage(id: number): ContextUsage | null;
  /** Every picture of the conversation in prompt order: the sent ones, then the ones waiting for the next question. */
  listImages(): ChatImageInfo[];
  /**
   * How full the model's context is (text and image tokens), and what the next picture would add; null without a model.
   * With `question` (the text being typed) the whole next prompt, as the check at send time counts it.
   */
  contextUsage(question?: string): ContextUsage | null;
  /**
   * The longest picture edge the processor resizes to (null: the model's own, preprocessor size.longest_edge); at least
   * one tile. Lower means fewer tiles and image tokens. Features made at another edge are computed again.
   */
  setLongestImageEdge(edge: number | null): ContextUsage | null;
  /**
   * Answers a question about the conversation's pictures, following the conversation so far; the pictures waiting
   * for it go with it. Streams text through onToken. Rejects at once when another question is being answered
   * (questions are never interleaved), and before any GPU work when the prompt would not fit the context.
   */
  ask(question: string, options: AskOptions, onToken: TokenCallback): Promise<RunResult>;
  /** The same question with the full cache, then with options.policy; the conversation keeps the policy's answer. */
  compare(question: string, options: AskOptions, onToken: TokenCallback): Promise<CompareResult>;
  /** Aborts the running answer (it resolves with stoppedBy 'cancel'); the engine stays ready. */
  stop(): void;
  /** Drops the conversation and its pictures (their features are freed). */
  newChat(): void;
  /** KV budgets the policy would give the last prompt; null before the first question. */
  planBudgets(options: AskOptions): BudgetPlan | null;

  /** Scores of the loaded model (from a search, an import or the cache); null when there are none. */
  headScores(): HeadScoresInfo | null;
  /** Validates a score file (official JSON) against the loaded model, caches it for this model and uses it. */
  importHeadScores(json: string): Promise<HeadScoresInfo>;
  /** The current scores as official JSON text, or null. */
  exportHeadScores(): string | null;
  /** Runs the visual-head search on generated OCR probes; rejects when this build has no search. */
  findVisualHeads(options: HeadSearchOptions, onProgress: (progress: HeadSearchProgress) => void): Promise<HeadScoresInfo>;
  /** Attention of the last full-cache answer's last token over the image, or null when none was recorded. */
  lastAttention(): AttentionSnapshot | null;
  /**
   * Diagnostics: destroys the GPUDevice as a driver reset would. The worker then does what it does for a real loss
   * (reports it, makes a new device, reloads the model from the cache, keeps the conversation).
   */
  simulateDeviceLoss(): Promise<void>;
  /**
   * The question about the conversation's pictures with the full cache and with each policy x budget (one prefill):
   * top-1 agreement, mean / max KL and the first differing token of each against the full cache. A measurement: the
   * conversation is left as it was. Refused while another job runs; Stop ends it with the rows finished. With
   * request.weightFormat other than the loaded model's (q8 / q4 of a bf16 model): the rows run on a copy of the model in
   * that format, made for the sweep from the cached files (progress `step`) and freed when it ends, however it ends.
   */
  fidelitySweep(question: string, request: FidelitySweepRequest, onProgress: (progress: FidelitySweepProgress) => void): Promise<FidelitySweepResult>;
  /**
   * OCR accuracy (ANLS, word accuracy against the probes' text) of the full cache and each policy x budget on
   * synthetic OCR probes drawn in the worker; Stop keeps the probes finished.
   */
  ocrEval(request: OcrEvalRequest, onProgress: (progress: OcrEvalProgress) => void): Promise<OcrEvalResult>;
  /** Decode speed and KV memory against prompt length on the loaded model (synthetic cache contents; see its note). */
  runBenchmark(request: BenchmarkRequestData, onProgress: (progress: BenchmarkProgress) => void): Promise<BenchmarkReport>;
}
