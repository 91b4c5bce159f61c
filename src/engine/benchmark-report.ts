/** The benchmark's report: per-run figures against the full cache, the statistics they use, and the report's note. */
import { compareStepTimes, describeTimingComparison, median } from '../sparsemm/timing-stats';
import type { LiveRun } from './benchmark-cache';
import type { BenchmarkPolicySpec, BenchmarkReport, BenchmarkRun } from './benchmark-types';

/** What runFigures needs besides the runs: the prompt length and the figures shared by all its runs. */
export interface RunContext {
  promptLen: number;
  promptLabel: string | null;
  /** Prefill wall time per policy index, where measured. */
  prefillMsByPolicy: ReadonlyMap<number, number>;
  /** Allocator bytes without any cache: weights + activations + scratch. */
  baseBytes: number;
  /** The adapter's streaming-read speed (limits.readGBps). */
  readGBps: number;
  /** Per weight format: all its weight bytes and those one decode step reads. */
  formatBytes: ReadonlyMap<string, { weightBytes: number; decodeWeightBytes: number }>;
}

export { median };

/** (speedup - 1) / (bound - 1): the realised share of the gain the bytes allow; null when they allow none. */
export function boundEfficiencyOf(speedup: number, bound: number): number | null {
  return bound > 1 + 1e-9 ? (speedup - 1) / (bound - 1) : null;
}

export function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
}

export function policyLabel(spec: BenchmarkPolicySpec): string {
  return spec.policy === 'full' ? 'full' : `${spec.policy} ${spec.budget}`;
}

export function defaultMachine(): string {
  const nav = (globalThis as { navigator?: { userAgent?: string; hardwareConcurrency?: number } }).navigator;
  if (nav?.userAgent) return `${nav.userAgent}${nav.hardwareConcurrency ? `, ${nav.hardwareConcurrency} logical cores` : ''}`;
  return 'unknown machine';
}

export function benchmarkNote(timing: BenchmarkReport['timing'], headScoresSource: string, window: number, prefillLengths: number[], lookahead: number): string {
  return [
    'Decode runs on a SYNTHETIC KV cache: random post-RoPE q/k/v of the prompt length go through the real selection kernels ' +
      `(window ${window} scores, pooling, top-k, on every layer) and the real store kernel into the real ragged cache layout; ` +
      'the decode steps are the real decode step + GPU argmax, the token staying on the GPU for the next step as in generate. Only the K/V values are synthetic (decode time does not depend on them).',
    lookahead > 0
      ? `Pipelined as generate: up to ${lookahead} steps are submitted beyond the token being read back, so the GPU does not wait for the CPU between steps.`
      : 'Step by step (lookahead 0): each step is recorded only after the previous token was read back.',
    timing === 'gpu-timestamps'
      ? 'decodeMsPerToken = median GPU time per step from timestamp queries around the step, with its IQR; gpuIdleMsPerStep = median GPU idle time between the previous step\'s end and this step\'s start; decodeWallMsPerToken: wall clock between consecutive tokens read back.'
      : 'decodeMsPerToken = median wall time between consecutive tokens read back, with its IQR (the adapter has no timestamp-query: gpuIdleMsPerStep n/a).',
    'recordMsPerStep: CPU time to record and submit one step. A speed-up is stated only when the quartile boxes of the step times do not overlap (sparsemm/timing-stats), else "no measurable difference".',
    'Policies of one prompt length decode in turn, step by step, so that background load affects them alike; ratios are against the full cache of the same run.',
    'limits.peakGflops: best rate of an f32 multiply-add-bound kernel (independent chains, no memory traffic), wall clock over passes of about 250 ms, measured before and (with prefill figures) again after the prefill kernels.',
    prefillLengths.length > 0
      ? `prefill: GEMM and attention kernels at the model's shapes (wall clock, best run after a warm-up; efficiency = GFLOP/s / limits.peakGflops), the real vision tower on one random tile, and the real text prefill (full cache) at ${prefillLengths.join(', ')} tokens. ` +
        `prefillMs (per policy): wall time of the real text prefill (policy selection included) at the prompt lengths among ${prefillLengths.join(', ')}, on an image-token-heavy prompt with random image features (vision tower not included); not measured at other lengths.`
      : 'prefillMs was not measured (null).',
    `Head scores for sparsemm: ${headScoresSource}.`,
  ].join(' ');
}

