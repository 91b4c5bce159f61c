/**
 * The time-to-first-token half of the benchmark (issue 14): the prefill GEMM and attention kernels at the shapes the
 * model runs them, against the adapter's measured multiply-add peak, then the real vision tower on one tile and the
 * real text prefill at the chosen prompt lengths.
 *
 * Kernel figures are wall clock from submit to queue idle, best of a few runs after a warm-up run: every adapter has
 * that clock, and at these sizes (tens of MFLOP at least) the submit overhead is small next to the kernel.
 */
import type { ModelConfig } from '../model-io/config';
import { f32ArrayToBf16 } from '../model-io/bf16';
import { randomF32 } from '../sparsemm/random';
import type { GpuContext } from './gpu';
import { measureComputePeak } from './adapter-limits';
import type { VlmModel } from './model';
import { prefillAttention, type PrefillAttentionShape } from './ops/attention';
import { matmul } from './ops/matmul';

/** One kernel at one shape. */
export interface KernelFigure {
  /** What the shape is in the model, e.g. "text gate/up_proj". */
  name: string;
  /** e.g. "[256 x 576] x [576 x 1536]" or "1024 queries x 1024 keys x 12 heads x 64, bidirectional". */
  shape: string;
  /** Floating-point operations of one run (a multiply-add is 2; causal attention counts only the visible half). */
  flops: number;
  /** Best run, ms. */
  ms: number;
  gflops: number;
  /** gflops / limits.peakGflops. */
  efficiency: number;
}

export interface PrefillReport {
  /** The text prompt lengths measured (textTokensPerSecond keys). */
  textLengths: number[];
  /** Every GEMM shape measured. */
  gemm: KernelFigure[];
  /** Total flops / total time over the text shapes (at the first text length) and over the vision shapes. */
  gemmGflops: { text: number; vision: number };
  gemmEfficiency: { text: number; vision: number };
  attention: KernelFigure[];
  attentionGflops: { text: number; vision: number };
  attentionEfficiency: { text: number; vision: number };
  /** Wall time of the real vision tower + connector for one tile (random pixels), or null when not measured. */
  visionMsPerTile: number | null;
  /** Real text prefill (full cache) on a synthetic image-token-heavy prompt, per prompt length. */
  textTokensPerSecond: Record<string, number>;
  textPrefillMs: Record<string, number>;
}

export interface PrefillMeasureOptions {
  config: ModelConfig;
  /** Text prompt lengths (>= 1). The kernel shapes use the first. */
  textLengths: number[];
  /** Whether to run the vision tower on one tile (the slowest part on an emulated adapter). */
  visionTile: boolean;
  seed: number;
  /** Runs the real text prefill of `length` tokens and returns its wall time. */
  textPrefillMs: (length: number) => Promise<number>;
  onProgress?: (message: string) => void;
  checkCancel?: () => void;
}

const storageUsage = (): GPUBufferUsageFlags => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
/** Runs measured after the warm-up: two for small shapes, one above this many flops (seconds each under emulation). */
const measuredRuns = 2;
const singleRunFlops = 2e9;

