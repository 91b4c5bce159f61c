import type { GpuContext } from '../gpu';
import { kernelParams } from '../params';
import type { PipelineSpec } from '../pipelines';
import { gemv, gemvMaxRows, gemvPipelines } from './gemv';
import { gemmParams } from '../kernel-params';
import { checkWeightShape, type WeightFormat, weightFormatOf, weightReadShader } from '../weight-format';

export { gemvMaxRows };
const gemmTile = 64;

/**
 * Every pipeline matmul may use on this device for weights in `format` (model load compiles them ahead): the GEMM and
 * the plain GEMV per row count.
 */
export function matmulPipelines(ctx: GpuContext, format: WeightFormat = 'bf16'): PipelineSpec[] {
  const gemvs = gemvPipelines(ctx.gemv, format).filter((spec) => spec.entryPoint === 'gemv' && !spec.constants?.NORM && !spec.constants?.ACCUMULATE);
  return [gemmPipeline(ctx, format), ...gemvs];
}

/**
 * The GEMM's K slice: 32 when the device has 16 KiB of workgroup memory (every WebGPU adapter does: it is the spec's
 * minimum), 16 otherwise. Tiles are 2 x 64 x TILE_K f32.
 */
export function gemmKSlice(ctx: GpuContext): number {
  return ctx.device.limits.maxComputeWorkgroupStorageSize >= 2 * gemmTile * 32 * 4 ? 32 : 16;
}

function gemmPipeline(ctx: GpuContext, format: WeightFormat): PipelineSpec {
  return { shader: 'matmul', entryPoint: 'gemm', constants: { TILE_K: gemmKSlice(ctx) }, prelude: weightReadShader(format) };
}

/**
 * out = x W^T (+ bias): x f32 [rows, inFeatures], weight [outFeatures, inFeatures] (PyTorch Linear layout,
 * inFeatures even) in its format (weight-format.ts: packed bf16, or q8 / q4 with inFeatures % 32 == 0), bias packed
 * bf16 [outFeatures] or null, out f32 [rows, outFeatures] (not aliasing x).
 * rows <= gemvMaxRows with inFeatures % 8 == 0 runs the decode GEMV (ops/gemv.ts), anything else the tiled GEMM.
 */
export function matmul(
  ctx: GpuContext,
  x: GPUBuffer,
  weight: GPUBuffer,
  bias: GPUBuffer | null,
  out: GPUBuffer,
  rows: number,
  inFeatures: number,
  outFeatures: number,
): void {
  if (inFeatures % 2 !== 0) throw new Error(`matmul: inFeatures ${inFeatures} must be even (two bf16 per packed word)`);
  if (out === x) throw new Error('matmul: out must be a different buffer from x');
  const format = weightFormatOf(weight);
  checkWeightShape('matmul', format, inFeatures);
  if (rows === 0 || outFeatures === 0) return;
  if (rows <= gemvMaxRows && inFeatures % 8 === 0) {
    gemv(ctx, x, weight, bias, out, rows, inFeatures, outFeatures);
    return;
  }
  const block = kernelParams(gemmParams, { rows, in_features: inFeatures, out_features: outFeatures, has_bias: Boolean(bias) });
  const gemm = gemmPipeline(ctx, format);
  const pipeline = ctx.pipelines.get(gemm.shader, gemm.entryPoint, gemm.constants, gemm.prelude);
  // has_bias = 0 keeps the placeholder unread.
  ctx.record().dispatch(pipeline, block, [x, weight, bias ?? ctx.placeholder(), out], [Math.ceil(outFeatures / gemmTile), Math.ceil(rows / gemmTile), 1]);
}
