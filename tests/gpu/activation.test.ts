import { describe, expect, it } from 'vitest';
import { geluTanh, swiglu } from '../../src/engine/ops/activation';
import { geluTanh as geluTanhReference, swiglu as swigluReference } from '../reference/cpu-ops';
import { empty, gpuContext, randomArray, storage } from '../helpers/gpu';

/** Largest |got - want| / max(1, |want|): exp and tanh are a few ulp in WGSL, so compare relatively for large values. */
function maxScaledDiff(got: Float32Array, want: Float32Array): number {
  let max = 0;
  for (let i = 0; i < got.length; i++) max = Math.max(max, Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i])));
  return max;
}

// Includes the extremes where a naive tanh / exp overflows to inf/inf = NaN.
const extremes = [-1000, -100, -50, -20, -10, -5, -1, -1e-3, 0, 1e-3, 1, 5, 10, 20, 50, 100, 1000];

// Tolerance 1e-5 (scaled): WGSL exp/tanh are specified to a few ulp (~1e-6 relative); a wrong constant
// (e.g. erf gelu instead of tanh gelu, ~1e-3 apart) or a missing clamp (NaN) fails it.
describe('activation kernels', () => {
  it('swiglu = silu(gate) * up, 1001 values and extremes', async () => {
    const ctx = await gpuContext();
    const gate = Float32Array.from([...randomArray(1001, 3, 8), ...extremes]);
    const up = Float32Array.from([...randomArray(1001, 4, 2), ...extremes.map(() => 1.5)]);
    const out = empty(ctx, gate.length);
    swiglu(ctx, storage(ctx, gate), storage(ctx, up), out, gate.length);
    const got = await ctx.readF32(out, gate.length);
    expect(got.every(Number.isFinite)).toBe(true);
    expect(maxScaledDiff(got, swigluReference(gate, up))).toBeLessThan(1e-5);
  });

  it('geluTanh (gelu_pytorch_tanh), 1001 values and extremes', async () => {
    const ctx = await gpuContext();
    const x = Float32Array.from([...randomArray(1001, 5, 6), ...extremes]);
    const out = empty(ctx, x.length);
    geluTanh(ctx, storage(ctx, x), out, x.length);
    const got = await ctx.readF32(out, x.length);
    expect(got.every(Number.isFinite)).toBe(true);
    expect(maxScaledDiff(got, geluTanhReference(x))).toBeLessThan(1e-5);
  });
});
