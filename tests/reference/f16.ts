/**
 * IEEE half precision as the KV cache stores it (WGSL pack2x16float / unpack2x16float), for CPU references that must
 * see the same rounded values as the GPU. Round to nearest, ties to even; no value here is out of f16 range.
 */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Bits of the f16 nearest to x (x within f16 range). */
export function f16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal f16 (or zero): shift the implicit 1 in and round.
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mantissa & ((1 << shift) - 1);
    let result = mantissa >>> shift;
    if (rest > half || (rest === half && (result & 1) === 1)) result += 1;
    return sign | result;
  }
  const rest = mantissa & 0x1fff;
  let result = (e << 10) | (mantissa >>> 13);
  if (rest > 0x1000 || (rest === 0x1000 && (result & 1) === 1)) result += 1; // may carry into the exponent: correct
  return sign | result;
}

export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

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
