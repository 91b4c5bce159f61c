import { describe, expect, it } from 'vitest';
import type { GemvVariant } from '../../src/engine/gpu';
import { gemvQkvRope, qkvRopePairs, type QkvRopeShape } from '../../src/engine/ops/gemv';
import { RaggedKvCache } from '../../src/engine/kv-cache';
import { fullCacheKept, VlmModel } from '../../src/engine/model';
import { linear, rmsNorm, ropeTorchF32 } from '../reference/cpu-ops';
import { roundToF16, unpackF16Pairs } from '../reference/f16';
import { gpuContext, maxAbsDiff, randomArray, storage } from '../helpers/gpu';
import { tinyModel, tinyPrompt } from '../helpers/tiny-model';
import { packedBf16 } from './packed-bf16';
import { testWeight, weightBuffer } from './test-weights';
import type { WeightFormat } from '../../src/model-io/quantize';

// As tests/gpu/gemv.test.ts: the device's variant (subgroups of 4 on SwiftShader) and the workgroup variant with teams
// of 32 (two dim pairs per team) and of 4 (four pairs per team where headDim / 2 allows).
async function variants(): Promise<GemvVariant[]> {
  const ctx = await gpuContext();
  const list: GemvVariant[] = [{ reduction: 'workgroup', team: 32 }, { reduction: 'workgroup', team: 4 }];
  if (ctx.hasSubgroups) list.unshift(ctx.gemv);
  return list;
}

// Odd head counts, in_features not a multiple of a team's stride, head dims whose half is a multiple of 4 (four pairs
// per team) or only of 2 (12: two pairs), GQA and not; in bf16 and, where in_features is whole blocks of 32, q8 / q4
// (the reference then computes with the dequantized weights).
const shapes: (QkvRopeShape & { format: WeightFormat })[] = [
  { inFeatures: 40, numHeads: 3, numKvHeads: 1, headDim: 8, format: 'bf16' },
  { inFeatures: 104, numHeads: 5, numKvHeads: 5, headDim: 12, format: 'bf16' },
  { inFeatures: 48, numHeads: 9, numKvHeads: 3, headDim: 24, format: 'bf16' },
  { inFeatures: 64, numHeads: 3, numKvHeads: 1, headDim: 8, format: 'q8' },
  { inFeatures: 96, numHeads: 5, numKvHeads: 5, headDim: 12, format: 'q4' },
  { inFeatures: 96, numHeads: 9, numKvHeads: 3, headDim: 24, format: 'q8' },
];
const eps = 1e-5;
const theta = 100000;

