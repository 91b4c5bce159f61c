import type { GemvVariant, GpuContext } from '../gpu';
import { kernelParams } from '../params';
import type { PipelineSpec } from '../pipelines';
import { ropeInverseFrequencies, ropePrelude } from './rope';
import { gemvParams, qkvParams } from '../kernel-params';
import { checkWeightShape, type WeightFormat, weightFormatOf, weightReadShader } from '../weight-format';

/** Up to this many rows the decode GEMV runs (MAX_ROWS in shaders/gemv.wgsl); more rows take the tiled GEMM. */
export const gemvMaxRows = 4;
/** Invocations per GEMV workgroup (WORKGROUP in shaders/gemv.wgsl). */
export const gemvWorkgroupSize = 64;

/**
 * Output features per team (OUTS in shaders/gemv.wgsl): each x load then serves that many weight rows. Small teams
 * (SwiftShader's subgroups of 4, where a lane's loop overhead dominates) take 8 rows, 2.5x faster than 1 there;
 * GPU-sized teams of 32 take 4, keeping four independent row loads in flight per lane.
 */
export function gemvOutputsPerTeam(variant: GemvVariant): number {
  return variant.team <= 8 ? 8 : 4;
}

/** Output features one workgroup computes. */
export function gemvOutputsPerWorkgroup(variant: GemvVariant): number {
  return (gemvWorkgroupSize / variant.team) * gemvOutputsPerTeam(variant);
}

/**
 * The prelude files of the GEMV module: team_sum for this variant, sin_cos (gemv_qkv_rope's RoPE), then the read
 * functions of the weights' format.
 */
export function gemvPrelude(variant: GemvVariant, format: WeightFormat = 'bf16'): string {
  return `${variant.reduction === 'subgroup' ? 'gemv_team_subgroup' : 'gemv_team_workgroup'}+${ropePrelude}+${weightReadShader(format)}`;
}

/** The one format of weights read by one dispatch (gate and up, or q, k and v, must agree). */
function sharedFormat(op: string, weights: readonly GPUBuffer[]): WeightFormat {
  const formats = new Set(weights.map(weightFormatOf));
  if (formats.size !== 1) throw new Error(`${op}: the weights of one dispatch have different formats (${[...formats].join(', ')})`);
  return weights.length > 0 ? weightFormatOf(weights[0]) : 'bf16';
}

export interface GemvFusion {
  /** RMSNorm of each x row with this packed bf16 weight [inFeatures] before the product (eps below). */
  normWeight?: GPUBuffer;
  eps?: number;
  /** out += x W^T (the residual add) instead of out = x W^T. */
  accumulate?: boolean;
}

function checkShape(name: string, x: GPUBuffer, out: GPUBuffer, rows: number, inFeatures: number): void {
  if (inFeatures % 8 !== 0) throw new Error(`${name}: inFeatures ${inFeatures} must be a multiple of 8 (16-byte weight loads)`);
  if (!Number.isInteger(rows) || rows < 1 || rows > gemvMaxRows) throw new Error(`${name}: rows ${rows} is not in 1..${gemvMaxRows}`);
  if (out === x) throw new Error(`${name}: out must be a different buffer from x`);
}

/**
 * Every GEMV pipeline the engine dispatches on this device for weights in `format` (model load compiles them ahead):
 * the plain GEMV per row count (matmul's few-row path) and the decode step's fused forms at one row (RMSNorm
 * prologue, residual epilogue, gate/up SwiGLU with RMSNorm).
 */
export function gemvPipelines(variant: GemvVariant, format: WeightFormat = 'bf16'): PipelineSpec[] {
  const prelude = gemvPrelude(variant, format);
  const spec = (entryPoint: string, rows: number, fusion: GemvFusion): PipelineSpec => ({ shader: 'gemv', entryPoint, constants: constantsOf(variant, rows, fusion), prelude });
  const specs: PipelineSpec[] = [];
  for (let rows = 1; rows <= gemvMaxRows; rows++) specs.push(spec('gemv', rows, {}));
  // The normWeight placeholder only marks the fusion as on; constantsOf reads its presence.
  const norm = { normWeight: {} as GPUBuffer };
  specs.push(spec('gemv', 1, norm), spec('gemv', 1, { accumulate: true }), spec('gemv_swiglu', 1, norm));
  return specs;
}

