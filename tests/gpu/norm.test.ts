import { describe, expect, it } from 'vitest';
import { layerNorm, rmsNorm } from '../../src/engine/ops/norm';
import { layerNorm as layerNormReference, rmsNorm as rmsNormReference } from '../reference/cpu-ops';
import { empty, gpuContext, maxAbsDiff, randomArray, storage } from '../helpers/gpu';
import { packedBf16 } from './packed-bf16';

// Rows 1, 3, 17; dims below, at and above the 256-wide workgroup, odd and even.
const shapes: [number, number][] = [
  [1, 64],
  [3, 21],
  [17, 300],
  [2, 576],
];

// Tolerance: one f32 reduction (tree order vs f64) and inverseSqrt (2 ulp in WGSL) on outputs of magnitude <= ~5:
// errors are a few 1e-7; 1e-5 leaves room without hiding a wrong formula (eps or a biased/unbiased mix-up is >1e-3).
describe('normalisation kernels', () => {
  for (const [rows, dim] of shapes) {
    it(`rmsNorm rows ${rows}, dim ${dim}`, async () => {
      const ctx = await gpuContext();
      const x = randomArray(rows * dim, rows + dim, 3);
      const w = packedBf16(randomArray(dim, 7, 2));
      const out = empty(ctx, rows * dim);
      rmsNorm(ctx, storage(ctx, x), storage(ctx, w.packed), out, rows, dim, 1e-5);
      const got = await ctx.readF32(out, rows * dim);
      expect(maxAbsDiff(got, rmsNormReference(x, w.rounded, rows, dim, 1e-5))).toBeLessThan(1e-5);
    });

    it(`layerNorm rows ${rows}, dim ${dim}`, async () => {
      const ctx = await gpuContext();
      // An offset mean makes a one-pass variance lose digits; the kernel must subtract the mean first.
      const x = randomArray(rows * dim, rows * dim, 3).map((v) => v + 20);
      const w = packedBf16(randomArray(dim, 8, 2));
      const b = packedBf16(randomArray(dim, 9));
      const out = empty(ctx, rows * dim);
      layerNorm(ctx, storage(ctx, x), storage(ctx, w.packed), storage(ctx, b.packed), out, rows, dim, 1e-6);
      const got = await ctx.readF32(out, rows * dim);
      expect(maxAbsDiff(got, layerNormReference(x, w.rounded, b.rounded, rows, dim, 1e-6))).toBeLessThan(1e-5);
    });
  }

  it('rmsNorm uses eps (a zero row gives zeros, a tiny row is scaled by 1/sqrt(eps))', async () => {
    const ctx = await gpuContext();
    const dim = 8;
    const x = new Float32Array(2 * dim);
    x.fill(1e-4, dim);
    const w = packedBf16(new Float32Array(dim).fill(1));
    const out = empty(ctx, 2 * dim);
    rmsNorm(ctx, storage(ctx, x), storage(ctx, w.packed), out, 2, dim, 1e-6);
    const got = await ctx.readF32(out, 2 * dim);
    expect(maxAbsDiff(got, rmsNormReference(x, w.rounded, 2, dim, 1e-6))).toBeLessThan(1e-5);
  });
});
