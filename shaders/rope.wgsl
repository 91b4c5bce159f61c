// Llama RoPE in place, rotate_half layout: for i < D/2 the pair is (i, i + D/2).
// x is [tokens, heads, headDim] f32; positions is u32 [tokens]; inv_freq is f32 [headDim/2], computed on the
// CPU exactly as torch does (f32), because WGSL's pow may be several ulp off.
struct Params {
  tokens: u32,
  heads: u32,
  half_dim: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read> inv_freq: array<f32>;

override WORKGROUP_SIZE: u32 = 256u;

// pi/2 split in three (Cody-Waite): HALF_PI_A and HALF_PI_B have 8 significant bits, so k * them is exact in f32
// for k < 2^16 (angles up to ~100k radians: positions up to 100k), and the subtractions lose almost nothing.
const TWO_OVER_PI: f32 = 0.6366197466850281;
const HALF_PI_A: f32 = 1.5703125;
const HALF_PI_B: f32 = 0.000484466552734375;
const HALF_PI_C: f32 = -6.397578431460715e-7;

// sin and cos of the f32 angle to ~1e-7. WGSL's built-ins are only specified to 2^-11 on [-pi, pi] (SwiftShader is
// ~2e-4 off), and fast GPU versions degrade further for the thousands of radians long positions reach, so we reduce
// to [-pi/4, pi/4] ourselves and evaluate Taylor polynomials there (truncation error < 2e-9).
fn sin_cos(angle: f32) -> vec2<f32> {
  let k = round(angle * TWO_OVER_PI);
  let r = ((angle - k * HALF_PI_A) - k * HALF_PI_B) - k * HALF_PI_C;
  let r2 = r * r;
  let s = r * (1.0 + r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362880.0)))));
  let c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0 + r2 * (-1.0 / 3628800.0)))));
  // angle = k pi/2 + r: rotate (sin r, cos r) by the quadrant k mod 4.
  switch (u32(i32(k) & 3)) {
    case 0u: { return vec2<f32>(s, c); }
    case 1u: { return vec2<f32>(c, -s); }
    case 2u: { return vec2<f32>(-s, -c); }
    default: { return vec2<f32>(-c, s); }
  }
}

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
