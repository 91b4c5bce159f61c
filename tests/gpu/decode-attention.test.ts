import { describe, expect, it } from 'vitest';
import { RaggedKvCache } from '../../src/engine/kv-cache';
import { decodeAttention } from '../../src/engine/ops/decode-attention';
import { gatherHeadRows, raggedDecodeAttention } from '../reference/cpu-attention';
import { roundToF16 } from '../reference/f16';
import { empty, gpuContext, maxAbsDiff, randomArray, storage } from '../helpers/gpu';

// The cache holds K and V in f16. Against the CPU attention over the same f16-rounded K/V, only the f32 split-K merge
// differs from the f64 reference; outputs are convex combinations of values in [-1, 1]: 1e-5.
const tolerance = 1e-5;
// Against the f32 K/V (what the paper's code also rounds away): an f16 value is off by at most 2^-11 relative, so V
// contributes <= 2^-11 (|v| <= 1) and the scores, dots of q and k in [-2, 2] over headDim dims scaled by 1/sqrt(headDim),
// move the weights by ~1e-3 relative at most: 5e-3 absolute bounds it with room (measured: about 1e-3).
const f32Tolerance = 5e-3;

interface Scenario {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  promptLength: number;
  /** Per KV head the kept prompt positions (ascending); null = full cache. */
  kept: number[][] | null;
  decodeSteps: number;
}

/**
 * Builds a one-layer cache, decodes `decodeSteps` tokens, and after each step compares GPU and CPU attention. Returns
 * the worst difference against the CPU on f16-rounded K/V (`worst`) and on the f32 K/V (`worstF32`).
 */
async function runScenario(s: Scenario, seed: number): Promise<{ worst: number; worstF32: number }> {
  const ctx = await gpuContext();
  const { numHeads, numKvHeads, headDim, promptLength } = s;
  const keptLists = s.kept ?? Array.from({ length: numKvHeads }, () => Array.from({ length: promptLength }, (_, i) => i));
  const cache = RaggedKvCache.create(ctx, {
    numLayers: 1,
    numKvHeads,
    headDim,
    promptLength,
    keptPerHead: [keptLists.map((l) => l.length)],
    maxNewTokens: s.decodeSteps,
  });
  const k = randomArray(promptLength * numKvHeads * headDim, seed, 2);
  const v = randomArray(promptLength * numKvHeads * headDim, seed + 1);
  cache.storePrefill(0, storage(ctx, k), storage(ctx, v), s.kept ? storage(ctx, Uint32Array.from(keptLists.flat())) : null);
  const headKeys = keptLists.map((list, g) => Array.from(gatherHeadRows(k, numKvHeads, headDim, g, list)));
  const headValues = keptLists.map((list, g) => Array.from(gatherHeadRows(v, numKvHeads, headDim, g, list)));
  let worst = 0;
  let worstF32 = 0;
  for (let step = 0; step < s.decodeSteps; step++) {
    const newK = randomArray(numKvHeads * headDim, seed + 100 + step, 2);
    const newV = randomArray(numKvHeads * headDim, seed + 200 + step);
    cache.append(0, storage(ctx, newK), storage(ctx, newV));
    for (let g = 0; g < numKvHeads; g++) {
      headKeys[g].push(...newK.slice(g * headDim, (g + 1) * headDim));
      headValues[g].push(...newV.slice(g * headDim, (g + 1) * headDim));
    }
    const q = randomArray(numHeads * headDim, seed + 300 + step, 2);
    const out = empty(ctx, numHeads * headDim);
    decodeAttention(ctx, storage(ctx, q), cache, 0, out, numHeads);
    const got = await ctx.readF32(out, numHeads * headDim);
    const asStored = (rows: number[][]): Float32Array[] => rows.map((a) => roundToF16(a));
    const want = raggedDecodeAttention(q, asStored(headKeys), asStored(headValues), numHeads, headDim).out;
    const wantF32 = raggedDecodeAttention(q, headKeys.map((a) => Float32Array.from(a)), headValues.map((a) => Float32Array.from(a)), numHeads, headDim).out;
    worst = Math.max(worst, maxAbsDiff(got, want));
    worstF32 = Math.max(worstF32, maxAbsDiff(got, wantF32));
    cache.advance();
  }
  cache.destroy();
  return { worst, worstF32 };
}

describe('decode attention over the ragged head-wise cache', () => {
  it('different kept lengths per head, including one kept token, and a head longer than one 64-key chunk', async () => {
    const kept = [
      [0],                                                   // length 1 before decoding
      Array.from({ length: 100 }, (_, i) => i * 2 + 1),      // 100 of 200: two chunks, the second ragged
      [3, 7, 64, 65, 130, 199],
    ];
    const { worst, worstF32 } = await runScenario({ numHeads: 9, numKvHeads: 3, headDim: 16, promptLength: 200, kept, decodeSteps: 2 }, 1);
    expect(worst).toBeLessThan(tolerance);
    expect(worstF32).toBeLessThan(f32Tolerance);
  });

  it('a head holding only the decoded token (kept 0) sees just that token', async () => {
    const { worst, worstF32 } = await runScenario({ numHeads: 2, numKvHeads: 2, headDim: 8, promptLength: 10, kept: [[], [2, 5]], decodeSteps: 1 }, 2);
    expect(worst).toBeLessThan(tolerance);
    expect(worstF32).toBeLessThan(f32Tolerance);
  });

  it('the full cache uses the same kernel (every length = promptLength + appended), chunk boundary at 64 and 128', async () => {
    const { worst, worstF32 } = await runScenario({ numHeads: 4, numKvHeads: 1, headDim: 64, promptLength: 127, kept: null, decodeSteps: 2 }, 3);
    expect(worst).toBeLessThan(tolerance);
    expect(worstF32).toBeLessThan(f32Tolerance);
  });
});
