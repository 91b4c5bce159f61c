// Packed bf16, shared by the kernels that read weights (`// #include bf16.wgsl`, resolved by the shader loader,
// src/engine/shader-source.ts): two bf16 per u32, element 2i in the low half. A bf16 is the high half of an f32, so
// moving its bits into place is the whole conversion.

fn unpack_bf16x2(word: u32) -> vec2<f32> {
  return vec2<f32>(bitcast<f32>(word << 16u), bitcast<f32>(word & 0xffff0000u));
}

// Eight bf16 from one 16-byte load.
fn unpack_bf16x8(words: vec4<u32>) -> array<vec4<f32>, 2> {
  return array<vec4<f32>, 2>(vec4<f32>(unpack_bf16x2(words.x), unpack_bf16x2(words.y)), vec4<f32>(unpack_bf16x2(words.z), unpack_bf16x2(words.w)));
}
