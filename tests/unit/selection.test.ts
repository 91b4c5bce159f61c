import { describe, expect, it } from 'vitest';
import { adakvCapacities, defaultBudgetParams, type BudgetParams } from '../../src/sparsemm/budgets';
import { gqaMeanScores, pool1d, selectLayerPositions, topkPositions, windowPooledScores, windowPrefixScores } from '../../src/sparsemm/selection';
import { attention } from '../reference/cpu-ops';

function seededValues(count: number, seed: number): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  });
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

describe('windowPrefixScores', () => {
  it('agrees with the causal GQA attention reference on the window queries', () => {
    const promptLength = 12;
    const window = 4;
    const qHeads = 4;
    const kvHeads = 2;
    const headDim = 8;
    const q = seededValues(promptLength * qHeads * headDim, 1).map((v) => v * 4);
    const k = seededValues(promptLength * kvHeads * headDim, 2).map((v) => v * 4);
    const scores = windowPrefixScores(q, k, { promptLength, qHeads, kvHeads, headDim, window });

    // Reference: the last 4 queries against all 12 keys, causal; probs are [head, query, key].
    const windowQueries = q.subarray((promptLength - window) * qHeads * headDim);
    const { probs } = attention(windowQueries, k, new Float32Array(k.length), { queries: window, keys: promptLength, numHeads: qHeads, numKvHeads: kvHeads, headDim, causal: true });
    expect(scores).toHaveLength(qHeads);
    for (let h = 0; h < qHeads; h++) {
      expect(scores[h]).toHaveLength(promptLength - window);
      for (let j = 0; j < promptLength - window; j++) {
        let mean = 0;
        for (let i = 0; i < window; i++) mean += probs[(h * window + i) * promptLength + j] / window;
        expect(scores[h][j]).toBeCloseTo(mean, 6);
      }
    }
  });

  it('gives 1/(visible keys) averaged over the window when every logit is equal', () => {
    // Zero queries: prefix 4, window 2. Window query 0 sees 5 keys, query 1 sees 6: (1/5 + 1/6) / 2 = 11/60 per prefix key.
    const scores = windowPrefixScores(new Float32Array(6 * 1 * 2), seededValues(6 * 2, 3), { promptLength: 6, qHeads: 1, kvHeads: 1, headDim: 2, window: 2 });
    expect(Array.from(scores[0])).toEqual(new Array(4).fill(Math.fround(11 / 60)));
  });
});

describe('gqaMeanScores and pool1d', () => {
  it('averages each group of query heads (KV head g owns query heads g*G .. g*G+G-1)', () => {
    const heads = [[1, 2], [3, 4], [10, 0], [0, 10]].map((row) => new Float32Array(row));
    expect(gqaMeanScores(heads, 2).map((row) => Array.from(row))).toEqual([
      [2, 3],
      [5, 5],
    ]);
    expect(gqaMeanScores(heads, 4).map((row) => Array.from(row))).toEqual([[1, 2], [3, 4], [10, 0], [0, 10]]);
    expect(() => gqaMeanScores(heads, 3)).toThrow(/KV groups/);
  });

  it('pools like torch avg_pool1d (padding counted) and max_pool1d', () => {
    const row = new Float32Array([1, 2, 3, 4, 5]);
    // kernel 3: [(0+1+2)/3, 2, 3, 4, (4+5+0)/3]
    expect(Array.from(pool1d(row, 3, 'avgpool'))).toEqual([1, 2, 3, 4, 3]);
    // kernel 5: [(1+2+3)/5, (1+2+3+4)/5, 3, (2+3+4+5)/5, (3+4+5)/5]
    expect(Array.from(pool1d(row, 5, 'avgpool'))).toEqual([1.2, 2, 3, 2.8, 2.4].map(Math.fround));
    expect(Array.from(pool1d(row, 3, 'maxpool'))).toEqual([2, 3, 4, 5, 5]);
    expect(Array.from(pool1d(row, 1, 'avgpool'))).toEqual([1, 2, 3, 4, 5]);
    expect(() => pool1d(row, 4, 'avgpool')).toThrow(/odd/);
  });
});

