import type { GpuContext } from '../gpu';
import { kernelParams } from '../params';
import type { RaggedKvCache } from '../kv-cache';
import { probeParams } from '../kernel-params';

export interface AttentionProbeOutputs {
  /** u32 [numHeads]: per query head the slot with the largest attention weight (lowest slot on ties). */
  top1: GPUBuffer;
  /** f32 [numHeads, length]: attention probabilities of slots start..start+length-1 (0 past a head's length). */
  row?: { buffer: GPUBuffer; start: number; length: number };
}

/**
 * Probes one decode query's attention (q [numHeads, headDim], post-RoPE, after this step's token was appended) over
 * a layer of the cache, for visual-head scoring and heatmaps. Results are in *slot* indices of each head's slice; use
 * it on the full cache (every head keeps the whole prompt), where slot index == token position, so image-token
 * ranges map directly. On a compressed cache slot i is the head's i-th kept token, not position i.
 */
export function attentionProbe(ctx: GpuContext, q: GPUBuffer, cache: RaggedKvCache, layer: number, numHeads: number, out: AttentionProbeOutputs): void {
  const { numKvHeads, headDim } = cache.layout;
  if (numHeads % numKvHeads !== 0) throw new Error(`numHeads ${numHeads} is not a multiple of numKvHeads ${numKvHeads}`);
  const row = out.row;
  const entryPoint = row ? 'probe_top1_row' : 'probe_top1';
  const pipeline = ctx.pipelines.get('attention_probe', entryPoint, { HEAD_DIM: headDim });
  const block = kernelParams(probeParams, {
    num_heads: numHeads,
    num_kv_heads: numKvHeads,
    meta_base: cache.metaBase(layer),
    appended: cache.appendedTokens(layer),
    row_start: row?.start ?? 0,
    row_length: row?.length ?? 0,
    scale: 1 / Math.sqrt(headDim),
  });
  const buffers = [q, cache.keys(layer), cache.metadata, out.top1];
  if (row) buffers.push(row.buffer);
  ctx.record().dispatch(pipeline, block, buffers, numHeads);
}