/**
 * What the runs of one prompt length measured. `live` holds, per weight format, the full cache first and then the
 * other policies in the same order (benchmark.ts builds it so); each run is compared with its format's full cache,
 * and with the same policy in the first format.
 */
export function runFigures(live: readonly LiveRun[], at: RunContext): BenchmarkRun[] {
  const { promptLen, promptLabel, prefillMsByPolicy, baseBytes, readGBps, formatBytes } = at;
  const formats = [...new Set(live.map((run) => run.weightFormat))];
  const bytesOf = (run: LiveRun): number => (formatBytes.get(run.weightFormat)?.decodeWeightBytes ?? Number.NaN) + mean(run.kvReadPerStep);
  return live.map((run): BenchmarkRun => {
    const group = live.filter((other) => other.weightFormat === run.weightFormat);
    const policyIndex = group.indexOf(run);
    const full = group[0];
    const decodeMs = median(run.stepMs);
    const bytesRead = bytesOf(run);
    const vsFull = compareStepTimes(full.stepMs, run.stepMs);
    const bound = bytesOf(full) / bytesRead;
    const firstFormatRun = run.weightFormat === formats[0] ? null : live.filter((other) => other.weightFormat === formats[0])[policyIndex];
    const vsFirst = firstFormatRun ? compareStepTimes(firstFormatRun.stepMs, run.stepMs) : null;
    const bytes = formatBytes.get(run.weightFormat);
    return {
      policy: run.spec.policy,
      budget: run.spec.budget,
      promptLen,
      promptLabel,
      weightFormat: run.weightFormat,
      weightBytes: bytes?.weightBytes ?? Number.NaN,
      decodeWeightBytes: bytes?.decodeWeightBytes ?? Number.NaN,
      prefillMs: run.weightFormat === formats[0] ? (prefillMsByPolicy.get(policyIndex) ?? null) : null,
      decodeMsPerToken: decodeMs,
      decodeIqrMs: vsFull.candidate.iqrMs,
      speedupVerdict: vsFull.verdict,
      speedupText: run === full ? 'baseline' : describeTimingComparison(vsFull),
      vsFirstFormat:
        firstFormatRun && vsFirst
          ? { weightFormat: formats[0], speedup: vsFirst.speedup, verdict: vsFirst.verdict, text: describeTimingComparison(vsFirst), bytesBound: bytesOf(firstFormatRun) / bytesRead }
          : null,
      gpuIdleMsPerStep: run.idleMs.length > 0 ? median(run.idleMs) : null,
      decodeMinMsPerToken: Math.min(...run.stepMs),
      decodeMinSpeedupVsFull: Math.min(...full.stepMs) / Math.min(...run.stepMs),
      decodeWallMsPerToken: median(run.wallMs),
      decodeStepMs: run.stepMs,
      kvBytes: run.cache.kvBytes,
      keptTokens: run.cache.layout.keptPerHead.reduce((n, row) => n + row.reduce((a, b) => a + b, 0), 0),
      compressed: run.compressed,
      totalGpuBytes: baseBytes + run.cache.kvBytes,
      decodeSpeedupVsFull: vsFull.speedup,
      kvRatioVsFull: run.cache.kvBytes / full.cache.kvBytes,
      bytesReadPerToken: bytesRead,
      achievedGBps: bytesRead / (decodeMs * 1e6),
      bytesBoundSpeedupVsFull: bound,
      selectMs: run.selectMs,
      dispatchesPerStep: run.dispatches,
      recordMsPerStep: median(run.recordMs),
      recordMinMsPerStep: Math.min(...run.recordMs),
      bandwidthEfficiency: bytesRead / (decodeMs * 1e6) / readGBps,
      boundEfficiency: run === full ? 1 : boundEfficiencyOf(vsFull.speedup, bound),
    };
  });
}
