/**
 * IEEE half precision as the KV cache stores it (WGSL pack2x16float / unpack2x16float), for CPU references that must
 * see the same rounded values as the GPU. Round to nearest, ties to even; no value here is out of f16 range.
 */
import { f16BitsToF32, f32ToF16Bits } from '../../src/model-io/f16';

/** Bits of the f16 nearest to x (x within f16 range). */
export const f16Bits = f32ToF16Bits;
export const f16ToNumber = f16BitsToF32;

/** Each value rounded to f16 (what the cache holds for it). */
export function roundToF16(values: ArrayLike<number>): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f16ToNumber(f16Bits(values[i]));
  return out;
}

/** Unpacks u32 words of two f16 each (element 2i in the low half) to f32. */
export function unpackF16Pairs(words: Uint32Array): Float32Array {
  const out = new Float32Array(words.length * 2);
  for (let i = 0; i < words.length; i++) {
    out[2 * i] = f16ToNumber(words[i] & 0xffff);
    out[2 * i + 1] = f16ToNumber(words[i] >>> 16);
  }
  return out;
}
