/**
 * 8-bit and 4-bit weight blocks, made from the bf16 weights while a model loads (the file stays bf16). The math is
 * GGML's reference quantizers (quantize_row_q8_0_ref / quantize_row_q4_0_ref in ggml-quants.c, the GGUF Q8_0 / Q4_0
 * blocks), all in f32, per block of 32 consecutive weights along the input dimension of one output row:
 *   q8: d = amax / 127, id = 1 / d, q = roundf(w * id) (half away from zero) in [-127, 127]; weight = q * d16
 *   q4: m = the block's value of largest magnitude (sign kept; the first one on a tie), d = m / -8, id = 1 / d,
 *       q = min(15, trunc(w * id + 8.5)) in [0, 15]; weight = (q - 8) * d16
 *   d16 = d as f16 (round to nearest even), the scale dequantization uses; a block of zeros has d = 0, id = 0.
 * f32 arithmetic is reproduced with Math.fround after each operation (a product, quotient or sum of two f32 is exact
 * in a double, so rounding it once to f32 gives what the f32 operation gives).
 *
 * Memory layout on the GPU (one buffer per tensor [rows, cols], cols % 32 == 0; the kernels read it through
 * shaders/weights_q8.wgsl / weights_q4.wgsl):
 *   q8: the quants, row-major, one signed byte per weight, four per u32 (weight k of a row in byte k % 4 of word k / 4,
 *       byte 0 the low byte); then the scales, f16, one per block in row-major block order, two per u32 (block 2j in
 *       the low half). rows * cols bytes of quants, so the scales start 8-byte aligned.
 *   q4: the quants, row-major, one unsigned nibble per weight, eight per u32 (weight k of a row in bits 4 (k % 8) ..
 *       of word k / 8; unlike GGML's block, which pairs weight j with j + 16 in one byte: consecutive weights keep a
 *       kernel's 8-weight chunk in one word); then the scales as for q8.
 *   Both padded to a multiple of 16 bytes.
 */
import { f16BitsToF32, f32ToF16Bits } from './f16';

export type WeightFormat = 'bf16' | 'q8' | 'q4';
export type QuantizedFormat = Exclude<WeightFormat, 'bf16'>;

/** The weight formats, in the order a picker lists them (exact first). */
export const weightFormats: readonly WeightFormat[] = ['bf16', 'q8', 'q4'];

/** Weights per block along the input dimension (one f16 scale each). */
export const quantBlockSize = 32;

/** Parses a weight format name (CLI flag, URL, app setting); an unknown one gets the list of known ones. */
export function parseWeightFormat(text: string): WeightFormat {
  const format = weightFormats.find((name) => name === text.trim().toLowerCase());
  if (!format) throw new Error(`Unknown weight format "${text}": use one of ${weightFormats.join(', ')} (bf16 is exact; q8 and q4 are 8- and 4-bit blocks of 32).`);
  return format;
}

/** Why a [rows, cols] tensor cannot be quantized (null when it can). */
export function quantizationObstacle(shape: readonly number[]): string | null {
  if (shape.length !== 2) return `it is not a matrix (shape [${shape.join(', ')}])`;
  if (shape[1] % quantBlockSize !== 0) return `its input dimension ${shape[1]} is not a multiple of ${quantBlockSize}`;
  return null;
}

/** u32 words of the quants of a [rows, cols] tensor in `format` (where its scales start). */
export function quantWords(format: QuantizedFormat, rows: number, cols: number): number {
  return (rows * cols) / (format === 'q8' ? 4 : 8);
}

/** GPU bytes of a [rows, cols] tensor in `format` (bf16: two per u32; q8 / q4: quants + scales; 16-byte padded). */
export function weightTensorBytes(format: WeightFormat, rows: number, cols: number): number {
  const elements = rows * cols;
  if (format === 'bf16') return Math.ceil(elements / 2) * 4;
  const words = quantWords(format, rows, cols) + Math.ceil(elements / quantBlockSize / 2);
  return Math.ceil(words / 4) * 16;
}

