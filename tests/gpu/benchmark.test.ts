/**
 * runBenchmark on the tiny fixture model (2 text layers, 4 query / 2 KV heads, head_dim 16) at tiny prompt lengths:
 * the report's shape, the ratios against the full cache, and kvBytes / keptTokens / bytes read against the formulas
 * of the cache layout. No timing assertions (SwiftShader timings say nothing), only that times were measured.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BenchmarkCancelledError,
  decodeWeightBytes,
  expectedKvBytes,
  runBenchmark,
  type BenchmarkOptions,
  type BenchmarkProgress,
  type BenchmarkReport,
} from '../../src/engine/benchmark';
import type { GpuContext } from '../../src/engine/gpu';
import { KvCompressor } from '../../src/engine/kv-policy';
import { parseModelConfig } from '../../src/model-io/config';
import { tinyFixtureFiles } from '../../src/model-io/fixture';
import { SafetensorsFile } from '../../src/model-io/safetensors';
import { defaultBudgetParams, headCapacities } from '../../src/sparsemm/budgets';
import { randomHeadScores } from '../../src/sparsemm/random';
import { gpuContext } from '../helpers/gpu';

const files = tinyFixtureFiles(7);
const config = parseModelConfig(new TextDecoder().decode(files.get('config.json')));
const weightBytes = files.get('model.safetensors') as Uint8Array;
const weights = SafetensorsFile.parse(weightBytes.buffer.slice(weightBytes.byteOffset, weightBytes.byteOffset + weightBytes.byteLength) as ArrayBuffer);
const text = config.text;
const window = 8;
const headScores = randomHeadScores(text.numLayers, text.numHeads, 3);

function options(overrides: Partial<BenchmarkOptions> = {}): BenchmarkOptions {
  return {
    config,
    weights,
    promptLengths: [96, 160],
    prefillLengths: [96],
    policies: [
      { policy: 'sparsemm', budget: 40 },
      { policy: 'snapkv', budget: 40 },
      { policy: 'adakv', budget: 40 },
      { policy: 'sparsemm', budget: 400 },
    ],
    decodeSteps: 2,
    warmupSteps: 1,
    ratio: 0.1,
    window,
    headScores,
    headScoresSource: 'random head scores, seed 3 (test)',
    machine: 'test machine',
    seed: 5,
    // A small probe keeps the test quick; real runs stream 256 MiB.
    readProbeBytes: 4 * 2 ** 20,
    ...overrides,
  } as BenchmarkOptions;
}

describe('runBenchmark on the tiny fixture', () => {
  let ctx: GpuContext;
  let report: BenchmarkReport;
  const progress: BenchmarkProgress[] = [];
  let kvBefore = 0;
  let weightsBefore = 0;

  beforeAll(async () => {
    ctx = await gpuContext();
    kvBefore = ctx.allocator.bytesByCategory().kv;
    weightsBefore = ctx.allocator.bytesByCategory().weights;
    report = await runBenchmark(ctx, options(), (p) => progress.push(p));
  });

  it('reports machine, adapter, a note saying the cache was synthetic, and every (length, policy) run with full first', () => {
    expect(report.machine).toBe('test machine');
    expect(report.adapter.description.length + report.adapter.vendor.length).toBeGreaterThan(0);
    expect(report.note).toMatch(/SYNTHETIC KV cache/);
    expect(report.note).toMatch(/random head scores, seed 3/);
    expect(report.timing).toBe(ctx.hasTimestampQuery ? 'gpu-timestamps' : 'wall-clock');
    expect(report.settings.policies[0]).toEqual({ policy: 'full', budget: 0 });
    expect(report.runs.map((r) => `${r.promptLen} ${r.policy} ${r.budget}`)).toEqual([
      '96 full 0', '96 sparsemm 40', '96 snapkv 40', '96 adakv 40', '96 sparsemm 400',
      '160 full 0', '160 sparsemm 40', '160 snapkv 40', '160 adakv 40', '160 sparsemm 400',
    ]);
    for (const run of report.runs) {
      expect(run.decodeStepMs).toHaveLength(2);
      expect(run.decodeMsPerToken).toBeGreaterThan(0);
      expect(run.decodeWallMsPerToken).toBeGreaterThan(0);
      expect(run.decodeMinMsPerToken).toBe(Math.min(...run.decodeStepMs));
      expect(run.achievedGBps).toBeGreaterThan(0);
      expect(run.totalGpuBytes).toBeGreaterThan(run.kvBytes);
      expect(run.prefillMs === null).toBe(run.promptLen !== 96);
      if (run.prefillMs !== null) expect(run.prefillMs).toBeGreaterThan(0);
    }
  });

  it('reports the adapter peak and the time-to-first-token figures at the model shapes', () => {
    expect(report.limits.peakGflops).toBeGreaterThan(0);
    const prefill = report.prefill;
    if (!prefill) throw new Error('no prefill figures');
    expect(prefill.textLengths).toEqual([96]);
    // The GEMMs of a text layer at 96 rows and of a vision layer at numPatches rows, with flops = 2 M K N.
    expect(prefill.gemm.map((g) => g.name)).toEqual(['text q/o_proj', 'text gate/up_proj', 'text down_proj', 'vision q/k/v/out_proj', 'vision fc1', 'vision fc2']);
    expect(prefill.gemm[1].flops).toBe(2 * 96 * text.hiddenSize * text.intermediateSize);
    expect(prefill.gemm[4].flops).toBe(2 * config.vision.numPatches * config.vision.hiddenSize * config.vision.intermediateSize);
    for (const g of [...prefill.gemm, ...prefill.attention]) {
      expect(g.ms).toBeGreaterThan(0);
      expect(g.gflops).toBeCloseTo(g.flops / (g.ms * 1e6), 9);
      expect(g.efficiency).toBeCloseTo(g.gflops / report.limits.peakGflops, 9);
    }
    // Causal attention counts the visible half (with the diagonal) of the [96 x 96] scores.
    expect(prefill.attention[0].flops).toBe(4 * ((96 * 97) / 2) * text.numHeads * text.headDim);
    expect(prefill.gemmEfficiency.text).toBeCloseTo(prefill.gemmGflops.text / report.limits.peakGflops, 9);
    expect(prefill.visionMsPerTile).toBeGreaterThan(0);
    expect(prefill.textTokensPerSecond['96']).toBeCloseTo(96 / (prefill.textPrefillMs['96'] / 1000), 6);
  });

  it('reports the adapter read limit and, per run, dispatches, record time and both efficiencies', () => {
    expect(report.limits.readBytes).toBe(4 * 2 ** 20);
    expect(report.limits.readGBps).toBeGreaterThan(0);
    expect(report.gemv).toEqual(ctx.gemv);
    const dispatches = report.runs[0].dispatchesPerStep;
    expect(dispatches).toBeGreaterThan(text.numLayers);
    for (const run of report.runs) {
      // The same kernels every step and every policy: the ragged cache changes sizes, not the dispatch list.
      expect(run.dispatchesPerStep).toBe(dispatches);
      expect(run.recordMsPerStep).toBeGreaterThan(0);
      expect(run.bandwidthEfficiency).toBeCloseTo(run.achievedGBps / report.limits.readGBps, 12);
      if (run.policy === 'full') expect(run.boundEfficiency).toBe(1);
      else if (run.compressed) expect(run.boundEfficiency).toBeCloseTo((run.decodeSpeedupVsFull - 1) / (run.bytesBoundSpeedupVsFull - 1), 12);
      else expect(run.boundEfficiency).toBeNull();
    }
  });

  it('per run: weight format and bytes, the step spread and the shared verdict, the GPU idle gap and the record time', () => {
    expect(report.settings.lookahead).toBe(2);
    expect(report.settings.weightFormats).toEqual(['bf16']);
    for (const run of report.runs) {
      expect(run.weightFormat).toBe('bf16');
      expect(run.weightBytes).toBe(report.model.weightBytes);
      // The bytes a step reads, summed from the uploaded buffers, equal the bf16 formula.
      expect(run.decodeWeightBytes).toBe(decodeWeightBytes(config));
      expect(run.decodeIqrMs).toBeGreaterThanOrEqual(0);
      // Two measured steps are too few for the quartile rule: no speed-up is claimed.
      if (run.policy !== 'full') expect(run.speedupVerdict).toBe('too-few-steps');
      expect(run.speedupText).toBe(run.policy === 'full' ? 'baseline' : 'too few steps to tell (2 < 4)');
      expect(run.vsFirstFormat).toBeNull();
      if (ctx.hasTimestampQuery) expect(run.gpuIdleMsPerStep).toBeGreaterThanOrEqual(0);
      else expect(run.gpuIdleMsPerStep).toBeNull();
      expect(run.promptLabel).toBeNull();
    }
  });

  it('progress ends at total', () => {
    const last = progress[progress.length - 1];
    expect(last.phase).toBe('done');
    expect(last.completed).toBe(last.total);
  });

  it('the full cache has ratio exactly 1 and kvBytes = layers x kvHeads x (prompt + decode room) x headDim x 2 (K, V) x 2 (f16)', () => {
    const maxNew = 3; // warm-up + measured steps
    for (const run of report.runs.filter((r) => r.policy === 'full')) {
      expect(run.kvRatioVsFull).toBe(1);
      expect(run.decodeSpeedupVsFull).toBe(1);
      expect(run.decodeMinSpeedupVsFull).toBe(1);
      expect(run.bytesBoundSpeedupVsFull).toBe(1);
      expect(run.compressed).toBe(false);
      expect(run.keptTokens).toBe(text.numLayers * text.numKvHeads * run.promptLen);
      expect(run.kvBytes).toBe(text.numLayers * text.numKvHeads * (run.promptLen + maxNew) * text.headDim * 2 * 2);
      // Steps 2 and 3 (after 1 warm-up) attend to prompt + 2 and prompt + 3 rows per head.
      const kvRead = text.numLayers * text.numKvHeads * (run.promptLen + 2.5) * text.headDim * 2 * 2;
      expect(run.bytesReadPerToken).toBeCloseTo(decodeWeightBytes(config) + kvRead, 6);
    }
  });

  it('sparsemm with a budget below the prompt compresses: kvRatioVsFull < 1, kvBytes from the kept lengths', () => {
    for (const run of report.runs.filter((r) => r.policy === 'sparsemm' && r.budget === 40)) {
      expect(run.compressed).toBe(true);
      expect(run.kvRatioVsFull).toBeLessThan(1);
      // Kept per head = min(capacity, prefix) + window, from the pure budget rule (independent of the engine).
      const caps = headCapacities('sparsemm', {
        layers: text.numLayers, qHeads: text.numHeads, kvHeads: text.numKvHeads, promptLength: run.promptLen,
        params: { ...defaultBudgetParams, budget: 40, window, ratio: 0.1 }, headScores,
      });
      const kept = caps.capacity.map((row) => row.map((cap) => Math.min(cap, run.promptLen - window) + window));
      expect(run.keptTokens).toBe(kept.flat().reduce((a, b) => a + b, 0));
      let rows = 0;
      for (const row of kept) for (const n of row) rows += n + 3;
      expect(run.kvBytes).toBe(rows * text.headDim * 2 * 2);
      expect(run.kvBytes).toBe(expectedKvBytes(kept, 3, text.headDim));
      const full = report.runs.find((r) => r.policy === 'full' && r.promptLen === run.promptLen);
      expect(run.kvRatioVsFull).toBeCloseTo(run.kvBytes / (full?.kvBytes ?? Number.NaN), 12);
      expect(run.bytesReadPerToken).toBeLessThan(full?.bytesReadPerToken ?? 0);
      expect(run.bytesBoundSpeedupVsFull).toBeGreaterThan(1);
    }
  });

  it('snapkv and adakv use the KvCompressor layout; a budget above the prompt does not compress', () => {
    for (const run of report.runs.filter((r) => r.policy === 'snapkv' || r.policy === 'adakv')) {
      const plan = KvCompressor.plan(text, run.promptLen, { policy: run.policy, params: { ...defaultBudgetParams, budget: 40, window, ratio: 0.1 } });
      expect(run.compressed).toBe(true);
      expect(run.kvBytes).toBe(expectedKvBytes(plan.keptPerHead, 3, text.headDim));
      expect(run.kvRatioVsFull).toBeLessThan(1);
    }
    for (const run of report.runs.filter((r) => r.policy === 'sparsemm' && r.budget === 400)) {
      expect(run.compressed).toBe(false);
      expect(run.kvRatioVsFull).toBe(1);
    }
  });

  it('frees its caches and the weights it uploaded', () => {
    expect(ctx.allocator.bytesByCategory().kv).toBe(kvBefore);
    // Only RoPE's small inv_freq table stays ('weights', cached per context by the rope op).
    expect(ctx.allocator.bytesByCategory().weights - weightsBefore).toBeLessThan(report.model.weightBytes / 100);
  });

  it('stops with BenchmarkCancelledError when the signal is aborted, freeing what it made', async () => {
    const controller = new AbortController();
    const weightsNow = ctx.allocator.bytesByCategory().weights;
    const run = runBenchmark(ctx, options({ promptLengths: [96], prefillLengths: [], signal: controller.signal }), (p) => {
      if (p.phase === 'select') controller.abort();
    });
    await expect(run).rejects.toBeInstanceOf(BenchmarkCancelledError);
    expect(ctx.allocator.bytesByCategory().kv).toBe(kvBefore);
    expect(ctx.allocator.bytesByCategory().weights).toBe(weightsNow);
  });

  it('step by step (lookahead 0) with a named prompt length: 4 steps give a verdict; a stop during decode frees everything', async () => {
    const single = await runBenchmark(
      ctx,
      options({ promptLengths: [96], prefillLengths: [], policies: [{ policy: 'sparsemm', budget: 40 }], decodeSteps: 4, warmupSteps: 0, lookahead: 0, promptLabels: { 96: 'test shape' } }),
    );
    expect(single.settings.lookahead).toBe(0);
    expect(single.note).toMatch(/Step by step/);
    for (const run of single.runs) {
      expect(run.promptLabel).toBe('test shape');
      expect(run.decodeStepMs).toHaveLength(4);
    }
    expect(['faster', 'slower', 'no-measurable-difference']).toContain(single.runs[1].speedupVerdict);
    const controller = new AbortController();
    const weightsNow = ctx.allocator.bytesByCategory().weights;
    const stopped = runBenchmark(ctx, options({ promptLengths: [96], prefillLengths: [], decodeSteps: 6, signal: controller.signal }), (p) => {
      if (p.phase === 'decode') controller.abort();
    });
    await expect(stopped).rejects.toBeInstanceOf(BenchmarkCancelledError);
    expect(ctx.allocator.bytesByCategory().kv).toBe(kvBefore);
    expect(ctx.allocator.bytesByCategory().weights).toBe(weightsNow);
  });

  it('refuses head scores of another shape and prefill lengths that are not positive integers', async () => {
    await expect(runBenchmark(ctx, options({ headScores: randomHeadScores(3, 3, 0) }))).rejects.toThrow(/headScores must be/);
    await expect(runBenchmark(ctx, options({ prefillLengths: [0] }))).rejects.toThrow(/prefillLengths must be positive integers/);
  });
});