/** Best wall time (submit to idle) of `record` over the measured runs after one warm-up run. */
async function bestMs(ctx: GpuContext, flops: number, record: () => void): Promise<number> {
  record();
  await ctx.finish();
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < (flops > singleRunFlops ? 1 : measuredRuns); run++) {
    const started = performance.now();
    record();
    await ctx.finish();
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

function figure(name: string, shape: string, flops: number, ms: number, peakGflops: number): KernelFigure {
  const gflops = flops / (ms * 1e6);
  return { name, shape, flops, ms, gflops, efficiency: gflops / peakGflops };
}

/** Total flops / total time of some figures. */
function combinedGflops(figures: KernelFigure[]): number {
  const flops = figures.reduce((n, f) => n + f.flops, 0);
  const ms = figures.reduce((n, f) => n + f.ms, 0);
  return ms > 0 ? flops / (ms * 1e6) : Number.NaN;
}

interface GemmShape {
  name: string;
  group: 'text' | 'vision';
  rows: number;
  inFeatures: number;
  outFeatures: number;
}

/** The GEMMs of one text layer's prefill and one vision layer, at their real sizes. */
export function prefillGemmShapes(config: ModelConfig, textLength: number): GemmShape[] {
  const { text, vision } = config;
  const qDim = text.numHeads * text.headDim;
  return [
    { name: 'text q/o_proj', group: 'text', rows: textLength, inFeatures: text.hiddenSize, outFeatures: qDim },
    { name: 'text gate/up_proj', group: 'text', rows: textLength, inFeatures: text.hiddenSize, outFeatures: text.intermediateSize },
    { name: 'text down_proj', group: 'text', rows: textLength, inFeatures: text.intermediateSize, outFeatures: text.hiddenSize },
    { name: 'vision q/k/v/out_proj', group: 'vision', rows: vision.numPatches, inFeatures: vision.hiddenSize, outFeatures: vision.hiddenSize },
    { name: 'vision fc1', group: 'vision', rows: vision.numPatches, inFeatures: vision.hiddenSize, outFeatures: vision.intermediateSize },
    { name: 'vision fc2', group: 'vision', rows: vision.numPatches, inFeatures: vision.intermediateSize, outFeatures: vision.hiddenSize },
  ];
}

/**
 * The prefill kernels at the model's shapes, the vision tower on one tile and the text prefill at each length.
 * Efficiencies are against the adapter's multiply-add peak: the best of `measuredPeakGflops` (measured before) and a
 * second measurement right after the kernels, so that a machine whose load changes meanwhile (a shared CPU under
 * emulation) does not inflate them. Returns that peak with the figures.
 */
export async function measurePrefill(
  ctx: GpuContext,
  model: VlmModel,
  measuredPeakGflops: number,
  options: PrefillMeasureOptions,
): Promise<{ peakGflops: number; prefill: PrefillReport }> {
  const { config, seed } = options;
  const progress = options.onProgress ?? (() => undefined);
  const check = options.checkCancel ?? (() => undefined);
  if (options.textLengths.length === 0) throw new RangeError('measurePrefill: no text length given');
  const textLength = options.textLengths[0];

  const buffers: GPUBuffer[] = [];
  const f32Buffer = (count: number, seedOffset: number, label: string): GPUBuffer => {
    const buffer = ctx.allocator.create('scratch', Math.max(4, count * 4), storageUsage(), label);
    buffers.push(buffer);
    ctx.upload(buffer, randomF32(count, seed + seedOffset, 1));
    return buffer;
  };
  const gemm: KernelFigure[] = [];
  const attention: KernelFigure[] = [];
  try {
    for (const [index, shape] of prefillGemmShapes(config, textLength).entries()) {
      check();
      const { rows, inFeatures, outFeatures } = shape;
      const x = f32Buffer(rows * inFeatures, 10 + index, 'benchmark gemm x');
      const bits = f32ArrayToBf16(randomF32(outFeatures * inFeatures, seed + 20 + index, 0.05));
      const weight = ctx.allocator.create('scratch', bits.byteLength, storageUsage(), 'benchmark gemm weight');
      buffers.push(weight);
      ctx.upload(weight, bits);
      const out = f32Buffer(rows * outFeatures, 30 + index, 'benchmark gemm out');
      const flops = 2 * rows * inFeatures * outFeatures;
      const ms = await bestMs(ctx, flops, () => matmul(ctx, x, weight, null, out, rows, inFeatures, outFeatures));
      const fig = figure(shape.name, `[${rows} x ${inFeatures}] x [${inFeatures} x ${outFeatures}]`, flops, ms, measuredPeakGflops);
      gemm.push(fig);
      progress(`gemm ${fig.name} ${fig.shape}: ${fig.gflops.toFixed(2)} GFLOP/s`);
      for (const buffer of buffers.splice(0)) ctx.allocator.destroy(buffer);
    }
    const { text, vision } = config;
    const attentionShapes: { name: string; group: 'text' | 'vision'; shape: PrefillAttentionShape }[] = [
      { name: 'text prompt (causal)', group: 'text', shape: { queries: textLength, keys: textLength, numHeads: text.numHeads, numKvHeads: text.numKvHeads, headDim: text.headDim, causal: true } },
      { name: 'vision tile (bidirectional)', group: 'vision', shape: { queries: vision.numPatches, keys: vision.numPatches, numHeads: vision.numHeads, numKvHeads: vision.numHeads, headDim: vision.headDim, causal: false } },
    ];
    for (const [index, { name, shape }] of attentionShapes.entries()) {
      check();
      const q = f32Buffer(shape.queries * shape.numHeads * shape.headDim, 40 + index, 'benchmark attention q');
      const k = f32Buffer(shape.keys * shape.numKvHeads * shape.headDim, 50 + index, 'benchmark attention k');
      const v = f32Buffer(shape.keys * shape.numKvHeads * shape.headDim, 60 + index, 'benchmark attention v');
      const out = f32Buffer(shape.queries * shape.numHeads * shape.headDim, 70 + index, 'benchmark attention out');
      // QK^T and PV: 2 multiply-adds per (query, visible key, head, dim); causal sees keys 0..i.
      const pairs = shape.causal ? (shape.queries * (shape.queries + 1)) / 2 : shape.queries * shape.keys;
      const flops = 4 * pairs * shape.numHeads * shape.headDim;
      const ms = await bestMs(ctx, flops, () => prefillAttention(ctx, q, k, v, out, shape));
      const fig = figure(name, `${shape.queries} queries x ${shape.keys} keys x ${shape.numHeads} heads (${shape.numKvHeads} KV) x ${shape.headDim}`, flops, ms, measuredPeakGflops);
      attention.push(fig);
      progress(`attention ${fig.name}: ${fig.gflops.toFixed(2)} GFLOP/s`);
      for (const buffer of buffers.splice(0)) ctx.allocator.destroy(buffer);
    }
  } finally {
    ctx.submit();
    for (const buffer of buffers) ctx.allocator.destroy(buffer);
  }

  check();
  const peakGflops = Math.max(measuredPeakGflops, (await measureComputePeak(ctx)).peakGflops);
  for (const fig of [...gemm, ...attention]) fig.efficiency = fig.gflops / peakGflops;
  progress(`peak after the kernels: ${peakGflops.toFixed(2)} GFLOP/s (the best of both measurements is used)`);

  let visionMsPerTile: number | null = null;
  if (options.visionTile) {
    check();
    const { vision } = config;
    const pixels = randomF32(vision.numChannels * vision.imageSize * vision.imageSize, seed + 80, 1);
    await ctx.finish();
    const started = performance.now();
    const features = model.encodeImage(pixels, 1);
    await ctx.finish();
    visionMsPerTile = performance.now() - started;
    ctx.allocator.destroy(features);
    progress(`vision tower: ${visionMsPerTile.toFixed(0)} ms per tile`);
  }

  const textTokensPerSecond: Record<string, number> = {};
  const textPrefillMs: Record<string, number> = {};
  for (const length of options.textLengths) {
    check();
    const ms = await options.textPrefillMs(length);
    textPrefillMs[String(length)] = ms;
    textTokensPerSecond[String(length)] = length / (ms / 1000);
    progress(`text prefill ${length} tokens: ${ms.toFixed(0)} ms (${textTokensPerSecond[String(length)].toFixed(1)} tokens/s)`);
  }

  const pick = (figures: KernelFigure[], names: string[]): KernelFigure[] => figures.filter((f) => names.includes(f.name));
  const shapes = prefillGemmShapes(config, textLength);
  const textGemm = pick(gemm, shapes.filter((s) => s.group === 'text').map((s) => s.name));
  const visionGemm = pick(gemm, shapes.filter((s) => s.group === 'vision').map((s) => s.name));
  const gemmGflops = { text: combinedGflops(textGemm), vision: combinedGflops(visionGemm) };
  const attentionGflops = { text: attention[0].gflops, vision: attention[1].gflops };
  const prefill: PrefillReport = {
    textLengths: [...options.textLengths],
    gemm,
    gemmGflops,
    gemmEfficiency: { text: gemmGflops.text / peakGflops, vision: gemmGflops.vision / peakGflops },
    attention,
    attentionGflops,
    attentionEfficiency: { text: attentionGflops.text / peakGflops, vision: attentionGflops.vision / peakGflops },
    visionMsPerTile,
    textTokensPerSecond,
    textPrefillMs,
  };
  return { peakGflops, prefill };
}
