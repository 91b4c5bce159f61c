// What weights_q8.wgsl and weights_q4.wgsl share: blocks of 32 weights along K, one f16 scale each, the scales of a
// tensor stored after its quants in row-major block order, two per u32 (block 2j in the low half). Layout and math:
// src/model-io/quantize.ts.

const WEIGHT_BLOCK: u32 = 32u;

// The f32 value of f16 bits `h`, subnormals included (they are exact f32 normals; decoded by hand so that no
// flush-to-zero can differ from the CPU's dequantization). The loader never stores an infinite or NaN scale.
fn f16_bits_to_f32(h: u32) -> f32 {
  let sign = (h & 0x8000u) << 16u;
  let exponent = (h >> 10u) & 0x1fu;
  let mantissa = h & 0x3ffu;
  let normal = bitcast<f32>(sign | ((exponent + 112u) << 23u) | (mantissa << 13u));
  let subnormal = bitcast<f32>(bitcast<u32>(f32(mantissa) * 5.9604644775390625e-8) | sign); // mantissa * 2^-24
  return select(normal, subnormal, exponent == 0u);
}

// The scale of block `block` (counted over the whole tensor) from the u32 word that holds it.
fn block_scale(word: u32, block: u32) -> f32 {
  return f16_bits_to_f32((word >> (16u * (block & 1u))) & 0xffffu);
}
