import { describe, expect, it } from 'vitest';
import { matmul } from '../../src/engine/ops/matmul';
import { patchify, pixelShuffle } from '../../src/engine/ops/vision-prep';
import { linear, patchConv2d, patchifyReference, pixelShuffleReference } from '../reference/cpu-ops';
import { empty, gpuContext, maxAbsDiff, randomArray, storage } from '../helpers/gpu';
import { packedBf16 } from './packed-bf16';

describe('patchify', () => {
  it('patch rows x conv weight equals Conv2d(kernel = stride = patch) (CPU check of the layout)', () => {
    const [tiles, channels, height, width, patch, hidden] = [2, 3, 8, 12, 4, 5];
    const pixels = randomArray(tiles * channels * height * width, 1);
    const weight = randomArray(hidden * channels * patch * patch, 2);
    const bias = randomArray(hidden, 3);
    const rows = patchifyReference(pixels, tiles, channels, height, width, patch);
    const viaMatmul = linear(rows, weight, rows.length / (channels * patch * patch), channels * patch * patch, hidden, bias);
    expect(maxAbsDiff(viaMatmul, patchConv2d(pixels, weight, bias, tiles, channels, height, width, patch, hidden))).toBeLessThan(1e-5);
  });

  it('GPU patchify equals the reference (2 tiles, 3 channels, 8x12, patch 4), and feeds matmul to the conv result', async () => {
    const ctx = await gpuContext();
    const [tiles, channels, height, width, patch, hidden] = [2, 3, 8, 12, 4, 6];
    const pixels = randomArray(tiles * channels * height * width, 4);
    const patchLen = channels * patch * patch;
    const patchRows = tiles * (height / patch) * (width / patch);
    const out = empty(ctx, patchRows * patchLen);
    patchify(ctx, storage(ctx, pixels), out, tiles, channels, height, width, patch);
    const got = await ctx.readF32(out, patchRows * patchLen);
    // Pure data movement: exact.
    expect(maxAbsDiff(got, patchifyReference(pixels, tiles, channels, height, width, patch))).toBe(0);

    const weight = packedBf16(randomArray(hidden * patchLen, 5));
    const bias = packedBf16(randomArray(hidden, 6));
    const embedded = empty(ctx, patchRows * hidden);
    matmul(ctx, out, storage(ctx, weight.packed), storage(ctx, bias.packed), embedded, patchRows, patchLen, hidden);
    const conv = patchConv2d(pixels, weight.rounded, bias.rounded, tiles, channels, height, width, patch, hidden);
    // 48-term f32 dot products against f64.
    expect(maxAbsDiff(await ctx.readF32(embedded, patchRows * hidden), conv)).toBeLessThan(1e-4);
  });
});

describe('pixelShuffle (Idefics3Connector.pixel_shuffle)', () => {
  it('reference follows the view/permute chain: a hand-checked 4x4 grid, scale 2, dim 1', () => {
    // Tokens 0..15 on a 4x4 grid. Output token (i2, j) gathers rows 2*i2..2*i2+1 and cols 2*j..2*j+1 as (ky, kx).
    const x = Float32Array.from({ length: 16 }, (_, i) => i);
    expect([...pixelShuffleReference(x, 1, 16, 1, 2)]).toEqual([0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]);
  });

  for (const [tiles, seq, dim, scale] of [
    [1, 16, 1, 2],
    [2, 64, 3, 4],
    [3, 36, 5, 3],
    [1, 64, 8, 2],
  ]) {
    it(`tiles ${tiles}, seq ${seq}, dim ${dim}, scale ${scale}`, async () => {
      const ctx = await gpuContext();
      const x = randomArray(tiles * seq * dim, seq + dim);
      const outCount = tiles * seq * dim;
      const out = empty(ctx, outCount);
      pixelShuffle(ctx, storage(ctx, x), out, tiles, seq, dim, scale);
      // Pure data movement: exact.
      expect(maxAbsDiff(await ctx.readF32(out, outCount), pixelShuffleReference(x, tiles, seq, dim, scale))).toBe(0);
    });
  }
});
