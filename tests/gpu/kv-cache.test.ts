import { describe, expect, it } from 'vitest';
import { RaggedKvCache, type KvCacheLayout } from '../../src/engine/kv-cache';
import { gatherHeadRows } from '../reference/cpu-attention';
import { roundToF16, unpackF16Pairs } from '../reference/f16';
import { gpuContext, randomArray, storage } from '../helpers/gpu';

const numKvHeads = 3;
const headDim = 8;
const promptLength = 12;

/** The rows of KV head g's slice, read back and unpacked from f16 pairs: [rows, headDim]. */
async function readSlice(cache: RaggedKvCache, which: 'keys' | 'values', layer: number, g: number, rows: number): Promise<Float32Array> {
  const ctx = await gpuContext();
  const buffer = which === 'keys' ? cache.keys(layer) : cache.values(layer);
  const words = headDim / 2;
  return unpackF16Pairs(await ctx.readU32(buffer, rows * words, cache.slotOffset(layer, g) * words));
}

// The cache stores f16: a slice must equal the f16 rounding of the rows written (exactly: pack2x16float rounds to
// nearest even like the reference), which also pins that nothing else was written there.
const asStored = (rows: Float32Array): Float32Array => roundToF16(rows);

describe('RaggedKvCache', () => {
  it('kvBytes is sum(kept + maxNewTokens) * headDim * 2 (K, V) * 2 (f16) over layers and is what the allocator counts under kv', async () => {
    const ctx = await gpuContext();
    const before = ctx.allocator.bytesByCategory().kv;
    const layout: KvCacheLayout = { numLayers: 2, numKvHeads, headDim, promptLength, keptPerHead: [[3, 12, 5], [7, 7, 7]], maxNewTokens: 4 };
    const cache = RaggedKvCache.create(ctx, layout);
    const expected = (3 + 12 + 5 + 3 * 4 + 7 * 3 + 3 * 4) * headDim * 2 * 2;
    expect(cache.kvBytes).toBe(expected);
    expect(ctx.allocator.bytesByCategory().kv - before).toBe(expected);
    cache.destroy();
    expect(ctx.allocator.bytesByCategory().kv).toBe(before);
  });

  it('storePrefill with null keeps every prompt token in order (full cache: slot index == position)', async () => {
    const ctx = await gpuContext();
    const k = randomArray(promptLength * numKvHeads * headDim, 1);
    const v = randomArray(promptLength * numKvHeads * headDim, 2);
    const all = Array.from({ length: promptLength }, (_, i) => i);
    const cache = RaggedKvCache.create(ctx, { numLayers: 1, numKvHeads, headDim, promptLength, keptPerHead: [[12, 12, 12]], maxNewTokens: 2 });
    cache.storePrefill(0, storage(ctx, k), storage(ctx, v), null);
    for (let g = 0; g < numKvHeads; g++) {
      expect(await readSlice(cache, 'keys', 0, g, promptLength)).toEqual(asStored(gatherHeadRows(k, numKvHeads, headDim, g, all)));
      expect(await readSlice(cache, 'values', 0, g, promptLength)).toEqual(asStored(gatherHeadRows(v, numKvHeads, headDim, g, all)));
    }
    expect(cache.lengths(0)).toEqual([12, 12, 12]);
    cache.destroy();
  });

  it('storePrefill with keptPositions gathers exactly those rows per head, per layer', async () => {
    const ctx = await gpuContext();
    const kept = [[0, 4, 9, 10, 11], [11], [1, 2, 3, 5, 6, 7, 8, 10, 11]];
    const keptLayer1 = [[2, 11], [0, 1, 2, 3], [5, 9, 11]];
    const layout: KvCacheLayout = {
      numLayers: 2,
      numKvHeads,
      headDim,
      promptLength,
      keptPerHead: [kept.map((l) => l.length), keptLayer1.map((l) => l.length)],
      maxNewTokens: 3,
    };
    const cache = RaggedKvCache.create(ctx, layout);
    const inputs = [0, 1].map((layer) => ({ k: randomArray(promptLength * numKvHeads * headDim, 10 + layer), v: randomArray(promptLength * numKvHeads * headDim, 20 + layer) }));
    [kept, keptLayer1].forEach((lists, layer) => {
      const positions = storage(ctx, Uint32Array.from(lists.flat()));
      cache.storePrefill(layer, storage(ctx, inputs[layer].k), storage(ctx, inputs[layer].v), positions);
    });
    for (const [layer, lists] of [kept, keptLayer1].entries()) {
      for (let g = 0; g < numKvHeads; g++) {
        const want = lists[g];
        expect(await readSlice(cache, 'keys', layer, g, want.length)).toEqual(asStored(gatherHeadRows(inputs[layer].k, numKvHeads, headDim, g, want)));
        expect(await readSlice(cache, 'values', layer, g, want.length)).toEqual(asStored(gatherHeadRows(inputs[layer].v, numKvHeads, headDim, g, want)));
      }
      expect(cache.lengths(layer)).toEqual(lists.map((l) => l.length));
    }
    cache.destroy();
  });

  it('append writes each decoded token after the kept rows of every head; advance counts steps', async () => {
    const ctx = await gpuContext();
    const keptPerHead = [[2, 5, 1], [4, 4, 4]];
    const cache = RaggedKvCache.create(ctx, { numLayers: 2, numKvHeads, headDim, promptLength, keptPerHead, maxNewTokens: 2 });
    const tokens = [0, 1].map((step) => [0, 1].map((layer) => ({
      k: randomArray(numKvHeads * headDim, 100 + step * 10 + layer),
      v: randomArray(numKvHeads * headDim, 200 + step * 10 + layer),
    })));
    for (let step = 0; step < 2; step++) {
      for (let layer = 0; layer < 2; layer++) {
        cache.append(layer, storage(ctx, tokens[step][layer].k), storage(ctx, tokens[step][layer].v));
        expect(cache.lengths(layer)).toEqual(keptPerHead[layer].map((n) => n + step + 1));
      }
      // A layer may append only once per step.
      expect(() => cache.append(0, storage(ctx, tokens[step][0].k), storage(ctx, tokens[step][0].v))).toThrow();
      cache.advance();
    }
    expect(cache.decodeSteps).toBe(2);
    expect(() => cache.append(0, storage(ctx, tokens[0][0].k), storage(ctx, tokens[0][0].v))).toThrow(/full/);
    for (let layer = 0; layer < 2; layer++) {
      for (let g = 0; g < numKvHeads; g++) {
        const kept = keptPerHead[layer][g];
        const keys = await readSlice(cache, 'keys', layer, g, kept + 2);
        const values = await readSlice(cache, 'values', layer, g, kept + 2);
        for (let step = 0; step < 2; step++) {
          const row = (kept + step) * headDim;
          expect(keys.slice(row, row + headDim)).toEqual(asStored(tokens[step][layer].k.slice(g * headDim, (g + 1) * headDim)));
          expect(values.slice(row, row + headDim)).toEqual(asStored(tokens[step][layer].v.slice(g * headDim, (g + 1) * headDim)));
        }
      }
    }
    cache.destroy();
  });

  it('advance refuses a step in which a layer did not append', async () => {
    const ctx = await gpuContext();
    const cache = RaggedKvCache.create(ctx, { numLayers: 2, numKvHeads, headDim, promptLength, keptPerHead: [[1, 1, 1], [1, 1, 1]], maxNewTokens: 2 });
    cache.append(0, storage(ctx, randomArray(numKvHeads * headDim, 1)), storage(ctx, randomArray(numKvHeads * headDim, 2)));
    expect(() => cache.advance()).toThrow(/layer 1/);
    cache.destroy();
  });
});
