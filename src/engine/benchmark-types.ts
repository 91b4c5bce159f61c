/** The benchmark's options, results and progress events (runner: benchmark.ts). */
import type { ModelConfig } from '../model-io/config';
import type { SafetensorsFile } from '../model-io/safetensors';
import type { BudgetPolicy } from '../sparsemm/budgets';
import type { AdapterSummary, GemvVariant } from './gpu';
import type { VlmModel } from './model';
import type { PrefillReport } from './prefill-benchmark';
import type { TimingVerdict } from '../sparsemm/timing-stats';

export interface BenchmarkPolicySpec {
  policy: BudgetPolicy;
  /** Average tokens kept per KV head, window included (ignored for `full`). */
  budget: number;
}

/** The model to benchmark: random weights at some shape (uploaded here and freed at the end), or a loaded model. */
export type BenchmarkModelSource = { weights: SafetensorsFile; model?: never } | { model: VlmModel; weights?: never };

export type BenchmarkOptions = BenchmarkModelSource & {
  config: ModelConfig;
  /** Prompt lengths in tokens. */
  promptLengths: number[];
  /** Policies to compare; `full` is added first when missing, since every ratio is against it. */
  policies: BenchmarkPolicySpec[];
  /** Measured decode steps per run (the median is reported). */
  decodeSteps: number;
  /** Decode steps run and discarded before measuring (pipeline compilation, first-touch allocations). */
  warmupSteps: number;
  /** SparseMM's `ratio` (share of the base budget every head gets). */
  ratio: number;
  /** Recent prompt tokens every head keeps (SnapKV window). */
  window: number;
  /** [layer][queryHead] visual-head scores used by `sparsemm`. */
  headScores: number[][];
  /** Where headScores came from, for the report (e.g. "random head scores, seed 0"). */
  headScoresSource: string;
  /**
   * Text prompt lengths of the time-to-first-token figures (real text prefill, full cache; the kernel shapes use the
   * first); where one is also a prompt length, every policy's prefill is measured there too. None by default.
   */
  prefillLengths?: number[];
  /** Whether the time-to-first-token figures run the vision tower on one tile (true by default). */
  visionTile?: boolean;
  /** Human-readable machine description (CPU, OS, browser); defaults to navigator.userAgent where there is one. */
  machine?: string;
  /** Seed of the synthetic q/k/v, prompts and image features. */
  seed?: number;
  /** Bytes the read-bandwidth probe streams (default and at least for real runs: 256 MiB; tests use less). */
  readProbeBytes?: number;
  /**
   * Decode steps submitted beyond the token being read back (default 2, as generate): the GPU never waits for the CPU
   * between steps. 0 is the step-by-step loop (submit, wait for the token, record the next), to see what the pipeline saves.
   */
  lookahead?: number;
  /**
   * Weight formats to compare (default the model's own: bf16). Each gets its own model (loaded from `weights`) and its
   * own copy of every policy's cache; all decode in one round robin, so the formats are compared under the same load.
   */
  weightFormats?: string[];
  /** A name for a prompt length in the table and JSON (e.g. the 64-frame video question's length). */
  promptLabels?: Record<number, string>;
  signal?: AbortSignal;
};

