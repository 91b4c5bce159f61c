/**
 * The SparseMM-vs-full-cache benchmark (issue 7): decode speed and KV memory against prompt length, per KV policy.
 * Runs the real engine wherever a GpuContext exists (Node + dawn.node, or the browser worker); imports nothing from Node.
 *
 * What is real and what is synthetic, per (prompt length, policy):
 * - The cache layout is the real one: RaggedKvCache created with the KvCompressor's keptPerHead for that policy.
 * - The selection is the real one: KvCompressor.selectLayer (window scores, pooling, top-k on the GPU; AdaKV's per-layer
 *   re-split) runs on every layer, on random post-RoPE q/k of the prompt length, and the real store kernel
 *   (RaggedKvCache.storePrefill) writes random K/V of that length through the selected positions. Only the VALUES are
 *   synthetic: decode time does not depend on them (the issue allows this), and a full prefill at 8K on every policy
 *   would cost far more than the decode being measured.
 * - The decode is the real one: VlmModel.decodeStep (all layers, ragged decode attention, lm_head) then GPU argmax, and
 *   the next step is fed the token read back, exactly as generate() does.
 * - Time to first token (prefill-benchmark.ts): the adapter's multiply-add peak (limits.peakGflops), the prefill GEMM
 *   and attention kernels at the model's shapes against it, the real vision tower on one tile and the real text
 *   prefill (full cache) at `prefillLengths`.
 * - Per policy, the prefill is measured at the prompt lengths that are also `prefillLengths`: the real
 *   VlmModel.prefill with the policy's selection, on an
 *   image-token-heavy prompt whose image features are random (the vision tower is not part of the figure).
 *
 * The policies of one prompt length decode in turn, one step each (round robin), so that a background load on the
 * machine slows all of them alike and the ratios against the full cache stay comparable.
 */
import type { ModelConfig } from '../model-io/config';
import type { SafetensorsFile } from '../model-io/safetensors';
import type { BudgetPolicy } from '../sparsemm/budgets';
import type { AdapterSummary, GemvVariant, GpuContext } from './gpu';
import { kvElementBytes, RaggedKvCache } from './kv-cache';
import { KvCompressor, kvPolicyFromOptions, type KvPolicy } from './kv-policy';
import { fullCacheKept, VlmModel } from './model';
import { argmax } from './ops/sampling';
import { defaultReadBytes, measureComputePeak, measureReadBandwidth } from './adapter-limits';
import { measurePrefill as measurePrefillFigures, randomF32, type PrefillReport } from './prefill-benchmark';
import { GpuTimer } from './gpu-timer';
import { packedBf16Bytes } from './weights';

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
  signal?: AbortSignal;
};

