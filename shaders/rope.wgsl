// Llama RoPE in place, rotate_half layout: for i < D/2 the pair is (i, i + D/2).
// x is [tokens, heads, headDim] f32; positions is u32 [tokens]; inv_freq is f32 [headDim/2], computed on the
// CPU exactly as torch does (f32), because WGSL's pow may be several ulp off.
// Compiled after shaders/rope_angle.wgsl (sin_cos).
// #params Params (fields: src/engine/kernel-params.ts)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read> inv_freq: array<f32>;

override WORKGROUP_SIZE: u32 = 256u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WORKGROUP_SIZE + lid;
  if (i >= p.tokens * p.heads * p.half_dim) {
    return;
  }
  let pair = i % p.half_dim;
  let token_head = i / p.half_dim;
  let token = token_head / p.heads;
  // Like torch: the angle is the f32 product position * inv_freq.
  let sc = sin_cos(f32(positions[token]) * inv_freq[pair]);
  let s = sc.x;
  let c = sc.y;
  let o = token_head * p.half_dim * 2u + pair;
  let a = x[o];
  let b = x[o + p.half_dim];
  x[o] = a * c - b * s;
  x[o + p.half_dim] = b * c + a * s;
}
