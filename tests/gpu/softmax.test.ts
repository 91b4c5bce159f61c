import { describe, expect, it } from 'vitest';
import { softmax } from '../../src/engine/ops/softmax';
import { softmaxRows } from '../reference/cpu-ops';
import { gpuContext, maxAbsDiff, randomArray, storage } from '../helpers/gpu';

// Tolerance 1e-6 on probabilities: exp is a few ulp and the sum is one f32 reduction.
describe('softmax kernel (in place)', () => {
  for (const [rows, cols] of [
    [1, 1],
    [3, 7],
    [17, 300],
    [2, 1000],
  ]) {
    it(`rows ${rows}, cols ${cols}`, async () => {
      const ctx = await gpuContext();
      // Large logits: without subtracting the max, exp overflows.
      const x = randomArray(rows * cols, rows + cols, 60);
      const buffer = storage(ctx, x);
      softmax(ctx, buffer, rows, cols);
      const got = await ctx.readF32(buffer, rows * cols);
      expect(maxAbsDiff(got, softmaxRows(x, rows, cols))).toBeLessThan(1e-6);
    });
  }

  it('masked entries (-inf) get 0, a fully masked row becomes zeros', async () => {
    const ctx = await gpuContext();
    const x = Float32Array.from([0.5, -Infinity, 2, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity]);
    const buffer = storage(ctx, x);
    softmax(ctx, buffer, 2, 4);
    const got = await ctx.readF32(buffer, 8);
    const firstRow = softmaxRows(x.subarray(0, 4), 1, 4);
    expect(maxAbsDiff(got.subarray(0, 4), firstRow)).toBeLessThan(1e-6);
    expect([...got.subarray(4)]).toEqual([0, 0, 0, 0]);
  });
});