describe('fused q/k/v GEMV with RoPE and the KV-cache append (gemv.wgsl: gemv_qkv_rope)', () => {
  it('takes head dims up to 64 whose half is even, up to 16 KV heads; other shapes use the separate kernels', () => {
    const variant: GemvVariant = { reduction: 'subgroup', team: 4 };
    expect(qkvRopePairs({ inFeatures: 576, numHeads: 9, numKvHeads: 3, headDim: 64 }, variant)).toBe(4);
    expect(qkvRopePairs({ inFeatures: 576, numHeads: 9, numKvHeads: 3, headDim: 64 }, { reduction: 'workgroup', team: 32 })).toBe(2);
    expect(qkvRopePairs({ inFeatures: 48, numHeads: 3, numKvHeads: 1, headDim: 12 }, variant)).toBe(2);
    expect(qkvRopePairs({ inFeatures: 48, numHeads: 3, numKvHeads: 1, headDim: 10 }, variant)).toBeNull();
    expect(qkvRopePairs({ inFeatures: 48, numHeads: 3, numKvHeads: 1, headDim: 128 }, variant)).toBeNull();
    expect(qkvRopePairs({ inFeatures: 48, numHeads: 17, numKvHeads: 17, headDim: 64 }, variant)).toBeNull();
    expect(qkvRopePairs({ inFeatures: 44, numHeads: 3, numKvHeads: 1, headDim: 8 }, variant)).toBeNull();
  });

  for (const shape of shapes) {
    const { inFeatures, numHeads, numKvHeads, headDim, format } = shape;
    it(`matches RMSNorm -> linear -> RoPE (q, k) and f16 packing into the ragged cache: ${format}, in ${inFeatures}, heads ${numHeads}/${numKvHeads}, headDim ${headDim}`, async () => {
      const ctx = await gpuContext();
      const qDim = numHeads * headDim;
      const kvDim = numKvHeads * headDim;
      const seed = inFeatures + headDim;
      const wq = testWeight(format, randomArray(qDim * inFeatures, seed + 1, 0.3), qDim, inFeatures);
      const wk = testWeight(format, randomArray(kvDim * inFeatures, seed + 2, 0.3), kvDim, inFeatures);
      const wv = testWeight(format, randomArray(kvDim * inFeatures, seed + 3, 0.3), kvDim, inFeatures);
      const norm = packedBf16(randomArray(inFeatures, seed + 4, 0.2).map((g) => g + 1));
      const weights = { q: weightBuffer(ctx, wq), k: weightBuffer(ctx, wk), v: weightBuffer(ctx, wv), norm: storage(ctx, norm.packed) };
      const promptLength = 9;
      const keptPerHead = [Array.from({ length: numKvHeads }, (_, g) => (g * 4 + 3) % (promptLength + 1))];
      for (const variant of await variants()) {
        const cache = RaggedKvCache.create(ctx, { numLayers: 1, numKvHeads, headDim, promptLength, keptPerHead: keptPerHead.map((row) => [...row]), maxNewTokens: 3 });
        const wantK: Float32Array[] = [];
        const wantV: Float32Array[] = [];
        try {
          // Two decode steps at long positions (the angle reduction matters there).
          for (const [step, position] of [1234, 1235].entries()) {
            const x = randomArray(inFeatures, seed + 10 + step, 2);
            const xn = rmsNorm(x, norm.rounded, 1, inFeatures, eps);
            const wantQ = ropeTorchF32(linear(xn, wq.rounded, 1, inFeatures, qDim), 1, numHeads, headDim, [position], theta);
            wantK.push(roundToF16(ropeTorchF32(linear(xn, wk.rounded, 1, inFeatures, kvDim), 1, numKvHeads, headDim, [position], theta)));
            wantV.push(roundToF16(linear(xn, wv.rounded, 1, inFeatures, kvDim)));
            const q = storage(ctx, new Float32Array(qDim).fill(Number.NaN));
            const rows = cache.reserveAppend(0);
            expect(rows).toEqual(keptPerHead[0].map((kept, g) => cache.slotOffset(0, g) + kept + step));
            gemvQkvRope(ctx, storage(ctx, x), weights, eps, q, { keys: cache.keys(0), values: cache.values(0), rows }, shape, { position, theta }, variant);
            cache.advance();
            const label = `${variant.reduction}/${variant.team} step ${step}`;
            expect(maxAbsDiff(await ctx.readF32(q, qDim), wantQ), label).toBeLessThan(5e-5);
          }
          // Every head's slice: untouched (zero) kept rows, then the two appended tokens, then the free row.
          const words = headDim / 2;
          const allK = unpackF16Pairs(await ctx.readU32(cache.keys(0), cache.keys(0).size / 4));
          const allV = unpackF16Pairs(await ctx.readU32(cache.values(0), cache.values(0).size / 4));
          for (let g = 0; g < numKvHeads; g++) {
            const start = cache.slotOffset(0, g);
            const kept = keptPerHead[0][g];
            const slice = (all: Float32Array, row: number): Float32Array => all.subarray((start + row) * 2 * words, (start + row + 1) * 2 * words);
            for (let row = 0; row < kept + 3; row++) {
              const step = row - kept;
              const label = `${variant.reduction}/${variant.team} head ${g} row ${row}`;
              if (step === 0 || step === 1) {
                // f16 of values computed in a different f32 order: at most one f16 ulp (|k| < 8 here: 2^-8).
                expect(maxAbsDiff(slice(allK, row), wantK[step].subarray(g * headDim, (g + 1) * headDim)), label).toBeLessThan(4e-3);
                expect(maxAbsDiff(slice(allV, row), wantV[step].subarray(g * headDim, (g + 1) * headDim)), label).toBeLessThan(4e-3);
              } else {
                expect([...slice(allK, row), ...slice(allV, row)].every((value) => value === 0), label).toBe(true);
              }
            }
          }
        } finally {
          cache.destroy();
        }
      }
    });
  }

  it('a decode step of the tiny model records at most 6 dispatches per text layer (+ embedding and lm_head)', async () => {
    const ctx = await gpuContext();
    const { config, file } = tinyModel();
    const model = await VlmModel.load(ctx, file, config);
    const inputIds = tinyPrompt(config, 0);
    const { text } = config;
    const cache = RaggedKvCache.create(ctx, {
      numLayers: text.numLayers, numKvHeads: text.numKvHeads, headDim: text.headDim, promptLength: inputIds.length,
      keptPerHead: fullCacheKept(text.numLayers, text.numKvHeads, inputIds.length), maxNewTokens: 2,
    });
    try {
      await model.prefill(inputIds, null, cache);
      const before = ctx.dispatchCount;
      model.decodeStep(5, inputIds.length, cache);
      const dispatches = ctx.dispatchCount - before;
      expect(dispatches).toBeLessThanOrEqual(6 * text.numLayers + 2);
      expect(dispatches).toBeGreaterThanOrEqual(text.numLayers);
    } finally {
      cache.destroy();
      model.destroy();
    }
  });
});
