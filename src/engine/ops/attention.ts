import type { GpuContext } from '../gpu';
import { kernelParams } from '../params';
import type { PipelineSpec } from '../pipelines';
import { attentionParams } from '../kernel-params';

export interface PrefillAttentionShape {
  queries: number;
  keys: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Query i sees keys 0..i + (keys - queries); false for the (bidirectional) vision tower. */
  causal: boolean;
}

/** Must match shaders/attention.wgsl. */
const queryRowsPerWorkgroup = 16;
const rowThreads = 8;
const maxDimsPerThread = 16;
export const maxAttentionHeadDim = rowThreads * maxDimsPerThread;

/**
 * Largest power-of-two key tile (<= 32) whose q/k/v/score tiles fit the device's workgroup memory.
 * With headDim 64 and the 16 KiB WebGPU default this is 16.
 */
function keyTileSize(ctx: GpuContext, headDim: number): number {
  const limit = ctx.device.limits.maxComputeWorkgroupStorageSize;
  const bytes = (bk: number) => 4 * (queryRowsPerWorkgroup * headDim + 2 * bk * headDim + queryRowsPerWorkgroup * bk + 2 * queryRowsPerWorkgroup);
  let bk = 32;
  while (bk > 1 && bytes(bk) > limit) bk /= 2;
  if (bytes(bk) > limit) throw new Error(`Attention with head dim ${headDim} does not fit this GPU's workgroup memory (${limit} bytes).`);
  return bk;
}

/** Must match FQ, FK and FLASH_WG in shaders/attention.wgsl (the register-blocked `flash` entry point). */
const flashQueryRows = 32;
const flashKeyTile = 32;
export const flashWorkgroupSize = 64;

/** Bytes of the flash kernel's workgroup memory: the K/V tile, the score tile and two per-row values. */
export function flashWorkgroupBytes(headDim: number): number {
  return 4 * (flashKeyTile * headDim + flashKeyTile * flashQueryRows + 2 * flashQueryRows);
}

/** Whether the register-blocked kernel serves this head dim on this device (else the general `main` kernel does). */
function usesFlash(ctx: GpuContext, headDim: number): boolean {
  return (headDim === 32 || headDim === 64) && flashWorkgroupBytes(headDim) <= ctx.device.limits.maxComputeWorkgroupStorageSize;
}

/** The pipeline prefillAttention uses for this head dim on this device (model load compiles it ahead). */
export function prefillAttentionPipeline(ctx: GpuContext, headDim: number): PipelineSpec {
  return usesFlash(ctx, headDim)
    ? { shader: 'attention', entryPoint: 'flash', constants: { HEAD_DIM: headDim } }
    : { shader: 'attention', entryPoint: 'main', constants: { HEAD_DIM: headDim, BK: keyTileSize(ctx, headDim) } };
}

/**
 * Scaled dot-product attention over full K/V (flash-style, online softmax; no [T, T] buffer), scale 1/sqrt(headDim), GQA.
 * q [queries, numHeads, headDim], k/v [keys, numKvHeads, headDim] (keys after RoPE), out [queries, numHeads, headDim].
 */
export function prefillAttention(
  ctx: GpuContext,
  q: GPUBuffer,
  k: GPUBuffer,
  v: GPUBuffer,
  out: GPUBuffer,
  shape: PrefillAttentionShape,
): void {
  const { queries, keys, numHeads, numKvHeads, headDim, causal } = shape;
  if (numHeads % numKvHeads !== 0) throw new Error(`numHeads ${numHeads} is not a multiple of numKvHeads ${numKvHeads}`);
  if (headDim > maxAttentionHeadDim) throw new Error(`head dim ${headDim} > ${maxAttentionHeadDim} is not supported`);
  if (causal && keys < queries) throw new Error(`causal attention needs keys (${keys}) >= queries (${queries})`);
  if (queries === 0) return;
  const spec = prefillAttentionPipeline(ctx, headDim);
  const pipeline = ctx.pipelines.get(spec.shader, spec.entryPoint, spec.constants);
  const queryTiles = Math.ceil(queries / (spec.entryPoint === 'flash' ? flashQueryRows : queryRowsPerWorkgroup));
  ctx
    .record()
    .dispatch(
      pipeline,
      kernelParams(attentionParams, {
        queries,
        keys,
        num_heads: numHeads,
        num_kv_heads: numKvHeads,
        causal,
        query_offset: Math.max(0, keys - queries),
        query_tiles: queryTiles,
        scale: 1 / Math.sqrt(headDim),
      }),
      [q, k, v, out],
      queryTiles * numHeads,
    );
}
