// Elementwise activations in f32.
// #params Params (fields: src/engine/kernel-params.ts)

@group(0) @binding(0) var<uniform> p: Params;

override WORKGROUP_SIZE: u32 = 256u;

// ---- SwiGLU: out = silu(gate) * up (Llama MLP). ----
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> swiglu_out: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn swiglu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WORKGROUP_SIZE + lid;
  if (i >= p.count) {
    return;
  }
  let g = gate[i];
  // exp(-g) overflows to +inf for g < -88; g / inf is then -0, which is silu's limit, so no clamp is needed here.
  swiglu_out[i] = g / (1.0 + exp(-g)) * up[i];
}

// ---- gelu_pytorch_tanh (SigLIP MLP): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). ----
@group(0) @binding(1) var<storage, read> gelu_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> gelu_out: array<f32>;

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

@compute @workgroup_size(WORKGROUP_SIZE)
fn gelu_tanh(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WORKGROUP_SIZE + lid;
  if (i >= p.count) {
    return;
  }
  let x = gelu_in[i];
  // Some tanh implementations compute (e^2u - 1) / (e^2u + 1), which is inf/inf = NaN for |u| > ~44.
  // tanh(10) already rounds to 1 in f32, so clamping the argument to [-10, 10] changes nothing else.
  let u = clamp(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x), -10.0, 10.0);
  gelu_out[i] = 0.5 * x * (1.0 + tanh(u));
}