/** One q8 block: the f16 bits of its scale and its quants in [-127, 127]. */
export function quantizeBlockQ8(block: ArrayLike<number>): { d16: number; q: Int8Array } {
  let amax = 0;
  for (let j = 0; j < block.length; j++) amax = Math.max(amax, Math.abs(block[j]));
  const d = Math.fround(amax / 127);
  const id = d !== 0 ? Math.fround(1 / d) : 0;
  const q = new Int8Array(block.length);
  for (let j = 0; j < block.length; j++) {
    const x = Math.fround(block[j] * id);
    // roundf: half away from zero (Math.round of the magnitude; exact for an f32 magnitude).
    q[j] = Math.sign(x) * Math.round(Math.abs(x));
  }
  return { d16: f32ToF16Bits(d), q };
}

/** One q4 block: the f16 bits of its scale and its quants in [0, 15] (weight = (q - 8) * d16). */
export function quantizeBlockQ4(block: ArrayLike<number>): { d16: number; q: Uint8Array } {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < block.length; j++) {
    // Strictly greater: the first value of the largest magnitude wins, as in GGML.
    if (amax < Math.abs(block[j])) {
      amax = Math.abs(block[j]);
      max = block[j];
    }
  }
  const d = Math.fround(max / -8);
  const id = d !== 0 ? Math.fround(1 / d) : 0;
  const q = new Uint8Array(block.length);
  for (let j = 0; j < block.length; j++) {
    const x = Math.fround(block[j] * id);
    // (int8_t)(x + 8.5f): truncation toward zero of an f32 sum in [0.5, 16.5].
    q[j] = Math.min(15, Math.trunc(Math.fround(x + 8.5)));
  }
  return { d16: f32ToF16Bits(d), q };
}

/** A tensor's q8 / q4 blocks in the GPU layout above, with its shape. */
export interface QuantizedTensor {
  format: QuantizedFormat;
  rows: number;
  cols: number;
  words: Uint32Array;
}

/**
 * Quantizes `values` (f32, row-major [rows, cols], cols % 32 == 0) into the layout above. Throws when a block's scale
 * does not fit f16 (a weight of magnitude beyond 127 * 65504 for q8, 8 * 65504 for q4): such a tensor stays bf16.
 */
export function quantizeTensor(format: QuantizedFormat, values: Float32Array, rows: number, cols: number): QuantizedTensor {
  if (cols % quantBlockSize !== 0) throw new Error(`quantizeTensor: cols ${cols} is not a multiple of ${quantBlockSize}`);
  if (values.length !== rows * cols) throw new Error(`quantizeTensor: ${values.length} values for [${rows}, ${cols}]`);
  const words = new Uint32Array(weightTensorBytes(format, rows, cols) / 4);
  const scaleBase = quantWords(format, rows, cols);
  const blocks = (rows * cols) / quantBlockSize;
  for (let b = 0; b < blocks; b++) {
    const start = b * quantBlockSize;
    const block = values.subarray(start, start + quantBlockSize);
    const { d16, q } = format === 'q8' ? quantizeBlockQ8(block) : quantizeBlockQ4(block);
    if ((d16 & 0x7c00) === 0x7c00) throw new Error(`a block's scale (${f16BitsToF32(d16)}) is beyond the f16 range`);
    words[scaleBase + (b >> 1)] |= d16 << (16 * (b & 1));
    for (let j = 0; j < quantBlockSize; j++) {
      const k = start + j;
      if (format === 'q8') words[k >> 2] |= (q[j] & 0xff) << (8 * (k & 3));
      else words[k >> 3] |= q[j] << (4 * (k & 7));
    }
  }
  return { format, rows, cols, words };
}

/** The f16 bits of block `b`'s scale. */
export function blockScaleBits(tensor: QuantizedTensor, b: number): number {
  return (tensor.words[quantWords(tensor.format, tensor.rows, tensor.cols) + (b >> 1)] >>> (16 * (b & 1))) & 0xffff;
}

/** The weights the GPU computes with: q * d16 (q8) or (q - 8) * d16 (q4), f32 [rows, cols]. Each product is exact. */
export function dequantizeTensor(tensor: QuantizedTensor): Float32Array {
  const { format, rows, cols, words } = tensor;
  const out = new Float32Array(rows * cols);
  for (let b = 0; b < out.length / quantBlockSize; b++) {
    const d = f16BitsToF32(blockScaleBits(tensor, b));
    for (let j = 0; j < quantBlockSize; j++) {
      const k = b * quantBlockSize + j;
      const q = format === 'q8' ? ((words[k >> 2] >>> (8 * (k & 3))) << 24) >> 24 : ((words[k >> 3] >>> (4 * (k & 7))) & 0xf) - 8;
      out[k] = q * d;
    }
  }
  return out;
}
