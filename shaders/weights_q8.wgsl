// Weight format q8 (GGML Q8_0 blocks of 32, made while loading): the functions of weights_bf16.wgsl for this
// layout. Quants: one signed byte per weight, row-major, weight k of a row in byte k % 4 of word k / 4; then the
// f16 scales (weight_blocks.wgsl). Weight = q * scale, exact in f32.
// #include weight_blocks.wgsl

// One 8-weight chunk: 8 signed bytes.
alias WeightChunk = vec2<u32>;

fn weight_chunk_index(n: u32, c: u32, chunks: u32) -> u32 {
  return n * chunks + c;
}

// The quants take rows * chunks elements; four 8-weight chunks make a block, and an element holds four scales.
fn weight_scale_index(rows: u32, n: u32, c: u32, chunks: u32) -> u32 {
  return rows * chunks + (n * chunks + c) / 16u;
}

fn signed_bytes(word: u32) -> vec4<f32> {
  return vec4<f32>(vec4<i32>(bitcast<i32>(word << 24u), bitcast<i32>(word << 16u), bitcast<i32>(word << 8u), bitcast<i32>(word)) >> vec4<u32>(24u));
}

fn weight_chunk_values(quants: WeightChunk, scales: WeightChunk, n: u32, c: u32, chunks: u32) -> array<vec4<f32>, 2> {
  let block = (n * chunks + c) / 4u;
  let d = block_scale(scales[(block >> 1u) & 1u], block);
  return array<vec4<f32>, 2>(signed_bytes(quants.x) * d, signed_bytes(quants.y) * d);
}

fn weight_pair_index(n: u32, k: u32, in_features: u32) -> u32 {
  return (n * in_features + k) / 4u;
}

fn weight_pair_scale_index(rows: u32, n: u32, k: u32, in_features: u32) -> u32 {
  return rows * in_features / 4u + (n * in_features + k) / (2u * WEIGHT_BLOCK);
}

fn weight_pair_values(word: u32, scale_word: u32, n: u32, k: u32, in_features: u32) -> vec2<f32> {
  let at = n * in_features + k;
  let d = block_scale(scale_word, at / WEIGHT_BLOCK);
  let bytes = signed_bytes(word);
  return select(bytes.xy, bytes.zw, (at & 2u) != 0u) * d;
}
