import { describe, expect, it } from 'vitest';
import { RaggedKvCache } from '../../src/engine/kv-cache';
import { decodeAttention } from '../../src/engine/ops/decode-attention';
import { gatherHeadRows, raggedDecodeAttention } from '../reference/cpu-attention';
import { empty, gpuContext, maxAbsDiff, randomArray, storage } from '../helpers/gpu';

// f32 split-K merge vs f64 CPU; outputs are convex combinations of values in [-1, 1].
const tolerance = 1e-5;

interface Scenario {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  promptLength: number;
  /** Per KV head the kept prompt positions (ascending); null = full cache. */
  kept: number[][] | null;
  decodeSteps: number;
}

/** Builds a one-layer cache, decodes `decodeSteps` tokens, and after each step compares GPU and CPU attention. */
async function runScenario(s: Scenario, seed: number): Promise<number> {
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
    const want = raggedDecodeAttention(q, headKeys.map((a) => Float32Array.from(a)), headValues.map((a) => Float32Array.from(a)), numHeads, headDim).out;
    worst = Math.max(worst, maxAbsDiff(got, want));
    cache.advance();
  }
  cache.destroy();
  return worst;
}

describe('decode attention over the ragged head-wise cache', () => {
  it('different kept lengths per head, including one kept token, and a head longer than one 64-key chunk', async () => {
    const kept = [
      [0],                                                   // length 1 before decoding
      Array.from({ length: 100 }, (_, i) => i * 2 + 1),      // 100 of 200: two chunks, the second ragged
      [3, 7, 64, 65, 130, 199],
    ];
    const worst = await runScenario({ numHeads: 9, numKvHeads: 3, headDim: 16, promptLength: 200, kept, decodeSteps: 2 }, 1);
    expect(worst).toBeLessThan(tolerance);
  });

  it('a head holding only the decoded token (kept 0) sees just that token', async () => {
    const worst = await runScenario({ numHeads: 2, numKvHeads: 2, headDim: 8, promptLength: 10, kept: [[], [2, 5]], decodeSteps: 1 }, 2);
    expect(worst).toBeLessThan(tolerance);
  });

  it('the full cache uses the same kernel (every length = promptLength + appended), chunk boundary at 64 and 128', async () => {
    const worst = await runScenario({ numHeads: 4, numKvHeads: 1, headDim: 64, promptLength: 127, kept: null, decodeSteps: 2 }, 3);
    expect(worst).toBeLessThan(tolerance);
  });
});
