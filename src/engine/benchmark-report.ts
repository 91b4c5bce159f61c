/** The benchmark's report: per-run figures against the full cache, the statistics they use, and the report's note. */
import { median } from '../sparsemm/timing-stats';
import type { LiveRun } from './benchmark-cache';
import type { BenchmarkPolicySpec, BenchmarkReport, BenchmarkRun } from './benchmark-types';

/** What runFigures needs besides the runs: the prompt length and the figures shared by all its runs. */
export interface RunContext {
  promptLen: number;
  /** Prefill wall time per policy index, where measured. */
  prefillMsByPolicy: ReadonlyMap<number, number>;
  /** Weight bytes one decode step reads (decodeWeightBytes). */
  weightRead: number;
  /** Allocator bytes without any cache: weights + activations + scratch. */
  baseBytes: number;
  /** The adapter's streaming-read speed (limits.readGBps). */
  readGBps: number;
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

export function benchmarkNote(timing: BenchmarkReport['timing'], headScoresSource: string, window: number, prefillLengths: number[]): string {
  return [
    'Decode runs on a SYNTHETIC KV cache: random post-RoPE q/k/v of the prompt length go through the real selection kernels ' +
      `(window ${window} scores, pooling, top-k, on every layer) and the real store kernel into the real ragged cache layout; ` +
      'the decode steps are the real VlmModel.decodeStep + GPU argmax. Only the K/V values are synthetic (decode time does not depend on them).',
    timing === 'gpu-timestamps'
      ? 'decodeMsPerToken = median GPU time per step from timestamp queries around the step (decodeWallMsPerToken: wall clock to the token read back).'
      : 'decodeMsPerToken = median wall time per step, decodeStep call to the next token read back (the adapter has no timestamp-query).',
    'Policies of one prompt length decode in turn, step by step, so that background load affects them alike; ratios are against the full cache of the same run.',
    'limits.peakGflops: best rate of an f32 multiply-add-bound kernel (independent chains, no memory traffic), wall clock over passes of about 250 ms, measured before and (with prefill figures) again after the prefill kernels.',
    prefillLengths.length > 0
      ? `prefill: GEMM and attention kernels at the model's shapes (wall clock, best run after a warm-up; efficiency = GFLOP/s / limits.peakGflops), the real vision tower on one random tile, and the real text prefill (full cache) at ${prefillLengths.join(', ')} tokens. ` +
        `prefillMs (per policy): wall time of the real text prefill (policy selection included) at the prompt lengths among ${prefillLengths.join(', ')}, on an image-token-heavy prompt with random image features (vision tower not included); not measured at other lengths.`
      : 'prefillMs was not measured (null).',
    `Head scores for sparsemm: ${headScoresSource}.`,
  ].join(' ');
}

/** What the runs of one prompt length measured, each against the first (the full cache, same run). */
export function runFigures(live: readonly LiveRun[], at: RunContext): BenchmarkRun[] {
  const { promptLen, prefillMsByPolicy, weightRead, baseBytes, readGBps } = at;
  const full = live[0];
  const fullDecodeMs = median(full.stepMs);
  const fullBytesRead = weightRead + mean(full.kvReadPerStep);
  return live.map((run, index): BenchmarkRun => {
    const decodeMs = median(run.stepMs);
    const bytesRead = weightRead + mean(run.kvReadPerStep);
    const speedup = fullDecodeMs / decodeMs;
    const bound = fullBytesRead / bytesRead;
    return {
      policy: run.spec.policy,
      budget: run.spec.budget,
      promptLen,
      prefillMs: prefillMsByPolicy.get(index) ?? null,
      decodeMsPerToken: decodeMs,
      decodeMinMsPerToken: Math.min(...run.stepMs),
      decodeMinSpeedupVsFull: Math.min(...full.stepMs) / Math.min(...run.stepMs),
      decodeWallMsPerToken: median(run.wallMs),
      decodeStepMs: run.stepMs,
      kvBytes: run.cache.kvBytes,
      keptTokens: run.cache.layout.keptPerHead.reduce((n, row) => n + row.reduce((a, b) => a + b, 0), 0),
      compressed: run.compressed,
      totalGpuBytes: baseBytes + run.cache.kvBytes,
      decodeSpeedupVsFull: speedup,
      kvRatioVsFull: run.cache.kvBytes / full.cache.kvBytes,
      bytesReadPerToken: bytesRead,
      achievedGBps: bytesRead / (decodeMs * 1e6),
      bytesBoundSpeedupVsFull: bound,
      selectMs: run.selectMs,
      dispatchesPerStep: run.dispatches,
      recordMsPerStep: median(run.recordMs),
      bandwidthEfficiency: bytesRead / (decodeMs * 1e6) / readGBps,
      boundEfficiency: index === 0 ? 1 : boundEfficiencyOf(speedup, bound),
    };
  });
}
