import { describe, expect, it } from 'vitest';
import {
  blockScaleBits,
  dequantizeTensor,
  parseWeightFormat,
  quantizationObstacle,
  quantizeBlockQ4,
  quantizeBlockQ8,
  quantizeTensor,
  weightTensorBytes,
} from '../../src/model-io/quantize';
import { f16BitsToF32 } from '../../src/model-io/f16';

// Expected values were worked out by hand and checked with an independent numpy statement of GGML's
// quantize_row_q8_0_ref / quantize_row_q4_0_ref (float32 throughout, np.float16 for the scale).
const block = (head: number[]): number[] => [...head, ...new Array<number>(32 - head.length).fill(0)];

describe('q8 blocks (GGML Q8_0 math)', () => {
  it('a block of zeros has scale 0 and quants 0', () => {
    const { d16, q } = quantizeBlockQ8(block([]));
    expect(d16).toBe(0);
    expect([...q]).toEqual(new Array(32).fill(0));
  });

  it('amax 127: d = 1, roundf rounds ties away from zero, +-127 reach the ends', () => {
    const { d16, q } = quantizeBlockQ8(block([127, -127, 63.5, -63.5, 2.5, -2.5, 0.5, -0.49]));
    expect(d16).toBe(0x3c00); // 1.0
    expect([...q.subarray(0, 8)]).toEqual([127, -127, 64, -64, 3, -3, 1, 0]);
  });

  it('amax 1: d = f32(1/127) -> f16 0x2008, w * id in f32', () => {
    const { d16, q } = quantizeBlockQ8(block([1, 0.5, -0.5, 0.25, -1, 0.75, 0.1, -0.3]));
    expect(d16).toBe(0x2008);
    expect([...q.subarray(0, 8)]).toEqual([127, 64, -64, 32, -127, 95, 13, -38]);
  });

  it('a tiny block keeps a subnormal f16 scale (not flushed to zero)', () => {
    const { d16, q } = quantizeBlockQ8(block([1e-3, -5e-4, 2.5e-4]));
    expect(d16).toBe(0x84);
    expect([...q.subarray(0, 3)]).toEqual([127, -64, 32]);
  });
});

describe('q4 blocks (GGML Q4_0 math)', () => {
  it('a block of zeros has scale 0 (-0 as 0 / -8 gives, bits 0x8000 as GGML writes) and quants 8 (trunc(0 + 8.5))', () => {
    const { d16, q } = quantizeBlockQ4(block([]));
    expect(d16).toBe(0x8000);
    expect([...q]).toEqual(new Array(32).fill(8));
  });

  it('m = -2: d = 0.25, id = 4; -m lands on 16 and is clamped to 15', () => {
    const { d16, q } = quantizeBlockQ4(block([-2, 2, 0.125, -0.125, 1.875, 1.0]));
    expect(d16).toBe(0x3400); // 0.25
    expect([...q.subarray(0, 6)]).toEqual([0, 15, 9, 8, 15, 12]);
    expect(q[6]).toBe(8);
  });

  it('a tie in magnitude keeps the first value (sign included), as GGML scans', () => {
    const { d16, q } = quantizeBlockQ4(block([0.3, -0.7, 0.1, 0.7]));
    expect(d16).toBe(0x2d9a); // f16(-0.7 / -8)
    expect([...q.subarray(0, 4)]).toEqual([11, 0, 9, 15]);
  });

  it('a positive largest value gives a negative scale', () => {
    const { d16, q } = quantizeBlockQ4(block([0.3, 0.1, -0.05]));
    expect(d16).toBe(0xa8cd);
    expect([...q.subarray(0, 3)]).toEqual([0, 5, 9]);
  });
});

describe('tensor layout', () => {
  const rows = 2;
  const cols = 64;
  const values = new Float32Array(rows * cols);
  values.set(block([127, -127, 63.5, -1, 2, 3, 4, 5, 6]), 0); // row 0, block 0
  values.set(block([-2, 2, 0.125]), 96); // row 1, block 1

  it('q8: four signed bytes per word, then the f16 scales two per word; dequantizes to q * d16', () => {
    const t = quantizeTensor('q8', values, rows, cols);
    expect(t.words.length * 4).toBe(weightTensorBytes('q8', rows, cols));
    expect(weightTensorBytes('q8', rows, cols)).toBe(144); // 128 quant bytes + 4 scales * 2 bytes, padded to 16
    expect(t.words[0]).toBe(((127 & 0xff) | ((-127 & 0xff) << 8) | (64 << 16) | ((-1 & 0xff) << 24)) >>> 0);
    expect(blockScaleBits(t, 0)).toBe(0x3c00);
    expect(blockScaleBits(t, 1)).toBe(0); // row 0 block 1 is zero
    expect(t.words[32]).toBe(0x3c00); // scales start after rows * cols / 4 words
    const w = dequantizeTensor(t);
    expect([...w.subarray(0, 5)]).toEqual([127, -127, 64, -1, 2]);
    expect(w[96]).toBe(-127 * f16BitsToF32(blockScaleBits(t, 3)));
  });

  it('q4: eight nibbles per word in weight order, then the scales; dequantizes to (q - 8) * d16', () => {
    const t = quantizeTensor('q4', values, rows, cols);
    expect(weightTensorBytes('q4', rows, cols)).toBe(80); // 64 quant bytes + 8 scale bytes, padded to 16
    expect(blockScaleBits(t, 3)).toBe(0x3400);
    // Row 1, block 1 starts at weight 96 = word 12: quants 0, 15, 9, then 8s.
    expect(t.words[12]).toBe((0 | (15 << 4) | (9 << 8) | (8 << 12) | (8 << 16) | (8 << 20) | (8 << 24) | (8 << 28)) >>> 0);
    const w = dequantizeTensor(t);
    expect([...w.subarray(96, 100)]).toEqual([-2, 1.75, 0.25, 0]);
    // A zero block (row 1 block 0) dequantizes to zeros.
    expect([...w.subarray(64, 96)].every((v) => v === 0)).toBe(true);
  });

  it('refuses what it cannot quantize, and a scale beyond f16', () => {
    expect(quantizationObstacle([4, 48])).toBe('its input dimension 48 is not a multiple of 32');
    expect(quantizationObstacle([4, 64])).toBeNull();
    expect(() => quantizeTensor('q8', new Float32Array(32).fill(1e8), 1, 32)).toThrow(/beyond the f16 range/);
  });

  it('parses the format names and names the known ones for anything else', () => {
    expect(parseWeightFormat('Q4')).toBe('q4');
    expect(() => parseWeightFormat('int4')).toThrow('Unknown weight format "int4": use one of bf16, q8, q4');
  });
});
