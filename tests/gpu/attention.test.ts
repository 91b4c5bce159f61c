import { describe, expect, it } from 'vitest';
import { prefillAttention, type PrefillAttentionShape } from '../../src/engine/ops/attention';
import { attention } from '../reference/cpu-ops';
import { empty, gpuContext, maxAbsDiff, randomArray, storage } from '../helpers/gpu';

// f32 on the GPU with a different summation order (tiles, online rescaling) vs f64 on the CPU:
// outputs are convex combinations of values in [-1, 1], so 1e-5 absolute is a tight, meaningful bound.
const tolerance = 1e-5;

async function runPrefill(shape: PrefillAttentionShape, seed: number): Promise<{ got: Float32Array; want: Float32Array }> {
  const ctx = await gpuContext();
  const { queries, keys, numHeads, numKvHeads, headDim } = shape;
  // Scale 2 makes the softmax peaky enough that a wrong mask or a wrong max shows up clearly.
  const q = randomArray(queries * numHeads * headDim, seed, 2);
  const k = randomArray(keys * numKvHeads * headDim, seed + 1, 2);
  const v = randomArray(keys * numKvHeads * headDim, seed + 2);
  const out = empty(ctx, queries * numHeads * headDim);
  prefillAttention(ctx, storage(ctx, q), storage(ctx, k), storage(ctx, v), out, shape);
  const got = await ctx.readF32(out, queries * numHeads * headDim);
  const want = attention(q, k, v, shape).out;
  return { got, want };
}

/** runPrefill, then the GPU output within `tolerance` of the CPU reference. */
async function expectMatchesReference(shape: PrefillAttentionShape, seed: number): Promise<void> {
  const { got, want } = await runPrefill(shape, seed);
  expect(maxAbsDiff(got, want)).toBeLessThan(tolerance);
}

describe('prefill attention', () => {
  it('causal with GQA (9 query heads over 3 KV heads) matches the CPU reference, several tiles and a ragged last tile', async () => {
    await expectMatchesReference({ queries: 37, keys: 37, numHeads: 9, numKvHeads: 3, headDim: 16, causal: true }, 10);
  });

  it('causal with fewer queries than keys (queries see the earlier keys plus their own prefix)', async () => {
    await expectMatchesReference({ queries: 5, keys: 29, numHeads: 4, numKvHeads: 2, headDim: 8, causal: true }, 20);
  });

  it('non-causal (vision tower) with head dim 64 matches the CPU reference', async () => {
    await expectMatchesReference({ queries: 21, keys: 21, numHeads: 2, numKvHeads: 2, headDim: 64, causal: false }, 30);
  });

  it('head dim 128 (largest supported, smallest key tile) and a single token', async () => {
    await expectMatchesReference({ queries: 18, keys: 18, numHeads: 2, numKvHeads: 1, headDim: 128, causal: true }, 40);
    await expectMatchesReference({ queries: 1, keys: 1, numHeads: 3, numKvHeads: 1, headDim: 8, causal: true }, 50);
  });

  // Head dims 32 and 64 take the register-blocked `flash` kernel (32 query rows x 32-key tiles): ragged query and key
  // tiles, GQA, causal with fewer queries than keys, more than one query tile per head.
  it('flash kernel: causal GQA at head dim 64 over several ragged query and key tiles', async () => {
    await expectMatchesReference({ queries: 71, keys: 71, numHeads: 6, numKvHeads: 2, headDim: 64, causal: true }, 70);
  });

  it('flash kernel: bidirectional at head dim 32, and causal with fewer queries than keys', async () => {
    await expectMatchesReference({ queries: 45, keys: 45, numHeads: 3, numKvHeads: 3, headDim: 32, causal: false }, 80);
    await expectMatchesReference({ queries: 7, keys: 40, numHeads: 4, numKvHeads: 1, headDim: 32, causal: true }, 90);
  });

  it('causal differs from non-causal (the mask is applied)', async () => {
    const shape: PrefillAttentionShape = { queries: 12, keys: 12, numHeads: 1, numKvHeads: 1, headDim: 8, causal: true };
    const causal = await runPrefill(shape, 60);
    const bidirectional = await runPrefill({ ...shape, causal: false }, 60);
    expect(maxAbsDiff(causal.got, bidirectional.got)).toBeGreaterThan(1e-2);
  });
});