describe('topkPositions', () => {
  it('takes the highest scores, equal scores to the lower position, and returns them ascending', () => {
    const scores = [1, 3, 3, 2, 3];
    expect(Array.from(topkPositions(scores, 2))).toEqual([1, 2]);
    expect(Array.from(topkPositions(scores, 3))).toEqual([1, 2, 4]);
    expect(Array.from(topkPositions(scores, 4))).toEqual([1, 2, 3, 4]);
    expect(Array.from(topkPositions(scores, 0))).toEqual([]);
    expect(Array.from(topkPositions(scores, 9))).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(topkPositions([5, 5, 5, 5], 2))).toEqual([0, 1]);
  });
});

describe('selectLayerPositions', () => {
  // headDim 2, 4 query heads in 2 KV groups, prompt 16, window 4 -> prefix 12.
  // KV head 0: key 3 = [8, 0], key 9 = [0, 8]; KV head 1: key 6 = [8, 8]; all other keys 0.
  // Query heads 0 and 1 (group 0) look along x and y, so group 0's mean peaks at 3 and 9; heads 2 and 3 at 6.
  const promptLength = 16;
  const window = 4;
  const shape = { promptLength, qHeads: 4, kvHeads: 2, headDim: 2, window };
  const q = new Float32Array(promptLength * 4 * 2);
  for (let t = 0; t < promptLength; t++) {
    q.set([1, 0, 0, 1, 1, 0, 0, 1], t * 8);
  }
  const k = new Float32Array(promptLength * 2 * 2);
  k.set([8, 0], (3 * 2 + 0) * 2);
  k.set([0, 8], (9 * 2 + 0) * 2);
  k.set([8, 8], (6 * 2 + 1) * 2);
  const p: BudgetParams = { ...defaultBudgetParams, budget: 8, window, kernel: 1 };

  it('keeps the top prefix positions per KV head plus the window', () => {
    const selection = selectLayerPositions(q, k, shape, [2, 1], p);
    expect(selection.compress).toBe(true);
    expect(selection.capacity).toEqual([2, 1]);
    expect(Array.from(selection.kept[0])).toEqual([3, 9, 12, 13, 14, 15]);
    expect(Array.from(selection.kept[1])).toEqual([6, 12, 13, 14, 15]);
  });

  it('pools before choosing: with kernel 3 the neighbours of a peak outrank a lone far position', () => {
    const selection = selectLayerPositions(q, k, shape, [3, 3], { ...p, kernel: 3 });
    // KV head 1: position 6 and its neighbours 5 and 7 share the peak.
    expect(Array.from(selection.kept[1])).toEqual([5, 6, 7, 12, 13, 14, 15]);
    expect(Math.min(selection.pooled[1][5], selection.pooled[1][7])).toBeGreaterThan(10 * selection.pooled[1][3]);
  });

  it('clamps capacities to the prefix and compresses nothing below the budget', () => {
    const clamped = selectLayerPositions(q, k, shape, [50, 0], p);
    expect(Array.from(clamped.kept[0])).toEqual(range(0, 16));
    expect(Array.from(clamped.kept[1])).toEqual([12, 13, 14, 15]);
    const whole = selectLayerPositions(q, k, shape, [1, 1], { ...p, budget: 17 });
    expect(whole.compress).toBe(false);
    expect(whole.kept.map((kept) => Array.from(kept))).toEqual([range(0, 16), range(0, 16)]);
  });

  it('lets AdaKV split the layer budget from the pooled scores', () => {
    const adaParams = { ...p, budget: 7, kernel: 3 }; // base 3, 6 picks over 2 heads
    const selection = selectLayerPositions(q, k, shape, 'adakv', adaParams);
    const pooled = windowPooledScores(q, k, shape, adaParams);
    expect(selection.capacity).toEqual(adakvCapacities(pooled, adaParams));
    expect(selection.kept.map((kept, g) => kept.length - window === selection.capacity[g])).toEqual([true, true]);
  });
});
