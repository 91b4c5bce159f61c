/**
 * The q8 / q4 weight formats in every GEMV variant and the prefill GEMM (shaders/weights_q8.wgsl, weights_q4.wgsl):
 * the read functions give exactly the CPU quantizer's dequantized weights (one-hot / identity inputs make each output
 * one weight, so the comparison is bit for bit), and the products match the CPU reference on those weights, odd
 * shapes included. The fused q/k/v kernel's formats are in gemv-qkv-rope.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { GemvVariant } from '../../src/engine/gpu';
import { gemv, gemvSwiglu } from '../../src/engine/ops/gemv';
import { matmul } from '../../src/engine/ops/matmul';
import { addArrays, linear, rmsNorm, swiglu } from '../reference/cpu-ops';
import { empty, gpuContext, maxAbsDiff, randomArray, storage } from '../helpers/gpu';
import { packedBf16 } from './packed-bf16';
import { testWeight, weightBuffer } from './test-weights';
import type { QuantizedFormat } from '../../src/model-io/quantize';

async function variants(): Promise<GemvVariant[]> {
  const ctx = await gpuContext();
  const list: GemvVariant[] = [{ reduction: 'workgroup', team: 32 }, { reduction: 'workgroup', team: 4 }];
  if (ctx.hasSubgroups) list.unshift(ctx.gemv);
  return list;
}

const formats: QuantizedFormat[] = ['q8', 'q4'];
// Weights with a few zero blocks and blocks whose scale is an f16 subnormal, besides the usual ones.
function weightValues(rows: number, cols: number, seed: number): Float32Array {
  const values = randomArray(rows * cols, seed);
  values.fill(0, 0, 32); // row 0, block 0
  for (let i = 32; i < Math.min(64, values.length); i++) values[i] *= 1e-4; // scale ~1e-6: subnormal in f16
  return values;
}

/** x = the identity [K, K]: out[m, n] = w[n, m] exactly (one product, the rest add zeros). */
function identity(size: number): Float32Array {
  const x = new Float32Array(size * size);
  for (let i = 0; i < size; i++) x[i * size + i] = 1;
  return x;
}

function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c];
  return out;
}

// The bits of each value; -0 (a zero q4 block's weights: 0 * -0) reads +0 once summed, so zeros compare as +0.
const bits = (values: Float32Array): number[] => [...new Uint32Array(Float32Array.from(values, (v) => v + 0).buffer)];