export interface BenchmarkRun {
  policy: BudgetPolicy;
  /** Tokens per head the policy was asked for (0 for `full`). */
  budget: number;
  promptLen: number;
  /** Text prefill wall time (selection included), or null where the prefill was not measured. */
  prefillMs: number | null;
  /** Median decode step (GPU timestamps when the adapter has them, else wall clock; see report.timing). */
  decodeMsPerToken: number;
  /**
   * Fastest measured step (same clock). On a shared machine the median absorbs other processes' load; the minimum is
   * the closest to the uncontended time.
   */
  decodeMinMsPerToken: number;
  /** Full cache's decodeMinMsPerToken / this run's. */
  decodeMinSpeedupVsFull: number;
  /** Median wall time per step, CPU side: decodeStep call -> next token read back. */
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
  /** Bytes one decode step must read: text weights (packed bf16) + the K/V rows every KV head attends to (f16). */
  bytesReadPerToken: number;
  /** bytesReadPerToken / decodeMsPerToken, in GB/s (1e9 bytes). */
  achievedGBps: number;
  /** The speedup over the full cache that the bytes read alone would allow: full's bytesReadPerToken / this run's. */
  bytesBoundSpeedupVsFull: number;
  /** Wall time of the selection + store of every layer (the synthetic prefill's cache fill). */
  selectMs: number;
  /** Compute dispatches one decode step records (token id in, next token id out: decodeStep + argmax). */
  dispatchesPerStep: number;
  /** Median CPU time to record one decode step (decodeStep + argmax, submit included, before the read back), in ms. */
  recordMsPerStep: number;
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

const storageUsage = (): GPUBufferUsageFlags => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const bytesPerF32 = 4;

/** Bytes of weights one decode step reads: every text-layer tensor, the final norm, lm_head and one embedding row. */
export function decodeWeightBytes(config: ModelConfig): number {
  const t = config.text;
  const qDim = t.numHeads * t.headDim;
  const kvDim = t.numKvHeads * t.headDim;
  const perLayer =
    2 * packedBf16Bytes(t.hiddenSize) + // input + post-attention RMSNorm weights
    packedBf16Bytes(qDim * t.hiddenSize) + // q_proj
    2 * packedBf16Bytes(kvDim * t.hiddenSize) + // k_proj, v_proj
    packedBf16Bytes(t.hiddenSize * qDim) + // o_proj
    3 * packedBf16Bytes(t.intermediateSize * t.hiddenSize); // gate, up, down
  const embeddingRow = 2 * t.hiddenSize;
  return t.numLayers * perLayer + packedBf16Bytes(t.hiddenSize) + packedBf16Bytes(t.vocabSize * t.hiddenSize) + embeddingRow;
}

/** K and V bytes a decode step reads when the KV heads hold `lengths` tokens ([layer][kvHead], f16 rows of headDim). */
export function kvBytesRead(lengths: number[][], headDim: number): number {
  let rows = 0;
  for (const layer of lengths) for (const n of layer) rows += n;
  return rows * headDim * 2 * kvElementBytes;
}

/** The allocator's KV bytes for a layout: sum over layers and heads of (kept + maxNewTokens) rows, K and V, f16. */
export function expectedKvBytes(keptPerHead: number[][], maxNewTokens: number, headDim: number): number {
  let bytes = 0;
  for (const layer of keptPerHead) {
    const rows = layer.reduce((sum, kept) => sum + kept + maxNewTokens, 0);
    bytes += 2 * Math.max(4, rows * headDim * kvElementBytes);
  }
  return bytes;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * An Idefics3-style prompt of exactly `length` tokens, image-token heavy like several tiled images: a short text head,
 * then tiles of (<fake_token_around_image>-like marker, imageSeqLen image tokens) while they fit, then text. Text ids
 * are drawn from the vocabulary, avoiding the image token.
 */
export function syntheticPrompt(config: ModelConfig, length: number, seed: number): { inputIds: Uint32Array; imageTokens: number } {
  const vocab = config.text.vocabSize;
  const imageId = config.imageTokenId;
  const next = randomF32(length, seed, 1);
  let r = 0;
  const textToken = (): number => {
    let id = Math.floor(((next[r++ % length] + 1) / 2) * vocab) % vocab;
    if (id === imageId) id = (id + 1) % vocab;
    return id;
  };
  const ids = new Uint32Array(length);
  const headText = Math.min(8, length);
  const tailText = Math.min(16, Math.max(0, length - headText));
  let i = 0;
  for (; i < headText; i++) ids[i] = textToken();
  let imageTokens = 0;
  const tile = config.imageSeqLen + 1;
  while (i + tile <= length - tailText) {
    ids[i++] = textToken(); // stands for <fake_token_around_image> / <row_i_col_j>
    for (let j = 0; j < config.imageSeqLen; j++) ids[i++] = imageId;
    imageTokens += config.imageSeqLen;
  }
  for (; i < length; i++) ids[i] = textToken();
  return { inputIds: ids, imageTokens };
}

/** One policy's cache during the decode rounds of a prompt length. */
interface LiveRun {
  spec: BenchmarkPolicySpec;
  cache: RaggedKvCache;
  compressed: boolean;
  selectMs: number;
  token: number;
  step: number;
  stepMs: number[];
  wallMs: number[];
  recordMs: number[];
  dispatches: number;
  kvReadPerStep: number[];
}

function kvPolicyFor(spec: BenchmarkPolicySpec, options: BenchmarkOptions): KvPolicy {
  const kvPolicy = kvPolicyFromOptions({ ...spec, window: options.window, ratio: options.ratio }, options.headScores);
  if (!kvPolicy) throw new Error('The full cache has no KV policy to plan.');
  return kvPolicy;
}

function policyLabel(spec: BenchmarkPolicySpec): string {
  return spec.policy === 'full' ? 'full' : `${spec.policy} ${spec.budget}`;
}

function checkOptions(options: BenchmarkOptions): void {
  const positiveInts = (name: string, values: number[]): void => {
    if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 1)) throw new RangeError(`${name} must be positive integers, got [${values.join(', ')}]`);
  };
  positiveInts('promptLengths', options.promptLengths);
  positiveInts('decodeSteps', [options.decodeSteps]);
  if (!Number.isInteger(options.warmupSteps) || options.warmupSteps < 0) throw new RangeError(`warmupSteps must be a non-negative integer, got ${options.warmupSteps}`);
  if (options.prefillLengths && options.prefillLengths.length > 0) positiveInts('prefillLengths', options.prefillLengths);
  for (const length of options.promptLengths) {
    if (length <= options.window) throw new RangeError(`prompt length ${length} must exceed the window (${options.window})`);
  }
  const { numLayers, numHeads } = options.config.text;
  if (options.headScores.length !== numLayers || options.headScores.some((row) => row.length !== numHeads)) {
    throw new RangeError(`headScores must be [${numLayers}][${numHeads}] for this model`);
  }
}

