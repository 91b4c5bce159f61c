// sin and cos of a RoPE angle, shared by shaders/rope.wgsl and the fused q/k/v GEMV (gemv.wgsl: gemv_qkv_rope), which
// compile it as a prelude (PipelineCache).

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
