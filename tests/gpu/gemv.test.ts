import { describe, expect, it } from 'vitest';
import { chooseGemvVariant, type GemvVariant } from '../../src/engine/gpu';
import { gemv, gemvSwiglu } from '../../src/engine/ops/gemv';
import { addArrays, linear, rmsNorm, swiglu } from '../reference/cpu-ops';
import { empty, gpuContext, maxAbsDiff, randomArray, storage } from '../helpers/gpu';
import { packedBf16 } from './packed-bf16';

// Both variants run here: SwiftShader has `subgroups` (subgroups of 4, so the subgroup variant uses teams of 4), and
// the workgroup variant runs on any device. The workgroup variant is also run with teams of 32 (its choice on devices
// without subgroups) and of 4.
async function variants(): Promise<GemvVariant[]> {
  const ctx = await gpuContext();
  const list: GemvVariant[] = [{ reduction: 'workgroup', team: 32 }, { reduction: 'workgroup', team: 4 }];
  if (ctx.hasSubgroups) list.unshift(ctx.gemv);
  return list;
}

interface Case {
  rows: number;
  inFeatures: number;
  outFeatures: number;
}

// K/8 below, equal to and above a team of 32 lanes; N not a multiple of the outputs per workgroup; several rows.
const cases: Case[] = [
  { rows: 1, inFeatures: 8, outFeatures: 3 },
  { rows: 1, inFeatures: 576, outFeatures: 37 },
  { rows: 2, inFeatures: 256, outFeatures: 17 },
  { rows: 4, inFeatures: 264, outFeatures: 9 },
  { rows: 3, inFeatures: 1544, outFeatures: 21 },
];

// The reference sees the same bf16 weights, so only f32 accumulation order differs from its f64 sums: with |x|, |w| <= 1
// and K <= 1544 terms that is a few 1e-6 per unit of output scale; 2e-5 (times the output's scale) fails on any
// indexing or unpacking mistake, which errs by 0.1-1.
const tolerance = 2e-5;

