import { describe, expect, it } from 'vitest';
import { keptPerHeadFromCapacities, selectKeptPositions, windowScores, type WindowScoreShape } from '../../src/engine/ops/kv-selection';
import * as reference from '../reference/cpu-attention';
import { empty, gpuContext, maxAbsDiff, randomArray, storage } from '../helpers/gpu';

async function gpuWindowScores(shape: WindowScoreShape, seed: number): Promise<{ got: Float32Array; want: Float32Array }> {
  const ctx = await gpuContext();
  const { tokens, window, numHeads, numKvHeads, headDim } = shape;
  const q = randomArray(tokens * numHeads * headDim, seed, 2);
  const k = randomArray(tokens * numKvHeads * headDim, seed + 1, 2);
  const prefix = tokens - window;
  const out = empty(ctx, numKvHeads * prefix);
  windowScores(ctx, storage(ctx, q), storage(ctx, k), out, shape);
  return { got: await ctx.readF32(out, numKvHeads * prefix), want: reference.windowScores(q, k, shape) };
}

async function gpuSelect(pooled: Float32Array, capacities: number[], tokens: number, window: number): Promise<Uint32Array> {
  const ctx = await gpuContext();
  const total = keptPerHeadFromCapacities(capacities, window, tokens - window).reduce((a, b) => a + b, 0);
  const out = empty(ctx, total);
  selectKeptPositions(ctx, storage(ctx, pooled), capacities, tokens, window, out);
  return ctx.readU32(out, total);
}

describe('KV selection: SnapKV-style window scores', () => {
  // Scores are probabilities (<= 1) averaged; f32 vs f64 differ by ~1e-7.
  const tolerance = 1e-6;

  it('avg pooling (kernel 5, count_include_pad) with GQA matches the official rule', async () => {
    const shape: WindowScoreShape = { tokens: 40, window: 8, numHeads: 6, numKvHeads: 2, headDim: 16, poolKernel: 5, pooling: 'avg' };
    const { got, want } = await gpuWindowScores(shape, 1);
    expect(maxAbsDiff(got, want)).toBeLessThan(tolerance);
    // Edges are divided by the full kernel size: the first pooled value is (m0 + m1 + m2) / 5, not / 3.
    expect(got[0]).toBeGreaterThan(0);
  });

  it('max pooling (kernel 7) and a window of 1', async () => {
    const a = await gpuWindowScores({ tokens: 30, window: 4, numHeads: 3, numKvHeads: 1, headDim: 8, poolKernel: 7, pooling: 'max' }, 2);
    expect(maxAbsDiff(a.got, a.want)).toBeLessThan(tolerance);
    const b = await gpuWindowScores({ tokens: 9, window: 1, numHeads: 2, numKvHeads: 2, headDim: 8, poolKernel: 5, pooling: 'avg' }, 3);
    expect(maxAbsDiff(b.got, b.want)).toBeLessThan(tolerance);
  });

  it('the CPU reference divides edges by the kernel size (count_include_pad) and means the group', () => {
    // A hand-checkable case: one head, window 1, keys with equal scores -> uniform probabilities 1/tokens.
    const tokens = 6;
    const q = new Float32Array(tokens * 2); // head dim 2, all-zero queries
    const k = randomArray(tokens * 2, 4);
    const pooled = reference.windowScores(q, k, { tokens, window: 1, numHeads: 1, numKvHeads: 1, headDim: 2, poolKernel: 5, pooling: 'avg' });
    const p = 1 / tokens;
    expect(Array.from(pooled)).toEqual([3, 4, 5, 4, 3].map((n) => expect.closeTo((n * p) / 5, 7)));
  });
});

describe('selectKeptPositions', () => {
  it('keeps the top-capacity positions per head (ties to the lower position), ascending, then the window', async () => {
    const tokens = 20;
    const window = 4;
    const prefix = tokens - window;
    const pooled = new Float32Array(3 * prefix);
    // Head 0: many ties at the threshold; head 1: random; head 2: all equal.
    const tied = [0.5, 0.2, 0.5, 0.9, 0.5, 0.1, 0.5, 0.5, 0.3, 0.9, 0.5, 0.0, 0.5, 0.2, 0.5, 0.7];
    pooled.set(tied, 0);
    pooled.set(randomArray(prefix, 7).map(Math.abs), prefix);
    pooled.fill(0.25, 2 * prefix);
    const capacities = [6, 5, 3];
    const got = await gpuSelect(pooled, capacities, tokens, window);
    const want = reference.selectKeptPositions(pooled, capacities, tokens, window);
    expect(Array.from(got)).toEqual(Array.from(want));
    // 0.9 x2, 0.7, then the three lowest positions among the 0.5s.
    expect(Array.from(got.slice(0, 6))).toEqual([0, 2, 3, 4, 9, 15]);
    expect(Array.from(got.slice(6, 10))).toEqual([16, 17, 18, 19]);
  });

  it('capacity 0, capacity == prefix, capacity above the prefix (keeps all), prefix longer than a workgroup', async () => {
    const tokens = 600;
    const window = 32;
    const prefix = tokens - window;
    const pooled = new Float32Array(4 * prefix);
    for (let g = 0; g < 4; g++) pooled.set(randomArray(prefix, 20 + g).map((x) => Math.round(Math.abs(x) * 50) / 50), g * prefix);
    const capacities = [0, prefix, prefix + 100, 301];
    expect(keptPerHeadFromCapacities(capacities, window, prefix)).toEqual([32, prefix + 32, prefix + 32, 333]);
    const got = await gpuSelect(pooled, capacities, tokens, window);
    expect(Array.from(got)).toEqual(Array.from(reference.selectKeptPositions(pooled, capacities, tokens, window)));
  });

  it('negative scores order correctly (f32 -> u32 order key)', async () => {
    const tokens = 8;
    const window = 2;
    const pooled = Float32Array.from([-0.5, 0.25, -2, 0, -0.0625, 3, -1, 0]);
    pooled.set(pooled.slice(0, 6).map((x) => -x), 0);
    const got = await gpuSelect(pooled.slice(0, 6), [3], tokens, window);
    expect(Array.from(got)).toEqual(Array.from(reference.selectKeptPositions(pooled.slice(0, 6), [3], tokens, window)));
  });
});