/** Largest head dim and KV-head count gemv_qkv_rope takes (its uniform holds inv_freq [headDim / 2] and a row per KV head). */
export const qkvRopeMaxHeadDim = 64;
export const qkvRopeMaxKvHeads = 16;

export interface QkvRopeShape {
  inFeatures: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
}

/**
 * The (i, i + headDim/2) dim pairs each team of gemv_qkv_rope computes (PAIRS): even, dividing headDim / 2, at most the
 * GEMV's outputs per team / 2; null when the fused kernel cannot take this shape (the caller then runs the separate
 * q/k/v GEMVs, RoPE and cache append).
 */
export function qkvRopePairs(shape: QkvRopeShape, variant: GemvVariant): number | null {
  const { inFeatures, numKvHeads, headDim } = shape;
  if (inFeatures % 8 !== 0 || headDim > qkvRopeMaxHeadDim || numKvHeads > qkvRopeMaxKvHeads) return null;
  const half = headDim / 2;
  for (let pairs = Math.min(4, gemvOutputsPerTeam(variant) / 2); pairs >= 2; pairs /= 2) if (half % pairs === 0) return pairs;
  return null;
}

/** gemv_qkv_rope's pipeline for this shape and weight format (RMSNorm prologue on), or null where the shape is not supported. */
export function qkvRopePipeline(shape: QkvRopeShape, variant: GemvVariant, format: WeightFormat = 'bf16'): PipelineSpec | null {
  const pairs = qkvRopePairs(shape, variant);
  if (pairs === null) return null;
  return { shader: 'gemv', entryPoint: 'gemv_qkv_rope', constants: { TEAM: variant.team, NORM: 1, HEAD_DIM: shape.headDim, PAIRS: pairs }, prelude: gemvPrelude(variant, format) };
}

// inv_freq per (headDim, theta) (constant per model).
const invFreqTables = new Map<string, Float32Array>();

/** gemv_qkv_rope's params block (QkvParams): what changes per token is the position and the cache rows. */
export function qkvRopeParams(shape: QkvRopeShape, eps: number, cacheRows: readonly number[], rope: { position: number; theta: number }): Uint32Array {
  const key = `${shape.headDim}:${rope.theta}`;
  let freqs = invFreqTables.get(key);
  if (!freqs) {
    freqs = ropeInverseFrequencies(shape.headDim, rope.theta);
    invFreqTables.set(key, freqs);
  }
  return kernelParams(qkvParams, {
    in_features: shape.inFeatures,
    num_heads: shape.numHeads,
    num_kv_heads: shape.numKvHeads,
    position: rope.position,
    eps,
    cache_row: cacheRows,
    inv_freq: freqs,
  });
}

/**
 * A decode layer's q, k and v in one dispatch: xn = RMSNorm(x) * normWeight, q = RoPE(xn Wq^T) into `q` f32
 * [numHeads * headDim]; k = RoPE(xn Wk^T) and v = xn Wv^T packed to f16 into row cacheRows[g] of KV head g in
 * kCache / vCache (the ragged layout of kv_cache.wgsl). x f32 [inFeatures]; weights [rows, inFeatures] in one format
 * (weight-format.ts). The shape must have qkvRopePairs (checked).
 */
