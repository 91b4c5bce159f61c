/**
 * IEEE half precision (f16) <-> number, bit-exact: round to nearest, ties to even, subnormals kept (not flushed).
 * Used where the GPU stores f16 (the KV cache's pack2x16float, the scales of q8 / q4 weight blocks) and a CPU
 * reference must see the same values.
 */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Bits of the f16 nearest to x (as f32 first); beyond the f16 range: infinity; NaN stays NaN. */
export function f32ToF16Bits(x: number): number {
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

/** The value of f16 bits `h` (exact: every f16 is an f32). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}
