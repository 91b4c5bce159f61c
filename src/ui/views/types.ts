/** Plain data the views take as props. Nothing here refers to the engine or to WebGPU; run figures are the worker API's. */
import type { RunMetricsData } from '../../worker/api';

/** A (layer, query head) cell of the visual-head grid. */
export interface HeadPosition {
  layer: number;
  head: number;
}

/** The measurements of one generation run (one KV policy), as the metrics panel shows them: the session's figures and the run's name. */
export interface RunMetrics
  extends Pick<
    RunMetricsData,
    | 'promptTokens'
    | 'textTokens'
    | 'imageTokens'
    | 'prefillMs'
    | 'visionMs'
    | 'textPrefillMs'
    | 'timeToFirstTokenMs'
    | 'decodeMsPerToken'
    | 'tokensPerSecond'
    | 'kvBytes'
    | 'totalGpuBytes'
    | 'generatedTokens'
    | 'perStep'
  > {
  label: string;
  policy: string;
  /** Average tokens kept per KV head (absent for the full cache). */
  budget?: number;
  /** A compared policy answer against the full cache's ("top-1 agreement 9/9, mean KL 0.004, ..."). */
  fidelity?: string;
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
