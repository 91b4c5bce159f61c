import type { GpuContext } from '../gpu';
import { kernelParams } from '../params';
import { poolParams, scoreParams, selectParams } from '../kernel-params';

export interface WindowScoreShape {
  tokens: number;
  window: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Odd (the official code uses 5 with padding 2, so the output keeps the prefix length). */
  poolKernel: number;
  pooling: 'avg' | 'max';
}

/**
 * SnapKV-style scores of the prompt prefix, per KV head (official SparseMM rule): the last `window` queries attend to
 * all keys with the causal mask inside the window, softmax in f32 over each full row, mean over the window queries
 * of the prefix columns, mean over the GQA group, then avg_pool1d (count_include_pad: edges divided by the kernel
 * size) or max_pool1d with padding poolKernel/2, stride 1. q [tokens, numHeads, headDim], k [tokens, numKvHeads,
 * headDim] after RoPE; out f32 [numKvHeads, prefixLength], prefixLength = tokens - window.
 */
export function windowScores(ctx: GpuContext, q: GPUBuffer, k: GPUBuffer, out: GPUBuffer, shape: WindowScoreShape): void {
  const { tokens, window, numHeads, numKvHeads, headDim, poolKernel, pooling } = shape;
  const prefix = tokens - window;
  if (window < 1 || prefix < 1) throw new Error(`window scores need 1 <= window < tokens (window ${window}, tokens ${tokens})`);
  if (numHeads % numKvHeads !== 0) throw new Error(`numHeads ${numHeads} is not a multiple of numKvHeads ${numKvHeads}`);
  if (poolKernel < 1 || poolKernel % 2 === 0) throw new Error(`pool kernel ${poolKernel} must be odd (padding kernel/2 keeps the length)`);
  const statsBytes = numHeads * window * 2 * 4;
  const meansBytes = numKvHeads * prefix * 4;
  // Two buffers: WebGPU forbids binding one buffer both read-only and writable in a dispatch, even at disjoint ranges.
  const stats = ctx.scratch('kv selection row stats', statsBytes);
  const means = ctx.scratch('kv selection window means', meansBytes);
  const constants = { HEAD_DIM: headDim };
  const scoreBlock = kernelParams(scoreParams, { tokens, window, num_heads: numHeads, num_kv_heads: numKvHeads, scale: 1 / Math.sqrt(headDim) });
  const recorder = ctx.record();
  recorder.dispatch(ctx.pipelines.get('kv_selection', 'row_stats', constants), scoreBlock, [q, k, stats], numHeads * window);
  recorder.dispatch(ctx.pipelines.get('kv_selection', 'window_mean', constants), scoreBlock, [q, k, stats, means], Math.ceil((numKvHeads * prefix) / 64));
  recorder.dispatch(
    ctx.pipelines.get('kv_selection', 'pool', constants),
    kernelParams(poolParams, { prefix, num_kv_heads: numKvHeads, kernel: poolKernel, use_max: pooling === 'max' }),
    [means, out],
    Math.ceil((numKvHeads * prefix) / 64),
  );
}

/**
 * Prompt tokens each head keeps: its capacity (clamped to prefixLength when given: a head whose capacity exceeds the
 * prefix keeps all of it, the excess is not redistributed) plus the window.
 */
export function keptPerHeadFromCapacities(capacities: number[], window: number, prefixLength?: number): number[] {
  return capacities.map((capacity) => (prefixLength === undefined ? capacity : Math.min(capacity, prefixLength)) + window);
}

/**
 * Per KV head: the top-capacity prefix positions by pooled score (ties to the lower position), ascending, then the
 * last `window` positions; written to `out` (u32) head after head, head g starting at the sum of the earlier heads'
 * keptPerHeadFromCapacities(capacities, window, tokens - window). GPU radix select + ordered compaction, one
 * workgroup per head. pooledScores f32 [numKvHeads, tokens - window] (from windowScores).
 */
export function selectKeptPositions(ctx: GpuContext, pooledScores: GPUBuffer, capacities: number[], tokens: number, window: number, out: GPUBuffer): void {
  const prefix = tokens - window;
  if (window < 0 || prefix < 0) throw new Error(`selection needs 0 <= window <= tokens (window ${window}, tokens ${tokens})`);
  const kept = keptPerHeadFromCapacities(capacities, window, prefix);
  const pipeline = ctx.pipelines.get('kv_selection', 'select_top');
  const recorder = ctx.record();
  let outStart = 0;
  capacities.forEach((capacity, g) => {
    if (!Number.isInteger(capacity) || capacity < 0) throw new Error(`head ${g}: capacity ${capacity} is not a non-negative integer`);
    // One dispatch per head: each gets its own uniform block, so nothing is uploaded that a later call could overwrite.
    recorder.dispatch(pipeline, kernelParams(selectParams, { prefix, window, kv_head: g, capacity, out_start: outStart }), [pooledScores, out], 1);
    outStart += kept[g];
  });
}
