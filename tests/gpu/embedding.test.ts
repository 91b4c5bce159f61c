import { describe, expect, it } from 'vitest';
import { embedding } from '../../src/engine/ops/embedding';
import { embedding as embeddingReference } from '../reference/cpu-ops';
import { empty, gpuContext, maxAbsDiff, randomArray, storage } from '../helpers/gpu';
import { packedBf16 } from './packed-bf16';

describe('embedding gather (packed bf16 table)', () => {
  for (const [vocab, dim, tokens] of [
    [37, 6, 1],
    [37, 18, 3],
    [301, 70, 17],
  ]) {
    it(`vocab ${vocab}, dim ${dim}, ${tokens} tokens`, async () => {
      const ctx = await gpuContext();
      const table = packedBf16(randomArray(vocab * dim, dim));
      // Repeated ids, the first and the last row.
      const ids = Uint32Array.from({ length: tokens }, (_, i) => (i === 0 ? vocab - 1 : (i * 7919) % vocab));
      if (tokens > 2) ids[2] = 0;
      const out = empty(ctx, tokens * dim);
      embedding(ctx, storage(ctx, table.packed), storage(ctx, ids), out, tokens, dim);
      const got = await ctx.readF32(out, tokens * dim);
      // A gather of bf16 values widened to f32 is exact.
      expect(maxAbsDiff(got, embeddingReference(table.rounded, dim, ids))).toBe(0);
    });
  }
});