/**
 * Runs the benchmark and returns the report. Frees everything it allocated (and the model, when it uploaded the
 * weights itself) whatever happens.
 */
export async function runBenchmark(
  ctx: GpuContext,
  options: BenchmarkOptions,
  onProgress?: (progress: BenchmarkProgress) => void,
): Promise<BenchmarkReport> {
  checkOptions(options);
  const started = performance.now();
  const { config } = options;
  const text = config.text;
  const seed = options.seed ?? 0;
  const policies: BenchmarkPolicySpec[] = options.policies.some((p) => p.policy === 'full')
    ? [...options.policies.filter((p) => p.policy === 'full').slice(0, 1), ...options.policies.filter((p) => p.policy !== 'full')]
    : [{ policy: 'full', budget: 0 }, ...options.policies];
  const prefillLengths = options.prefillLengths ?? [];
  const maxNewTokens = options.warmupSteps + options.decodeSteps;
  const timing: BenchmarkReport['timing'] = ctx.hasTimestampQuery ? 'gpu-timestamps' : 'wall-clock';
  // load + limits + done (+ the prefill figures), then per length: the prefills, one cache fill per policy, one decode
  // round per step.
  const total =
    3 + (prefillLengths.length > 0 ? 1 : 0) + options.promptLengths.reduce((n, len) => n + (prefillLengths.includes(len) ? policies.length : 0) + policies.length + maxNewTokens, 0);
  let completed = 0;
  const report = (progress: Omit<BenchmarkProgress, 'completed' | 'total'>, advance = true): void => {
    if (advance) completed += 1;
    onProgress?.({ ...progress, completed, total });
  };
  const checkCancel = (): void => {
    if (options.signal?.aborted) throw new BenchmarkCancelledError();
  };

  report({ phase: 'load', message: 'Measuring the adapter\'s read bandwidth' }, false);
  const bandwidth = await measureReadBandwidth(ctx, options.readProbeBytes ?? defaultReadBytes);
  const limits: BenchmarkLimits = { readGBps: bandwidth.readGBps, readBytes: bandwidth.bytes, peakGflops: Number.NaN };
  report({ phase: 'load', message: `Read bandwidth ${bandwidth.readGBps.toFixed(3)} GB/s; ${options.model ? 'using the loaded model' : 'uploading weights'}` }, false);
  const ownsModel = !options.model;
  const model = options.model ?? (await VlmModel.load(ctx, options.weights, config));
  report({ phase: 'load', message: `Weights on the GPU (${model.weightBytes} bytes)` });
  const timer = timing === 'gpu-timestamps' ? new GpuTimer(ctx) : null;
  const tokenOut = ctx.allocator.create('scratch', 4, storageUsage(), 'benchmark sampled token');
  const weightRead = decodeWeightBytes(config);
  const runs: BenchmarkRun[] = [];
  let peakGflops = Number.NaN;
  let prefillReport: PrefillReport | null = null;
  try {
    checkCancel();
    peakGflops = (await measureComputePeak(ctx)).peakGflops;
    report({ phase: 'limits', message: `adapter f32 multiply-add peak: ${peakGflops.toFixed(2)} GFLOP/s` });
    if (prefillLengths.length > 0) {
      const figures = await measurePrefillFigures(ctx, model, peakGflops, {
        config,
        textLengths: prefillLengths,
        visionTile: options.visionTile ?? true,
        seed,
        textPrefillMs: (length) => measurePrefill(ctx, model, options, { policy: 'full', budget: 0 }, length, seed),
        onProgress: (message) => report({ phase: 'prefill', message }, false),
        checkCancel,
      });
      peakGflops = figures.peakGflops;
      prefillReport = figures.prefill;
      report({ phase: 'prefill', message: 'time-to-first-token figures done' });
    }
    for (const promptLen of options.promptLengths) {
      // Prefill time per policy index, at the lengths where it is measured.
      const prefillMsByPolicy = new Map<number, number>();
      if (prefillLengths.includes(promptLen)) {
        for (const [index, spec] of policies.entries()) {
          checkCancel();
          const prefillMs = await measurePrefill(ctx, model, options, spec, promptLen, seed);
          prefillMsByPolicy.set(index, prefillMs);
          report({ phase: 'prefill', promptLen, policy: spec.policy, budget: spec.budget, message: `prefill ${promptLen} tokens, ${policyLabel(spec)}: ${prefillMs.toFixed(0)} ms` });
        }
      }
      const live: LiveRun[] = [];
      try {
        await fillSyntheticCaches(ctx, options, policies, promptLen, maxNewTokens, seed, live, (spec, ms) =>
          report({ phase: 'select', promptLen, policy: spec.policy, budget: spec.budget, message: `cache ${promptLen} tokens, ${policyLabel(spec)}: selected in ${ms.toFixed(0)} ms` }),
          checkCancel,
        );
        // Round robin: step i of every policy before step i + 1 of any.
        for (let step = 0; step < maxNewTokens; step++) {
          for (const run of live) {
            checkCancel();
            const wallStart = performance.now();
            timer?.begin();
            const dispatchesBefore = ctx.dispatchCount;
            const logits = model.decodeStep(run.token, promptLen + run.step, run.cache);
            argmax(ctx, logits, tokenOut, text.vocabSize);
            ctx.submit();
            const recordMs = performance.now() - wallStart;
            const dispatches = ctx.dispatchCount - dispatchesBefore;
            timer?.end();
            run.token = (await ctx.readU32(tokenOut, 1))[0];
            const wallMs = performance.now() - wallStart;
            const gpuMs = timer ? await timer.elapsedMs() : wallMs;
            if (step >= options.warmupSteps) {
              run.wallMs.push(wallMs);
              run.recordMs.push(recordMs);
              run.dispatches = dispatches;
              run.stepMs.push(gpuMs);
              run.kvReadPerStep.push(kvBytesRead(run.cache.layout.keptPerHead.map((_, layer) => run.cache.lengths(layer)), text.headDim));
            }
            run.step += 1;
          }
          report({ phase: 'decode', promptLen, message: `${promptLen} tokens: decode step ${step + 1}/${maxNewTokens}${step < options.warmupSteps ? ' (warm-up)' : ''}` });
        }
        const bytes = ctx.allocator.bytesByCategory();
        const baseBytes = bytes.weights + bytes.activations + bytes.scratch;
        const full = live[0];
        const fullDecodeMs = median(full.stepMs);
        const fullBytesRead = weightRead + mean(full.kvReadPerStep);
        for (const [index, run] of live.entries()) {
          const decodeMs = median(run.stepMs);
          const bytesRead = weightRead + mean(run.kvReadPerStep);
          const speedup = fullDecodeMs / decodeMs;
          const bound = fullBytesRead / bytesRead;
          runs.push({
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
            bandwidthEfficiency: bytesRead / (decodeMs * 1e6) / limits.readGBps,
            boundEfficiency: index === 0 ? 1 : boundEfficiencyOf(speedup, bound),
          });
        }
      } finally {
        ctx.submit();
        for (const run of live) run.cache.destroy();
      }
    }
  } finally {
    ctx.submit();
    timer?.destroy();
    ctx.allocator.destroy(tokenOut);
    if (ownsModel) model.destroy();
    else model.releaseWorkspace();
  }
  report({ phase: 'done', message: 'Benchmark finished' });

  return {
    machine: options.machine ?? defaultMachine(),
    adapter: ctx.adapter,
    note: benchmarkNote(timing, options.headScoresSource, options.window, prefillLengths),
    timing,
    headScoresSource: options.headScoresSource,
    limits: { ...limits, peakGflops },
    gemv: ctx.gemv,
    model: {
      textLayers: text.numLayers,
      queryHeads: text.numHeads,
      kvHeads: text.numKvHeads,
      headDim: text.headDim,
      hiddenSize: text.hiddenSize,
      vocabSize: text.vocabSize,
      weightBytes: model.weightBytes,
      decodeWeightBytes: weightRead,
    },
    settings: {
      promptLengths: [...options.promptLengths],
      prefillLengths: [...prefillLengths],
      policies,
      decodeSteps: options.decodeSteps,
      warmupSteps: options.warmupSteps,
      ratio: options.ratio,
      window: options.window,
    },
    createdAt: new Date().toISOString(),
    totalMs: performance.now() - started,
    prefill: prefillReport,
    runs,
  };
}