describe('quantized weights (q8, q4) in the GEMV and GEMM', () => {
  for (const format of formats) {
    it(`${format}: the GEMM and every GEMV variant read exactly the dequantized weights`, async () => {
      const ctx = await gpuContext();
      const rows = 37;
      const cols = 64;
      const w = testWeight(format, weightValues(rows, cols, 3), rows, cols);
      const want = bits(transpose(w.rounded, rows, cols));
      // GEMM: 64 identity rows (more than the GEMV's 4).
      const out = empty(ctx, cols * rows);
      matmul(ctx, storage(ctx, identity(cols)), weightBuffer(ctx, w), null, out, cols, cols, rows);
      expect(bits(await ctx.readF32(out, cols * rows))).toEqual(want);
      // GEMV: one-hot rows, 4 at a time.
      for (const variant of await variants()) {
        const got: number[] = [];
        for (let k = 0; k < cols; k += 4) {
          const x = identity(cols).subarray(k * cols, (k + 4) * cols);
          const part = empty(ctx, 4 * rows);
          gemv(ctx, storage(ctx, x), weightBuffer(ctx, w), null, part, 4, cols, rows, {}, variant);
          got.push(...bits(await ctx.readF32(part, 4 * rows)));
        }
        expect(got, `${variant.reduction}/${variant.team}`).toEqual(want);
      }
    });

    for (const c of [
      { rows: 1, inFeatures: 32, outFeatures: 3 },
      { rows: 3, inFeatures: 576, outFeatures: 37 },
      { rows: 4, inFeatures: 1568, outFeatures: 9 },
    ]) {
      it(`${format} gemv with bias: rows ${c.rows}, in ${c.inFeatures}, out ${c.outFeatures}`, async () => {
        const ctx = await gpuContext();
        const x = randomArray(c.rows * c.inFeatures, 11 + c.rows);
        const w = testWeight(format, weightValues(c.outFeatures, c.inFeatures, 23 + c.inFeatures), c.outFeatures, c.inFeatures);
        const b = packedBf16(randomArray(c.outFeatures, 37));
        const want = linear(x, w.rounded, c.rows, c.inFeatures, c.outFeatures, b.rounded);
        for (const variant of await variants()) {
          const out = storage(ctx, new Float32Array(c.rows * c.outFeatures).fill(Number.NaN));
          gemv(ctx, storage(ctx, x), weightBuffer(ctx, w), storage(ctx, b.packed), out, c.rows, c.inFeatures, c.outFeatures, {}, variant);
          // As gemv.test.ts: only the f32 summation order differs from the reference.
          expect(maxAbsDiff(await ctx.readF32(out, c.rows * c.outFeatures), want), `${variant.reduction}/${variant.team}`).toBeLessThan(2e-5);
        }
      });
    }

    it(`${format}: RMSNorm prologue, residual epilogue and gate/up SwiGLU (lm_head and the decode layer's forms)`, async () => {
      const ctx = await gpuContext();
      const rows = 1;
      const inFeatures = 96;
      const outFeatures = 45;
      const eps = 1e-5;
      const x = randomArray(rows * inFeatures, 3, 4);
      const g = packedBf16(randomArray(inFeatures, 4, 2));
      const w = testWeight(format, weightValues(outFeatures, inFeatures, 5), outFeatures, inFeatures);
      const up = testWeight(format, weightValues(outFeatures, inFeatures, 6), outFeatures, inFeatures);
      const residual = randomArray(rows * outFeatures, 7, 3);
      const xn = rmsNorm(x, g.rounded, rows, inFeatures, eps);
      const product = linear(xn, w.rounded, rows, inFeatures, outFeatures);
      const gated = swiglu(product, linear(xn, up.rounded, rows, inFeatures, outFeatures));
      for (const variant of await variants()) {
        const label = `${variant.reduction}/${variant.team}`;
        const norm = { normWeight: storage(ctx, g.packed), eps };
        const hidden = storage(ctx, residual);
        gemv(ctx, storage(ctx, x), weightBuffer(ctx, w), null, hidden, rows, inFeatures, outFeatures, { ...norm, accumulate: true }, variant);
        expect(maxAbsDiff(await ctx.readF32(hidden, rows * outFeatures), addArrays(residual, product)), `${label} norm + residual`).toBeLessThan(1e-4);
        const out = empty(ctx, rows * outFeatures);
        gemvSwiglu(ctx, storage(ctx, x), weightBuffer(ctx, w), weightBuffer(ctx, up), out, rows, inFeatures, outFeatures, norm, variant);
        expect(maxAbsDiff(await ctx.readF32(out, rows * outFeatures), gated), `${label} swiglu`).toBeLessThan(2e-4);
      }
    });

    it(`${format} tiled gemm on partial tiles`, async () => {
      const ctx = await gpuContext();
      const rows = 70;
      const inFeatures = 96;
      const outFeatures = 67;
      const x = randomArray(rows * inFeatures, 71);
      const w = testWeight(format, weightValues(outFeatures, inFeatures, 72), outFeatures, inFeatures);
      const b = packedBf16(randomArray(outFeatures, 73));
      const out = empty(ctx, rows * outFeatures);
      matmul(ctx, storage(ctx, x), weightBuffer(ctx, w), storage(ctx, b.packed), out, rows, inFeatures, outFeatures);
      expect(maxAbsDiff(await ctx.readF32(out, rows * outFeatures), linear(x, w.rounded, rows, inFeatures, outFeatures, b.rounded))).toBeLessThan(2e-5);
    });
  }

  it('refuses a quantized weight whose input dimension is not whole blocks, and mixed formats in one dispatch', async () => {
    const ctx = await gpuContext();
    const w = weightBuffer(ctx, testWeight('q8', randomArray(64, 1), 2, 32));
    expect(() => gemv(ctx, empty(ctx, 40), w, null, empty(ctx, 4), 1, 40, 2)).toThrow('gemv: a q8 weight needs inFeatures % 32 == 0, got 40');
    const bf16 = storage(ctx, packedBf16(randomArray(64, 2)).packed);
    expect(() => gemvSwiglu(ctx, empty(ctx, 32), w, bf16, empty(ctx, 2), 1, 32, 2)).toThrow('gemvSwiglu: the weights of one dispatch have different formats (q8, bf16)');
  });
});
