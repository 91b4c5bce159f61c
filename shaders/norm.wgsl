// Row normalisations, one workgroup per row, f32 reductions in workgroup memory.
// Weights and biases are packed bf16 (two per u32). x and out must be different buffers.
// #params Params (fields: src/engine/kernel-params.ts)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// Only layer_norm uses a bias; it comes after out so that rms_norm's bindings stay 1..3.
@group(0) @binding(4) var<storage, read> bias: array<u32>;

const WORKGROUP_SIZE: u32 = 256u;
var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

// #include bf16.wgsl

fn weight_at(i: u32) -> f32 {
  return unpack_bf16x2(weight[i >> 1u])[i & 1u];
}

fn bias_at(i: u32) -> f32 {
  return unpack_bf16x2(bias[i >> 1u])[i & 1u];
}

// Tree sum over the workgroup; every invocation gets the total.
fn workgroup_sum(value: f32, lid: u32) -> f32 {
  partial[lid] = value;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  let total = partial[0];
  // partial is reused by the next reduction: nobody may overwrite it before everyone has read the total.
  workgroupBarrier();
  return total;
}

// Llama RMSNorm: x * rsqrt(mean(x^2) + eps) * weight.
@compute @workgroup_size(WORKGROUP_SIZE)
fn rms_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) {
    return;
  }
  let base = row * p.dim;
  var sum_sq = 0.0;
  for (var i = lid; i < p.dim; i += WORKGROUP_SIZE) {
    let v = x[base + i];
    sum_sq += v * v;
  }
  let inv = inverseSqrt(workgroup_sum(sum_sq, lid) / f32(p.dim) + p.eps);
  for (var i = lid; i < p.dim; i += WORKGROUP_SIZE) {
    out[base + i] = x[base + i] * inv * weight_at(i);
  }
}

// LayerNorm as torch: biased variance, computed around the mean (two passes, no E[x^2]-E[x]^2 cancellation).
@compute @workgroup_size(WORKGROUP_SIZE)
fn layer_norm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) {
    return;
  }
  let base = row * p.dim;
  var sum = 0.0;
  for (var i = lid; i < p.dim; i += WORKGROUP_SIZE) {
    sum += x[base + i];
  }
  let mean = workgroup_sum(sum, lid) / f32(p.dim);
  var sum_sq = 0.0;
  for (var i = lid; i < p.dim; i += WORKGROUP_SIZE) {
    let d = x[base + i] - mean;
    sum_sq += d * d;
  }
  let inv = inverseSqrt(workgroup_sum(sum_sq, lid) / f32(p.dim) + p.eps);
  for (var i = lid; i < p.dim; i += WORKGROUP_SIZE) {
    out[base + i] = (x[base + i] - mean) * inv * weight_at(i) + bias_at(i);
  }
}