describe('decode GEMV family (shaders/gemv.wgsl)', () => {
  it('the device chose its variant once: subgroups where the device has them', async () => {
    const ctx = await gpuContext();
    expect(ctx.gemv.reduction).toBe(ctx.hasSubgroups ? 'subgroup' : 'workgroup');
    expect(chooseGemvVariant(false, undefined)).toEqual({ reduction: 'workgroup', team: 32 });
    expect(chooseGemvVariant(true, 4)).toEqual({ reduction: 'subgroup', team: 4 });
    expect(chooseGemvVariant(true, 64)).toEqual({ reduction: 'subgroup', team: 32 });
    expect(chooseGemvVariant(true, undefined)).toEqual({ reduction: 'subgroup', team: 4 });
  });

  for (const c of cases) {
    it(`plain and with bias: rows ${c.rows}, in ${c.inFeatures}, out ${c.outFeatures}`, async () => {
      const ctx = await gpuContext();
      const x = randomArray(c.rows * c.inFeatures, 11 + c.rows);
      const w = packedBf16(randomArray(c.outFeatures * c.inFeatures, 23 + c.inFeatures));
      const b = packedBf16(randomArray(c.outFeatures, 37));
      for (const variant of await variants()) {
        for (const withBias of [false, true]) {
          const out = storage(ctx, new Float32Array(c.rows * c.outFeatures).fill(Number.NaN));
          gemv(ctx, storage(ctx, x), storage(ctx, w.packed), withBias ? storage(ctx, b.packed) : null, out, c.rows, c.inFeatures, c.outFeatures, {}, variant);
          const got = await ctx.readF32(out, c.rows * c.outFeatures);
          const want = linear(x, w.rounded, c.rows, c.inFeatures, c.outFeatures, withBias ? b.rounded : undefined);
          expect(maxAbsDiff(got, want), `${variant.reduction}/${variant.team}${withBias ? ' bias' : ''}`).toBeLessThan(tolerance);
        }
      }
    });
  }

  it('RMSNorm in the prologue and the residual add in the epilogue equal rmsNorm -> linear -> add', async () => {
    const ctx = await gpuContext();
    const rows = 2;
    const inFeatures = 320;
    const outFeatures = 45;
    const eps = 1e-5;
    // x at the scale of a hidden state (|x| up to 4) so that the norm matters.
    const x = randomArray(rows * inFeatures, 3, 4);
    const g = packedBf16(randomArray(inFeatures, 4, 2));
    const w = packedBf16(randomArray(outFeatures * inFeatures, 5));
    const residual = randomArray(rows * outFeatures, 6, 3);
    const product = linear(rmsNorm(x, g.rounded, rows, inFeatures, eps), w.rounded, rows, inFeatures, outFeatures);
    for (const variant of await variants()) {
      const normed = empty(ctx, rows * outFeatures);
      gemv(ctx, storage(ctx, x), storage(ctx, w.packed), null, normed, rows, inFeatures, outFeatures, { normWeight: storage(ctx, g.packed), eps }, variant);
      // The normalised rows have rms ~1 and |g| <= 2, so outputs are a few units: 1e-4 is ~20 ulp-scale errors of f32.
      expect(maxAbsDiff(await ctx.readF32(normed, rows * outFeatures), product), `${variant.reduction} norm`).toBeLessThan(1e-4);
      const hidden = storage(ctx, residual);
      gemv(ctx, storage(ctx, x), storage(ctx, w.packed), null, hidden, rows, inFeatures, outFeatures, { normWeight: storage(ctx, g.packed), eps, accumulate: true }, variant);
      expect(maxAbsDiff(await ctx.readF32(hidden, rows * outFeatures), addArrays(residual, product)), `${variant.reduction} residual`).toBeLessThan(1e-4);
    }
  });

  it('gate and up with SwiGLU in one pass equal silu(gate) * up', async () => {
    const ctx = await gpuContext();
    const rows = 1;
    const inFeatures = 192;
    const features = 70;
    const eps = 1e-5;
    const x = randomArray(rows * inFeatures, 8, 3);
    const g = packedBf16(randomArray(inFeatures, 9, 1.5));
    const wg = packedBf16(randomArray(features * inFeatures, 10));
    const wu = packedBf16(randomArray(features * inFeatures, 11));
    for (const withNorm of [false, true]) {
      const xn = withNorm ? rmsNorm(x, g.rounded, rows, inFeatures, eps) : x;
      const want = swiglu(linear(xn, wg.rounded, rows, inFeatures, features), linear(xn, wu.rounded, rows, inFeatures, features));
      for (const variant of await variants()) {
        const out = storage(ctx, new Float32Array(rows * features).fill(Number.NaN));
        const fusion = withNorm ? { normWeight: storage(ctx, g.packed), eps } : {};
        gemvSwiglu(ctx, storage(ctx, x), storage(ctx, wg.packed), storage(ctx, wu.packed), out, rows, inFeatures, features, fusion, variant);
        // gate and up are sums of ~192 terms of size up to 3 (tens at most): 2e-4 absolute is f32 rounding with room.
        expect(maxAbsDiff(await ctx.readF32(out, rows * features), want), `${variant.reduction}/${variant.team} norm ${withNorm}`).toBeLessThan(2e-4);
      }
    }
  });

  it('refuses shapes it cannot run, by name', async () => {
    const ctx = await gpuContext();
    const x = empty(ctx, 16);
    expect(() => gemv(ctx, x, x, null, empty(ctx, 4), 1, 12, 4)).toThrow(/multiple of 8/);
    expect(() => gemv(ctx, x, x, null, x, 1, 8, 4)).toThrow(/different buffer/);
    expect(() => gemv(ctx, x, x, null, empty(ctx, 20), 5, 8, 4)).toThrow(/rows 5/);
  });
});
