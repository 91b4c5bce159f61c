import { describe, expect, it } from 'vitest';
import { gemmParams } from '../../src/engine/kernel-params';
import { gemvMaxRows, matmul } from '../../src/engine/ops/matmul';
import { kernelParams } from '../../src/engine/params';
import { linear } from '../reference/cpu-ops';
import { empty, gpuContext, maxAbsDiff, randomArray, storage } from '../helpers/gpu';
import { packedBf16 } from './packed-bf16';

interface Case {
  rows: number;
  inFeatures: number;
  outFeatures: number;
  withBias: boolean;
}

// GEMV (rows <= 4 and K % 8 == 0; its variants are tested in gemv.test.ts); a few rows with K % 8 != 0 take the GEMM.
// GEMM (rows > 4): partial tiles in M and N, K not a multiple of the 32-wide K slice (and K below one slice), exact
// tile multiples, several tiles in both directions.
const cases: Case[] = [
  { rows: 1, inFeatures: 40, outFeatures: 13, withBias: true },
  { rows: 1, inFeatures: 576, outFeatures: 24, withBias: false },
  { rows: 3, inFeatures: 38, outFeatures: 17, withBias: false },
  { rows: 4, inFeatures: 264, outFeatures: 9, withBias: true },
  { rows: 2, inFeatures: 6, outFeatures: 5, withBias: true },
  { rows: 5, inFeatures: 96, outFeatures: 9, withBias: false },
  { rows: 17, inFeatures: 38, outFeatures: 70, withBias: true },
  { rows: 70, inFeatures: 130, outFeatures: 65, withBias: true },
  { rows: 64, inFeatures: 64, outFeatures: 128, withBias: false },
  { rows: 131, inFeatures: 98, outFeatures: 133, withBias: true },
  { rows: 9, inFeatures: 2, outFeatures: 3, withBias: true },
];

describe('matmul kernels (packed bf16 weights, f32 activations)', () => {
  for (const c of cases) {
    const path = c.rows <= gemvMaxRows && c.inFeatures % 8 === 0 ? 'decode gemv' : 'tiled gemm';
    it(`${path}: rows ${c.rows}, in ${c.inFeatures}, out ${c.outFeatures}${c.withBias ? ', bias' : ''}`, async () => {
      const ctx = await gpuContext();
      const x = randomArray(c.rows * c.inFeatures, 11 + c.rows);
      const w = packedBf16(randomArray(c.outFeatures * c.inFeatures, 23 + c.inFeatures));
      const b = packedBf16(randomArray(c.outFeatures, 37));
      const out = empty(ctx, c.rows * c.outFeatures);
      matmul(ctx, storage(ctx, x), storage(ctx, w.packed), c.withBias ? storage(ctx, b.packed) : null, out, c.rows, c.inFeatures, c.outFeatures);
      const got = await ctx.readF32(out, c.rows * c.outFeatures);
      const want = linear(x, w.rounded, c.rows, c.inFeatures, c.outFeatures, c.withBias ? b.rounded : undefined);
      // The weights the reference sees are the same bf16 values, so only f32 accumulation differs from the f64
      // reference: with |x|, |w| <= 1 and K <= 576 terms that is a few 1e-6 (measured <= 5e-6); 2e-5 leaves room
      // while any indexing or unpacking mistake (errors of order 0.1-1) fails.
      expect(maxAbsDiff(got, want)).toBeLessThan(2e-5);
    });
  }

  it('overwrites every output (no stale values) and leaves x untouched', async () => {
    const ctx = await gpuContext();
    const rows = 17;
    const inFeatures = 24;
    const outFeatures = 33;
    const x = randomArray(rows * inFeatures, 5);
    const w = packedBf16(randomArray(outFeatures * inFeatures, 6));
    const out = storage(ctx, new Float32Array(rows * outFeatures).fill(Number.NaN));
    const xBuffer = storage(ctx, x);
    matmul(ctx, xBuffer, storage(ctx, w.packed), null, out, rows, inFeatures, outFeatures);
    const got = await ctx.readF32(out, rows * outFeatures);
    expect(got.every((v) => Number.isFinite(v))).toBe(true);
    expect(maxAbsDiff(got, linear(x, w.rounded, rows, inFeatures, outFeatures))).toBeLessThan(2e-5);
    expect(maxAbsDiff(await ctx.readF32(xBuffer, x.length), x)).toBe(0);
  });
});

describe('tiled gemm with the 16-wide K slice (devices without 16 KiB of workgroup memory)', () => {
  it('matches the CPU reference on partial tiles', async () => {
    const ctx = await gpuContext();
    const rows = 70;
    const inFeatures = 50;
    const outFeatures = 67;
    const x = randomArray(rows * inFeatures, 71);
    const w = packedBf16(randomArray(outFeatures * inFeatures, 72));
    const b = packedBf16(randomArray(outFeatures, 73));
    const out = empty(ctx, rows * outFeatures);
    // The dispatch ops/matmul.ts makes, with the K slice it picks on small devices.
    const pipeline = ctx.pipelines.get('matmul', 'gemm', { TILE_K: 16 }, 'weights_bf16');
    ctx.record().dispatch(pipeline, kernelParams(gemmParams, { rows, in_features: inFeatures, out_features: outFeatures, has_bias: true }), [storage(ctx, x), storage(ctx, w.packed), storage(ctx, b.packed), out], [2, 2, 1]);
    const got = await ctx.readF32(out, rows * outFeatures);
    expect(maxAbsDiff(got, linear(x, w.rounded, rows, inFeatures, outFeatures, b.rounded))).toBeLessThan(2e-5);
  });
});