export interface BenchmarkRun {
  policy: BudgetPolicy;
  /** Tokens per head the policy was asked for (0 for `full`). */
  budget: number;
  promptLen: number;
  /** What this prompt length stands for, when it was given a name (options.promptLabels), else null. */
  promptLabel: string | null;
  /** The weight format this run's model was loaded in ('bf16', 'q8', 'q4'). */
  weightFormat: string;
  /** Bytes of all the model's weights on the GPU in this format (vision tower included). */
  weightBytes: number;
  /** Bytes of weights one decode step reads in this format (text decoder + lm_head + one embedding row). */
  decodeWeightBytes: number;
  /** Text prefill wall time (selection included), or null where the prefill was not measured. */
  prefillMs: number | null;
  /** Median decode step (GPU timestamps when the adapter has them, else wall clock; see report.timing). */
  decodeMsPerToken: number;
  /** Interquartile range of the measured steps (same clock): the spread every ratio is judged against. */
  decodeIqrMs: number;
  /**
   * The shared rule (sparsemm/timing-stats) on this run's steps against the full cache's (same format, same length):
   * 'faster' / 'slower' only when the quartile boxes do not overlap; speedupText says it for a person.
   */
  speedupVerdict: TimingVerdict;
  speedupText: string;
  /**
   * Against the same policy in the first weight format of the run (bf16 in a --weights bf16,q8,q4 run); null for that
   * format itself. speedup: median ratio; bytesBound: the first format's bytes per step / this run's.
   */
  vsFirstFormat: { weightFormat: string; speedup: number; verdict: TimingVerdict; text: string; bytesBound: number } | null;
  /**
   * Median GPU idle time between the end of the previous decode step (of any run: they share the queue) and the start
   * of this run's step, from timestamp queries; null where the adapter has no timestamp-query (the table says n/a).
   */
  gpuIdleMsPerStep: number | null;
  /**
   * Fastest measured step (same clock). On a shared machine the median absorbs other processes' load; the minimum is
   * the closest to the uncontended time.
   */
  decodeMinMsPerToken: number;
  /** Full cache's decodeMinMsPerToken / this run's. */
  decodeMinSpeedupVsFull: number;
  /** Median wall time per step, CPU side: from the previous token read back (any run's: they share the queue) to this one. */
  decodeWallMsPerToken: number;
  /** Every measured step's time (same clock as decodeMsPerToken), in order. */
  decodeStepMs: number[];
  /** Bytes of this run's KV cache as the allocator counts them (K and V, with room for the decode steps). */
  kvBytes: number;
  /** Prompt tokens kept over all layers and KV heads after selection. */
  keptTokens: number;
  /** Whether the policy compressed the cache at this prompt length. */
  compressed: boolean;
  /** Allocator bytes with this run's cache: weights + activations + scratch during decode + this kvBytes. */
  totalGpuBytes: number;
  /** Full cache's decodeMsPerToken / this run's, same prompt length, same run. */
  decodeSpeedupVsFull: number;
  /** This run's kvBytes / the full cache's, same prompt length. */
  kvRatioVsFull: number;
  /** Bytes one decode step must read: decodeWeightBytes (this format) + the K/V rows every KV head attends to (f16). */
  bytesReadPerToken: number;
  /** bytesReadPerToken / decodeMsPerToken, in GB/s (1e9 bytes). */
  achievedGBps: number;
  /** The speedup over the full cache that the bytes read alone would allow: full's bytesReadPerToken / this run's. */
  bytesBoundSpeedupVsFull: number;
  /** Wall time of the selection + store of every layer (the synthetic prefill's cache fill). */
  selectMs: number;
  /** Compute dispatches one decode step records (token id in, next token id out: decodeStep + argmax). */
  dispatchesPerStep: number;
  /** Median CPU time to record one decode step (decode step + argmax + readback copy, submit included), in ms. */
  recordMsPerStep: number;
  /**
   * The fastest of those records. Where the GPU is emulated on the CPU (SwiftShader), a pipelined step is recorded while
   * the emulator's threads run the previous one on the same cores, so the median mostly measures that contention; the
   * minimum is the closest to the recording's own cost.
   */
  recordMinMsPerStep: number;
  /** achievedGBps / limits.readGBps: the share of the adapter's streaming-read speed this step reaches. */
  bandwidthEfficiency: number;
  /**
   * The share of the possible gain that is realised: (decodeSpeedupVsFull - 1) / (bytesBoundSpeedupVsFull - 1); 1 for
   * the full cache itself, null where the bytes allow no gain (bound 1, e.g. a policy that does not compress).
   */
  boundEfficiency: number | null;
}

/** What the adapter itself can do, measured (src/engine/adapter-limits.ts). */
export interface BenchmarkLimits {
  /** Streaming read over readBytes, best pass, GB/s: the fastest any decode step can go on this adapter. */
  readGBps: number;
  readBytes: number;
  /** f32 multiply-add peak, GFLOP/s. */
  peakGflops: number;
}

export interface BenchmarkReport {
  machine: string;
  adapter: AdapterSummary;
  /** Plain statement of what was measured and how (synthetic cache, clock, head scores). */
  note: string;
  timing: 'gpu-timestamps' | 'wall-clock';
  headScoresSource: string;
  limits: BenchmarkLimits;
  /** How the decode GEMV reduces on this device (chosen at device creation). */
  gemv: GemvVariant;
  model: {
    textLayers: number;
    queryHeads: number;
    kvHeads: number;
    headDim: number;
    hiddenSize: number;
    vocabSize: number;
    /** Bytes of all uploaded weights (vision tower included). */
    weightBytes: number;
    /** Bytes of weights one decode step reads (text decoder + lm_head + one embedding row). */
    decodeWeightBytes: number;
  };
  settings: {
    promptLengths: number[];
    prefillLengths: number[];
    policies: BenchmarkPolicySpec[];
    decodeSteps: number;
    warmupSteps: number;
    ratio: number;
    window: number;
    /** Steps in flight beyond the token being read (0: step by step). */
    lookahead: number;
    weightFormats: string[];
  };
  createdAt: string;
  totalMs: number;
  /** Time-to-first-token figures, or null when no prefill length was given. */
  prefill: PrefillReport | null;
  runs: BenchmarkRun[];
}

export interface BenchmarkProgress {
  phase: 'load' | 'limits' | 'prefill' | 'select' | 'decode' | 'done';
  promptLen?: number;
  policy?: BudgetPolicy;
  budget?: number;
  /** Work units done / in all (a unit = one prefill, one cache fill, or one decode round of all policies). */
  completed: number;
  total: number;
  message: string;
}

export class BenchmarkCancelledError extends Error {
  constructor() {
    super('The benchmark was cancelled.');
    this.name = 'BenchmarkCancelledError';
  }
}
