import { describe, expect, it } from 'vitest';
import { rope, ropeInverseFrequencies } from '../../src/engine/ops/rope';
import { rope as ropeF64Reference, ropeTorchF32 } from '../reference/cpu-ops';
import { gpuContext, maxAbsDiff, randomArray, storage } from '../helpers/gpu';

describe('rope kernel (rotate_half, in place)', () => {
  for (const { tokens, heads, headDim, theta, maxPosition } of [
    { tokens: 1, heads: 3, headDim: 64, theta: 100000, maxPosition: 876 },
    { tokens: 3, heads: 9, headDim: 64, theta: 100000, maxPosition: 8191 },
    { tokens: 17, heads: 2, headDim: 6, theta: 10000, maxPosition: 30000 },
  ]) {
    it(`tokens ${tokens}, heads ${heads}, headDim ${headDim}, theta ${theta}, positions up to ${maxPosition}`, async () => {
      const ctx = await gpuContext();
      const x = randomArray(tokens * heads * headDim, tokens + headDim);
      const positions = Uint32Array.from({ length: tokens }, (_, t) => (t === 0 ? maxPosition : (t * 977) % maxPosition));
      const buffer = storage(ctx, x);
      rope(ctx, buffer, storage(ctx, positions), tokens, heads, headDim, theta);
      const got = await ctx.readF32(buffer, x.length);
      // Against torch's f32 angle: the kernel forms the same f32 product, reduces it mod pi/2 (Cody-Waite) and
      // evaluates its own polynomials; measured ~1.2e-7 on |x| <= 1. 2e-6 still fails WGSL's built-in sin/cos
      // (SwiftShader's are ~2e-4 off) and any layout or frequency mistake.
      expect(maxAbsDiff(got, ropeTorchF32(x, tokens, heads, headDim, positions, theta))).toBeLessThan(2e-6);
    });
  }

  it('matches the exact-angle reference at short positions (layout check against the shared reference)', async () => {
    const ctx = await gpuContext();
    const [tokens, heads, headDim] = [5, 2, 8];
    const x = randomArray(tokens * heads * headDim, 99);
    const positions = Uint32Array.from([0, 1, 2, 7, 40]);
    const buffer = storage(ctx, x);
    rope(ctx, buffer, storage(ctx, positions), tokens, heads, headDim, 10000);
    const got = await ctx.readF32(buffer, x.length);
    // Position 0 is the identity.
    expect(maxAbsDiff(got.subarray(0, heads * headDim), x.subarray(0, heads * headDim))).toBeLessThan(1e-7);
    // The f64 reference's angle differs from the f32 one by up to half an ulp of 40 rad (1.9e-6).
    expect(maxAbsDiff(got, ropeF64Reference(x, tokens, heads, headDim, positions, 10000))).toBeLessThan(1e-5);
  });

  it('computes inv_freq like torch', () => {
    const invFreq = ropeInverseFrequencies(64, 100000);
    expect(invFreq[0]).toBe(1);
    expect(invFreq[1]).toBe(Math.fround(1 / Math.fround(Math.pow(100000, Math.fround(2 / 64)))));
    expect(Math.abs(invFreq[31] - Math.pow(100000, -62 / 64)) / invFreq[31]).toBeLessThan(1e-6);
  });
});
