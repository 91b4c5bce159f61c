// Embedding gather: out[t, d] = table[ids[t], d], the table packed bf16 (two per u32), the output f32.
// dim is even (all model dims are), so one thread copies one packed word = two output values.
// #params Params (fields: src/engine/kernel-params.ts)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> table: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec2<f32>>;

override WORKGROUP_SIZE: u32 = 256u;

// #include bf16.wgsl

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WORKGROUP_SIZE + lid;
  if (i >= p.tokens * p.half_dim) {
    return;
  }
  let token = i / p.half_dim;
  let word = table[ids[token] * p.half_dim + (i % p.half_dim)];
  out[i] = unpack_bf16x2(word);
}
