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
 *
 * This file is the runner; beside it: benchmark-types.ts (options, report), benchmark-bytes.ts (bytes read and
 * allocated), benchmark-cache.ts (synthetic prompt and caches), benchmark-report.ts (per-run figures, the note).
 */
import type { GpuContext } from './gpu';
import { VlmModel } from './model';
import { defaultReadBytes, measureComputePeak, measureReadBandwidth } from './adapter-limits';
import { measurePrefill as measurePrefillFigures, type PrefillReport } from './prefill-benchmark';
import { defaultLookahead } from './generate';
import { decodeRounds } from './benchmark-decode';
import { fillSyntheticCaches, liveRunFor, measurePrefill, type LiveRun } from './benchmark-cache';
import { benchmarkNote, defaultMachine, policyLabel, runFigures } from './benchmark-report';
import {
  BenchmarkCancelledError,
  type BenchmarkLimits,
  type BenchmarkOptions,
  type BenchmarkPolicySpec,
  type BenchmarkProgress,
  type BenchmarkReport,
  type BenchmarkRun,
} from './benchmark-types';
import { parseWeightFormat } from '../model-io/quantize';

export * from './benchmark-types';
export { decodeWeightBytes, expectedKvBytes, kvBytesRead } from './benchmark-bytes';

function checkOptions(options: BenchmarkOptions): void {
  const positiveInts = (name: string, values: number[]): void => {
    if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 1)) throw new RangeError(`${name} must be positive integers, got [${values.join(', ')}]`);
  };
  positiveInts('promptLengths', options.promptLengths);
  positiveInts('decodeSteps', [options.decodeSteps]);
  if (!Number.isInteger(options.warmupSteps) || options.warmupSteps < 0) throw new RangeError(`warmupSteps must be a non-negative integer, got ${options.warmupSteps}`);
  if (options.prefillLengths && options.prefillLengths.length > 0) positiveInts('prefillLengths', options.prefillLengths);
  if (options.lookahead !== undefined && (!Number.isInteger(options.lookahead) || options.lookahead < 0)) throw new RangeError(`lookahead must be a non-negative integer, got ${options.lookahead}`);
  if (options.model && options.weightFormats && options.weightFormats.length > 1) throw new RangeError('A loaded model has one weight format: weightFormats needs random weights to load');
  for (const length of options.promptLengths) {
    if (length <= options.window) throw new RangeError(`prompt length ${length} must exceed the window (${options.window})`);
  }
  const { numLayers, numHeads } = options.config.text;
  if (options.headScores.length !== numLayers || options.headScores.some((row) => row.length !== numHeads)) {
    throw new RangeError(`headScores must be [${numLayers}][${numHeads}] for this model`);
  }
}

/** The model in one weight format, loaded from the benchmark's weights. */
async function loadBenchmarkModel(ctx: GpuContext, weights: BenchmarkOptions['weights'], config: BenchmarkOptions['config'], weightFormat: string): Promise<VlmModel> {
  if (!weights) throw new RangeError('runBenchmark needs weights or a loaded model');
  return VlmModel.load(ctx, weights, config, { weightFormat: parseWeightFormat(weightFormat) });
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
  const lookahead = options.lookahead ?? defaultLookahead;
  const weightFormats = options.weightFormats && options.weightFormats.length > 0 ? [...new Set(options.weightFormats)] : ['bf16'];
  // load + limits + done (+ the prefill figures), then per length: the prefills, one cache fill per policy, one decode
  // round per step (of every format's runs).
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
  // One model per weight format; the first is the reference of the cross-format ratios and of the prefill figures.
  const models: { model: VlmModel; weightFormat: string; owned: boolean }[] = [];
  const runs: BenchmarkRun[] = [];
  let peakGflops = Number.NaN;
  let prefillReport: PrefillReport | null = null;
  try {
    if (options.model) models.push({ model: options.model, weightFormat: weightFormats[0], owned: false });
    else {
      for (const weightFormat of weightFormats) {
        checkCancel();
        models.push({ model: await loadBenchmarkModel(ctx, options.weights, config, weightFormat), weightFormat, owned: true });
        report({ phase: 'load', message: `${weightFormat} weights on the GPU (${models[models.length - 1].model.weightBytes} bytes)` }, false);
      }
    }
    report({ phase: 'load', message: `Weights on the GPU (${models.map((m) => `${m.weightFormat} ${m.model.weightBytes} bytes`).join(', ')})` });
    const model = models[0].model;
    const formatBytes = new Map(models.map((m) => [m.weightFormat, { weightBytes: m.model.weightBytes, decodeWeightBytes: m.model.decodeWeightBytes }]));
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
      // Prefill time per policy index, at the lengths where it is measured (first weight format only).
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
        await fillSyntheticCaches(ctx, models[0], options, policies, promptLen, maxNewTokens, seed, live, (spec, ms) =>
          report({ phase: 'select', promptLen, policy: spec.policy, budget: spec.budget, message: `cache ${promptLen} tokens, ${policyLabel(spec)}: selected in ${ms.toFixed(0)} ms` }),
          checkCancel,
        );
        // The other formats decode copies of the same caches (same selection, same K/V).
        const firstFormatRuns = [...live];
        for (const other of models.slice(1)) live.push(...firstFormatRuns.map((run) => liveRunFor(run, other.model, other.weightFormat)));
        // Round robin: step i of every (format, policy) before step i + 1 of any.
        await decodeRounds(ctx, live, {
          promptLen,
          rounds: maxNewTokens,
          warmupSteps: options.warmupSteps,
          lookahead,
          timestamps: timing === 'gpu-timestamps',
          startToken: text.bosTokenId ?? 1,
          checkCancel,
          onRound: (round) => report({ phase: 'decode', promptLen, message: `${promptLen} tokens: decode step ${round + 1}/${maxNewTokens}${round < options.warmupSteps ? ' (warm-up)' : ''}` }),
        });
        const bytes = ctx.allocator.bytesByCategory();
        const baseBytes = bytes.weights + bytes.activations + bytes.scratch;
        const promptLabel = options.promptLabels?.[promptLen] ?? null;
        runs.push(...runFigures(live, { promptLen, promptLabel, prefillMsByPolicy, baseBytes, readGBps: limits.readGBps, formatBytes }));
      } finally {
        ctx.submit();
        for (const run of live) run.cache.destroy();
      }
    }
  } finally {
    ctx.submit();
    for (const { model, owned } of models) {
      if (owned) model.destroy();
      else model.releaseWorkspace();
    }
  }
  report({ phase: 'done', message: 'Benchmark finished' });

  return {
    machine: options.machine ?? defaultMachine(),
    adapter: ctx.adapter,
    note: benchmarkNote(timing, options.headScoresSource, options.window, prefillLengths, lookahead),
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
      weightBytes: runs[0]?.weightBytes ?? Number.NaN,
      decodeWeightBytes: runs[0]?.decodeWeightBytes ?? Number.NaN,
    },
    settings: {
      promptLengths: [...options.promptLengths],
      prefillLengths: [...prefillLengths],
      policies,
      decodeSteps: options.decodeSteps,
      warmupSteps: options.warmupSteps,
      ratio: options.ratio,
      window: options.window,
      lookahead,
      weightFormats,
    },
    createdAt: new Date().toISOString(),
    totalMs: performance.now() - started,
    prefill: prefillReport,
    runs,
  };
}