/** (speedup - 1) / (bound - 1): the realised share of the gain the bytes allow; null when they allow none. */
export function boundEfficiencyOf(speedup: number, bound: number): number | null {
  return bound > 1 + 1e-9 ? (speedup - 1) / (bound - 1) : null;
}

function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
}

function defaultMachine(): string {
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

/** Builds each policy's cache for `promptLen`: real layout, real selection + store kernels, synthetic K/V values. */
async function fillSyntheticCaches(
  ctx: GpuContext,
  options: BenchmarkOptions,
  policies: BenchmarkPolicySpec[],
  promptLen: number,
  maxNewTokens: number,
  seed: number,
  live: LiveRun[],
  onFilled: (spec: BenchmarkPolicySpec, ms: number) => void,
  checkCancel: () => void,
): Promise<void> {
  const text = options.config.text;
  const qDim = text.numHeads * text.headDim;
  const kvDim = text.numKvHeads * text.headDim;
  const alloc = (count: number, label: string): GPUBuffer => ctx.allocator.create('scratch', count * bytesPerF32, storageUsage(), label);
  // Random q/k of scale 2 make the window softmax peaked enough that the top-k is not decided by ties alone.
  const q = alloc(promptLen * qDim, 'benchmark synthetic q');
  const k = alloc(promptLen * kvDim, 'benchmark synthetic k');
  const v = alloc(promptLen * kvDim, 'benchmark synthetic v');
  try {
    ctx.upload(q, randomF32(promptLen * qDim, seed + 1, 2));
    ctx.upload(k, randomF32(promptLen * kvDim, seed + 2, 2));
    ctx.upload(v, randomF32(promptLen * kvDim, seed + 3, 1));
    for (const spec of policies) {
      checkCancel();
      const compressor = spec.policy === 'full' ? null : KvCompressor.plan(text, promptLen, kvPolicyFor(spec, options));
      const keptPerHead = compressor?.keptPerHead.map((row) => [...row]) ?? fullCacheKept(text.numLayers, text.numKvHeads, promptLen);
      const cache = RaggedKvCache.create(ctx, {
        numLayers: text.numLayers, numKvHeads: text.numKvHeads, headDim: text.headDim, promptLength: promptLen, keptPerHead, maxNewTokens,
      });
      const run: LiveRun = {
        spec, cache, compressed: compressor?.compresses ?? false, selectMs: 0,
        token: text.bosTokenId ?? 1, step: 0, stepMs: [], wallMs: [], recordMs: [], dispatches: 0, kvReadPerStep: [],
      };
      live.push(run);
      const selectStarted = performance.now();
      for (let layer = 0; layer < text.numLayers; layer++) {
        const positions = compressor ? await compressor.selectLayer(ctx, cache, layer, q, k) : null;
        cache.storePrefill(layer, k, v, positions);
        // The kept-positions scratch is shared by all layers: submit before the next layer overwrites it.
        ctx.submit();
      }
      await ctx.finish();
      run.selectMs = performance.now() - selectStarted;
      onFilled(spec, run.selectMs);
    }
  } finally {
    ctx.submit();
    for (const buffer of [q, k, v]) ctx.allocator.destroy(buffer);
  }
}

/** Wall time of the real text prefill with the policy's selection, on a synthetic image-heavy prompt. */
async function measurePrefill(
  ctx: GpuContext,
  model: VlmModel,
  options: BenchmarkOptions,
  spec: BenchmarkPolicySpec,
  promptLen: number,
  seed: number,
): Promise<number> {
  const { config } = options;
  const text = config.text;
  const { inputIds, imageTokens } = syntheticPrompt(config, promptLen, seed + 7);
  const features = imageTokens > 0 ? ctx.allocator.create('activations', imageTokens * text.hiddenSize * bytesPerF32, storageUsage(), 'benchmark image features') : null;
  if (features) ctx.upload(features, randomF32(imageTokens * text.hiddenSize, seed + 8, 1));
  const compressor = spec.policy === 'full' ? null : KvCompressor.plan(text, promptLen, kvPolicyFor(spec, options));
  const keptPerHead = compressor?.keptPerHead.map((row) => [...row]) ?? fullCacheKept(text.numLayers, text.numKvHeads, promptLen);
  const cache = RaggedKvCache.create(ctx, {
    numLayers: text.numLayers, numKvHeads: text.numKvHeads, headDim: text.headDim, promptLength: promptLen, keptPerHead, maxNewTokens: 1,
  });
  const tokenOut = ctx.allocator.create('scratch', 4, storageUsage(), 'benchmark prefill token');
  try {
    await ctx.finish();
    const started = performance.now();
    const logits = await model.prefill(inputIds, features, cache, {
      selectKept: compressor ? (layer, q, k) => compressor.selectLayer(ctx, cache, layer, q, k) : undefined,
    });
    argmax(ctx, logits, tokenOut, text.vocabSize);
    await ctx.readU32(tokenOut, 1);
    return performance.now() - started;
  } finally {
    ctx.submit();
    cache.destroy();
    ctx.allocator.destroy(tokenOut);
    ctx.allocator.destroy(features);
  }
}
