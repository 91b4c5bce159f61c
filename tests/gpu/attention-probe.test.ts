import { describe, expect, it } from 'vitest';
import { RaggedKvCache } from '../../src/engine/kv-cache';
import { attentionProbe } from '../../src/engine/ops/attention-probe';
import * as reference from '../reference/cpu-attention';
import { roundToF16 } from '../reference/f16';
import { empty, gpuContext, maxAbsDiff, randomArray, storage } from '../helpers/gpu';

const numHeads = 6;
const numKvHeads = 2;
const headDim = 16;

async function fullCache(promptLength: number, k: Float32Array, newK: Float32Array): Promise<RaggedKvCache> {
  const ctx = await gpuContext();
  const cache = RaggedKvCache.create(ctx, { numLayers: 1, numKvHeads, headDim, promptLength, keptPerHead: [[promptLength, promptLength]], maxNewTokens: 1 });
  const v = new Float32Array(k.length);
  cache.storePrefill(0, storage(ctx, k), storage(ctx, v), null);
  cache.append(0, storage(ctx, newK), storage(ctx, new Float32Array(newK.length)));
  return cache;
}

/** Each KV head's keys as the cache holds them (f16-rounded): the probe scores those. */
function headKeysOf(k: Float32Array, newK: Float32Array, promptLength: number): Float32Array[] {
  const all = Array.from({ length: promptLength }, (_, i) => i);
  return [0, 1].map((g) => {
    const rows = reference.gatherHeadRows(k, numKvHeads, headDim, g, all);
    const out = new Float32Array(rows.length + headDim);
    out.set(rows);
    out.set(newK.subarray(g * headDim, (g + 1) * headDim), rows.length);
    return roundToF16(out);
  });
}

describe('attention probe (full cache: slot == position)', () => {
  it('top1 and the probability row over a key range match the CPU reference', async () => {
    const ctx = await gpuContext();
    const promptLength = 300; // more keys than the 256-thread workgroup
    const k = randomArray(promptLength * numKvHeads * headDim, 1, 2);
    const newK = randomArray(numKvHeads * headDim, 2, 2);
    const q = randomArray(numHeads * headDim, 3, 2);
    const cache = await fullCache(promptLength, k, newK);
    const start = 250;
    const length = 60; // runs 9 past the 301 keys: those read 0
    const top1 = empty(ctx, numHeads);
    const row = empty(ctx, numHeads * length);
    attentionProbe(ctx, storage(ctx, q), cache, 0, numHeads, { top1, row: { buffer: row, start, length } });
    const want = reference.attentionProbe(q, headKeysOf(k, newK, promptLength), numHeads, headDim, start, length);
    expect(Array.from(await ctx.readU32(top1, numHeads))).toEqual(Array.from(want.top1));
    expect(maxAbsDiff(await ctx.readF32(row, numHeads * length), want.rows)).toBeLessThan(1e-6);

    // Without a row only top1 is written.
    const top1Only = empty(ctx, numHeads);
    attentionProbe(ctx, storage(ctx, q), cache, 0, numHeads, { top1: top1Only });
    expect(Array.from(await ctx.readU32(top1Only, numHeads))).toEqual(Array.from(want.top1));
    cache.destroy();
  });

  it('ties go to the lowest position', async () => {
    const ctx = await gpuContext();
    const promptLength = 280;
    // Keys repeat with period 7, so every maximum appears many times, across threads of the workgroup.
    const base = randomArray(7 * numKvHeads * headDim, 5, 2);
    const k = new Float32Array(promptLength * numKvHeads * headDim);
    for (let t = 0; t < promptLength; t++) k.set(base.subarray((t % 7) * numKvHeads * headDim, ((t % 7) + 1) * numKvHeads * headDim), t * numKvHeads * headDim);
    const newK = base.slice(0, numKvHeads * headDim);
    const q = randomArray(numHeads * headDim, 6, 2);
    const cache = await fullCache(promptLength, k, newK);
    const top1 = empty(ctx, numHeads);
    attentionProbe(ctx, storage(ctx, q), cache, 0, numHeads, { top1 });
    const got = await ctx.readU32(top1, numHeads);
    const want = reference.attentionProbe(q, headKeysOf(k, newK, promptLength), numHeads, headDim, 0, 0).top1;
    expect(Array.from(got)).toEqual(Array.from(want));
    for (const index of got) expect(index).toBeLessThan(7);
    cache.destroy();
  });
});
