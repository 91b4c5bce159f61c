/** Plain data the views take as props. Nothing here refers to the engine or to WebGPU. */

/** A (layer, query head) cell of the visual-head grid. */
export interface HeadPosition {
  layer: number;
  head: number;
}

/** One decode step of a run, for the per-token charts. */
export interface StepMetrics {
  /** Tokens generated so far (1 = the first generated token). */
  step: number;
  /** KV-cache bytes in use after this step. */
  kvBytes: number;
  /** Wall or GPU time of this decode step. */
  decodeMs: number;
}

/** The measurements of one generation run (one KV policy), as the metrics panel shows them. */
export interface RunMetrics {
  label: string;
  policy: string;
  /** Average tokens kept per KV head (absent for the full cache). */
  budget?: number;
  promptTokens: number;
  textTokens: number;
  imageTokens: number;
  prefillMs: number;
  /** Of prefillMs: the vision tower (0 without an image) and the text prefill. */
  visionMs: number;
  textPrefillMs: number;
  timeToFirstTokenMs: number;
  decodeMsPerToken: number;
  tokensPerSecond: number;
  kvBytes: number;
  totalGpuBytes: number;
  generatedTokens: number;
  perStep: StepMetrics[];
}

/**
 * Where the image tokens came from: `rows` x `cols` tiles in row-major order, then the global image,
 * each a `tokensPerSide` x `tokensPerSide` token grid. rows = cols = 0 when the image was not split
 * (only the global image then).
 */
export interface ImageTokenGeometry {
  rows: number;
  cols: number;
  tokensPerSide: number;
}

/** Progress of a running visual-head search. */
export interface SearchProgress {
  /** Probe samples finished. */
  done: number;
  /** Probe samples in all. */
  total: number;
}
