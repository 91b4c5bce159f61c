import type { GpuContext } from '../gpu';
import { kernelParams } from '../params';
import type { RaggedKvCache } from '../kv-cache';
import { attendParams } from '../kernel-params';

/** Keys per split-K workgroup: CHUNK in shaders/decode_attention.wgsl (tests/unit/param-layouts.test.ts checks it). */
export const decodeChunkKeys = 64;
/** Query heads per KV head at most: MAX_GROUP in shaders/decode_attention.wgsl (checked by the same test). */
export const maxDecodeGroup = 16;

/**
 * What changes from token to token in a layer's decode attention: the tokens appended (a field of both passes' params)
 * and the chunks of 64 keys of the longest slice (pass 1 runs one workgroup per (KV head, chunk)).
 */
export function decodeAttentionLengths(cache: RaggedKvCache, layer: number): { appended: number; maxChunks: number } {
  const appended = cache.appendedTokens(layer);
  let longest = 0;
  for (const kept of cache.layout.keptPerHead[layer]) longest = Math.max(longest, kept + appended);
  if (longest === 0) throw new Error(`layer ${layer}: decode attention over an empty cache`);
  return { appended, maxChunks: Math.ceil(longest / decodeChunkKeys) };
}

/** The params block of both passes of a layer's decode attention, and the number of pass-1 workgroups. */
export function decodeAttentionStep(cache: RaggedKvCache, layer: number, numHeads: number): { block: Uint32Array; partialWorkgroups: number } {
  const { numKvHeads, headDim } = cache.layout;
  if (numHeads % numKvHeads !== 0) throw new Error(`numHeads ${numHeads} is not a multiple of numKvHeads ${numKvHeads}`);
  if (headDim % 8 !== 0) throw new Error(`decode attention reads cache rows 8 f16 at a time: headDim ${headDim} is not a multiple of 8`);
  if (numHeads / numKvHeads > maxDecodeGroup) throw new Error(`GQA groups above ${maxDecodeGroup} query heads are not supported`);
  const { appended, maxChunks } = decodeAttentionLengths(cache, layer);
  const block = kernelParams(attendParams, {
    num_heads: numHeads,
    num_kv_heads: numKvHeads,
    meta_base: cache.metaBase(layer),
    appended,
    max_chunks: maxChunks,
    scale: 1 / Math.sqrt(headDim),
  });
  return { block, partialWorkgroups: numKvHeads * maxChunks };
}

/** The split-K scratch, sized for the cache's longest possible slice so that it does not grow during generation. */
export function decodeAttentionScratch(ctx: GpuContext, cache: RaggedKvCache, numHeads: number): GPUBuffer {
  const scratchChunks = Math.ceil(cache.maxSliceLength / decodeChunkKeys);
  return ctx.scratch('decode attention partials', numHeads * scratchChunks * (cache.layout.headDim + 2) * 4);
}

/**
 * One decode step's attention over the ragged head-wise cache: query head h attends to exactly the rows its KV head
 * (h / (numHeads / numKvHeads)) holds, i.e. cache.lengths(layer)[g] rows from that head's slot offset (append this
 * step's token first). Flash-decoding: pass 1 splits every head's keys into chunks of 64 (one workgroup per
 * (KV head, chunk), shared by the GQA group), pass 2 merges the chunks per query head, so an 8K-token cache yields
 * hundreds of workgroups. q [numHeads, headDim] (post-RoPE), out [numHeads, headDim]; scale 1/sqrt(headDim).
 */
export function decodeAttention(ctx: GpuContext, q: GPUBuffer, cache: RaggedKvCache, layer: number, out: GPUBuffer, numHeads: number): void {
  const { numKvHeads, headDim } = cache.layout;
  const { block, partialWorkgroups } = decodeAttentionStep(cache, layer, numHeads);
  const partials = decodeAttentionScratch(ctx, cache, numHeads);
  const constants = { HEAD_DIM: headDim, GROUP: numHeads / numKvHeads };
  const recorder = ctx.record();
  recorder.dispatch(
    ctx.pipelines.get('decode_attention', 'attend_partial', constants),
    block,
    [q, cache.keys(layer), cache.values(layer), cache.metadata, partials],
    partialWorkgroups,
  );
  recorder.dispatch(ctx.pipelines.get('decode_attention', 'attend_reduce', constants), block, [cache.metadata, partials, out], numHeads);
}
