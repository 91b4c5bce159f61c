// Weight format bf16 (the model's own weights, exact): one of three files with the same functions (weights_bf16,
// weights_q8, weights_q4), placed before a kernel that reads Linear weights [rows, K] (gemv.wgsl, matmul.wgsl) in
// the same module; the engine picks the file by the tensor's format when it builds the pipeline (PipelineSpec
// prelude). The kernel binds each weight as array<WeightChunk> (the GEMV) or array<u32> (the GEMM), loads the
// element(s) the index functions name and passes them to the values functions; the scale index of bf16 is the
// quant index itself (one load). unpack_bf16x8 / x2 come from bf16.wgsl, which the kernel includes.

// One 8-weight chunk: 8 bf16, two per u32 (element 2i in the low half).
alias WeightChunk = vec4<u32>;

// The array<WeightChunk> element of chunk c (weights 8c .. 8c + 7) of row n; `chunks` = K / 8.
fn weight_chunk_index(n: u32, c: u32, chunks: u32) -> u32 {
  return n * chunks + c;
}

// The element holding that chunk's scale in a tensor of `rows` rows (bf16 has none: the chunk itself).
fn weight_scale_index(rows: u32, n: u32, c: u32, chunks: u32) -> u32 {
  return n * chunks + c;
}

// The chunk's 8 weights in f32 from the two elements loaded above.
fn weight_chunk_values(quants: WeightChunk, scales: WeightChunk, n: u32, c: u32, chunks: u32) -> array<vec4<f32>, 2> {
  return unpack_bf16x8(quants);
}

// The u32 word (of an array<u32> binding) holding weights k and k + 1 of row n (k even), and its scale's word.
fn weight_pair_index(n: u32, k: u32, in_features: u32) -> u32 {
  return (n * in_features + k) / 2u;
}

fn weight_pair_scale_index(rows: u32, n: u32, k: u32, in_features: u32) -> u32 {
  return (n * in_features + k) / 2u;
}

fn weight_pair_values(word: u32, scale_word: u32, n: u32, k: u32, in_features: u32) -> vec2<f32> {
  return unpack_bf16x2(word);
}
