// Weight format q4 (GGML Q4_0 math in blocks of 32, made while loading): the functions of weights_bf16.wgsl for this
// layout. Quants: one unsigned nibble per weight, row-major, weight k of a row in bits 4 (k % 8) .. of word k / 8
// (consecutive, so an 8-weight chunk is one word; GGML's own block pairs weight j with j + 16); then the f16 scales
// (weight_blocks.wgsl). Weight = (q - 8) * scale, exact in f32.
// #include weight_blocks.wgsl

// One 8-weight chunk: 8 nibbles.
alias WeightChunk = u32;

fn weight_chunk_index(n: u32, c: u32, chunks: u32) -> u32 {
  return n * chunks + c;
}

// The quants take rows * chunks words; four chunks make a block, and a word holds two scales.
fn weight_scale_index(rows: u32, n: u32, c: u32, chunks: u32) -> u32 {
  return rows * chunks + (n * chunks + c) / 8u;
}

// Nibbles 0..3 (shift 0) or 4..7 (shift 16) of a word, minus 8.
fn centred_nibbles(word: u32, shift: u32) -> vec4<f32> {
  let w = word >> shift;
  return vec4<f32>(vec4<u32>(w, w >> 4u, w >> 8u, w >> 12u) & vec4<u32>(0xfu)) - 8.0;
}

fn weight_chunk_values(quants: WeightChunk, scales: WeightChunk, n: u32, c: u32, chunks: u32) -> array<vec4<f32>, 2> {
  let d = block_scale(scales, (n * chunks + c) / 4u);
  return array<vec4<f32>, 2>(centred_nibbles(quants, 0u) * d, centred_nibbles(quants, 16u) * d);
}

fn weight_pair_index(n: u32, k: u32, in_features: u32) -> u32 {
  return (n * in_features + k) / 8u;
}

fn weight_pair_scale_index(rows: u32, n: u32, k: u32, in_features: u32) -> u32 {
  return rows * in_features / 8u + (n * in_features + k) / (2u * WEIGHT_BLOCK);
}

fn weight_pair_values(word: u32, scale_word: u32, n: u32, k: u32, in_features: u32) -> vec2<f32> {
  let at = n * in_features + k;
  let d = block_scale(scale_word, at / WEIGHT_BLOCK);
  let pair = (word >> (4u * (at & 7u))) & 0xffu;
  return (vec2<f32>(f32(pair & 0xfu), f32(pair >> 4u)) - 8.0) * d;
}