export function gemvQkvRope(
  ctx: GpuContext,
  x: GPUBuffer,
  weights: { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer; norm: GPUBuffer },
  eps: number,
  q: GPUBuffer,
  cache: { keys: GPUBuffer; values: GPUBuffer; rows: readonly number[] },
  shape: QkvRopeShape,
  rope: { position: number; theta: number },
  variant: GemvVariant = ctx.gemv,
): void {
  const format = sharedFormat('gemvQkvRope', [weights.q, weights.k, weights.v]);
  checkWeightShape('gemvQkvRope', format, shape.inFeatures);
  const spec = qkvRopePipeline(shape, variant, format);
  if (!spec) throw new Error(`gemvQkvRope: shape ${JSON.stringify(shape)} is not supported (see qkvRopePairs)`);
  if (cache.rows.length !== shape.numKvHeads) throw new Error(`gemvQkvRope: ${cache.rows.length} cache rows for ${shape.numKvHeads} KV heads`);
  const pipeline = ctx.pipelines.get(spec.shader, spec.entryPoint, spec.constants, spec.prelude);
  const block = qkvRopeParams(shape, eps, cache.rows, rope);
  const pairsPerWorkgroup = (gemvWorkgroupSize / variant.team) * (spec.constants?.PAIRS ?? 1);
  const pairs = (shape.numHeads + 2 * shape.numKvHeads) * (shape.headDim / 2);
  ctx.record().dispatch(pipeline, block, [x, weights.q, weights.k, weights.norm, q, weights.v, cache.keys, cache.values], Math.ceil(pairs / pairsPerWorkgroup));
}

function constantsOf(variant: GemvVariant, rows: number, fusion: GemvFusion): Record<string, number> {
  return { ROWS: rows, TEAM: variant.team, OUTS: gemvOutputsPerTeam(variant), NORM: fusion.normWeight ? 1 : 0, ACCUMULATE: fusion.accumulate ? 1 : 0 };
}

/**
 * Decode GEMV: out [rows, outFeatures] (=, or += with accumulate) RMSNorm?(x) W^T + bias. x f32 [rows, inFeatures]
 * (inFeatures % 8 == 0), weight [outFeatures, inFeatures] in its format (weight-format.ts), bias packed bf16
 * [outFeatures] or null.
 * `variant` defaults to the device's choice (tests pass both).
 */
export function gemv(
  ctx: GpuContext,
  x: GPUBuffer,
  weight: GPUBuffer,
  bias: GPUBuffer | null,
  out: GPUBuffer,
  rows: number,
  inFeatures: number,
  outFeatures: number,
  fusion: GemvFusion = {},
  variant: GemvVariant = ctx.gemv,
): void {
  checkShape('gemv', x, out, rows, inFeatures);
  const format = weightFormatOf(weight);
  checkWeightShape('gemv', format, inFeatures);
  if (outFeatures === 0) return;
  const pipeline = ctx.pipelines.get('gemv', 'gemv', constantsOf(variant, rows, fusion), gemvPrelude(variant, format));
  const block = kernelParams(gemvParams, { in_features: inFeatures, out_features: outFeatures, has_bias: Boolean(bias), eps: fusion.eps ?? 0 });
  // has_bias and NORM keep an absent bias or norm weight unread.
  const buffers = [x, weight, bias ?? ctx.placeholder(), fusion.normWeight ?? ctx.placeholder(), out];
  ctx.record().dispatch(pipeline, block, buffers, Math.ceil(outFeatures / gemvOutputsPerWorkgroup(variant)));
}

/**
 * The gated MLP's first half in one pass: out [rows, features] = silu(xn Wg^T) * (xn Wu^T), xn = RMSNorm?(x).
 * x f32 [rows, inFeatures]; gate and up [features, inFeatures] in one format.
 */
export function gemvSwiglu(
  ctx: GpuContext,
  x: GPUBuffer,
  gate: GPUBuffer,
  up: GPUBuffer,
  out: GPUBuffer,
  rows: number,
  inFeatures: number,
  features: number,
  fusion: Omit<GemvFusion, 'accumulate'> = {},
  variant: GemvVariant = ctx.gemv,
): void {
  checkShape('gemvSwiglu', x, out, rows, inFeatures);
  const format = sharedFormat('gemvSwiglu', [gate, up]);
  checkWeightShape('gemvSwiglu', format, inFeatures);
  if (features === 0) return;
  const pipeline = ctx.pipelines.get('gemv', 'gemv_swiglu', constantsOf(variant, rows, fusion), gemvPrelude(variant, format));
  const block = kernelParams(gemvParams, { in_features: inFeatures, out_features: features, has_bias: false, eps: fusion.eps ?? 0 });
  ctx.record().dispatch(pipeline, block, [x, gate, up, fusion.normWeight ?? ctx.placeholder(), out], Math.ceil(features / gemvOutputsPerWorkgroup(variant)));
}
