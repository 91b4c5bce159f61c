// out[m, n] = sum_k x[m, k] * W[n, k] (+ bias[n]): x f32 [rows, K], W packed bf16 [N, K] (PyTorch's Linear layout,
// two bf16 per u32, element 2i in the low half), bias packed bf16 [N], out f32 [rows, N]. Math in f32.
// Three entry points:
//   gemm       - tiled GEMM for prefill / vision (64x64 output tiles, 16-wide K slices in workgroup memory).
//   gemv_vec4  - decode (a few rows): a team of 32 invocations per output feature streams that weight row with
//                16-byte loads (consecutive lanes read consecutive 16 bytes: coalesced), then a tree reduction.
//                Needs K % 8 == 0 (all SmolVLM dims are).
//   gemv_word  - the same with 4-byte loads, for any even K.
struct Params {
  rows: u32,
  in_features: u32,
  out_features: u32,
  has_bias: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
// 16-byte views of the same bindings for gemv_vec4 (each entry point uses one view only).
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight4: array<vec4<u32>>;

fn unpack_bf16x2(word: u32) -> vec2<f32> {
  return vec2<f32>(bitcast<f32>(word << 16u), bitcast<f32>(word & 0xffff0000u));
}

fn bias_at(n: u32) -> f32 {
  if (p.has_bias == 0u) {
    return 0.0;
  }
  let pair = unpack_bf16x2(bias[n >> 1u]);
  return select(pair.x, pair.y, (n & 1u) == 1u);
}

// ------------------------------------------------------------------ GEMM
const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_K: u32 = 16u;
var<workgroup> tile_x: array<f32, 1024>; // [TILE_M][TILE_K]
var<workgroup> tile_w: array<f32, 1024>; // [TILE_K][TILE_N], k-major so the inner loop reads consecutive n

// 256 invocations as 16 x 16; each computes a 4 x 4 block of outputs at rows ty + 16 i, cols tx + 16 j
// (strided, so that neighbouring lanes read neighbouring words of tile_w: no bank conflicts).
@compute @workgroup_size(256)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row0 = wid.y * TILE_M;
  let col0 = wid.x * TILE_N;
  let tx = lid % 16u;
  let ty = lid / 16u;
  let k_total = p.in_features;
  let words_per_row = k_total / 2u;
  var acc: array<vec4<f32>, 4>; // acc[i][j]: row ty + 16 i, col tx + 16 j

  for (var k0 = 0u; k0 < k_total; k0 += TILE_K) {
    // x tile: 64 x 16 values, 4 per invocation; consecutive lanes read consecutive k.
    for (var r = 0u; r < 4u; r++) {
      let idx = lid + 256u * r;
      let gr = row0 + idx / TILE_K;
      let gk = k0 + idx % TILE_K;
      var v = 0.0;
      if (gr < p.rows && gk < k_total) {
        v = x[gr * k_total + gk];
      }
      tile_x[idx] = v;
    }
    // weight tile: 64 rows x 8 packed words, 2 words per invocation; consecutive lanes read consecutive words.
    // K is even and k0 is a multiple of 16, so a word never straddles the end of a row.
    for (var r = 0u; r < 2u; r++) {
      let idx = lid + 256u * r;
      let nn = idx / 8u;
      let kw = idx % 8u;
      let gn = col0 + nn;
      let gk = k0 + 2u * kw;
      var pair = vec2<f32>(0.0, 0.0);
      if (gn < p.out_features && gk < k_total) {
        pair = unpack_bf16x2(weight[gn * words_per_row + gk / 2u]);
      }
      tile_w[(2u * kw) * TILE_N + nn] = pair.x;
      tile_w[(2u * kw + 1u) * TILE_N + nn] = pair.y;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TILE_K; kk++) {
      let w = vec4<f32>(
        tile_w[kk * TILE_N + tx],
        tile_w[kk * TILE_N + tx + 16u],
        tile_w[kk * TILE_N + tx + 32u],
        tile_w[kk * TILE_N + tx + 48u],
      );
      for (var i = 0u; i < 4u; i++) {
        acc[i] += tile_x[(ty + 16u * i) * TILE_K + kk] * w;
      }
    }
    workgroupBarrier();
  }

  for (var j = 0u; j < 4u; j++) {
    let col = col0 + tx + 16u * j;
    if (col < p.out_features) {
      let b = bias_at(col);
      for (var i = 0u; i < 4u; i++) {
        let row = row0 + ty + 16u * i;
        if (row < p.rows) {
          out[row * p.out_features + col] = acc[i][j] + b;
        }
      }
    }
  }
}

// ------------------------------------------------------------------ GEMV
// ROWS (1..GEMV_MAX_ROWS) is specialised per pipeline so that the per-row loops unroll and acc stays in registers.
override ROWS: u32 = 1u;
const GEMV_MAX_ROWS: u32 = 4u;
const TEAM: u32 = 32u;              // invocations per output feature
const GEMV_WORKGROUP: u32 = 256u;   // 8 output features per workgroup
const FEATURES_PER_WORKGROUP: u32 = GEMV_WORKGROUP / TEAM;
var<workgroup> gemv_partial: array<f32, 1024>; // [GEMV_MAX_ROWS][GEMV_WORKGROUP]

// Sums acc over each team of 32 lanes (tree in workgroup memory) and writes the team's outputs.
fn gemv_finish(acc: array<f32, GEMV_MAX_ROWS>, lid: u32, n: u32) {
  for (var m = 0u; m < ROWS; m++) {
    gemv_partial[m * GEMV_WORKGROUP + lid] = acc[m];
  }
  workgroupBarrier();
  let lane = lid % TEAM;
  for (var stride = TEAM / 2u; stride > 0u; stride >>= 1u) {
    if (lane < stride) {
      for (var m = 0u; m < ROWS; m++) {
        gemv_partial[m * GEMV_WORKGROUP + lid] += gemv_partial[m * GEMV_WORKGROUP + lid + stride];
      }
    }
    workgroupBarrier();
  }
  if (lane == 0u && n < p.out_features) {
    let b = bias_at(n);
    for (var m = 0u; m < ROWS; m++) {
      out[m * p.out_features + n] = gemv_partial[m * GEMV_WORKGROUP + lid] + b;
    }
  }
}

@compute @workgroup_size(GEMV_WORKGROUP)
fn gemv_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = (wid.x + wid.y * nwg.x) * FEATURES_PER_WORKGROUP + lid / TEAM;
  let lane = lid % TEAM;
  let chunks = p.in_features / 8u;  // 16-byte chunks (8 bf16) per weight row
  let x_stride = p.in_features / 4u; // vec4<f32> per x row
  var acc: array<f32, GEMV_MAX_ROWS>;
  if (n < p.out_features) {
    let w_row = n * chunks;
    for (var c = lane; c < chunks; c += TEAM) {
      let w = weight4[w_row + c];
      let w_lo = vec4<f32>(unpack_bf16x2(w.x), unpack_bf16x2(w.y));
      let w_hi = vec4<f32>(unpack_bf16x2(w.z), unpack_bf16x2(w.w));
      for (var m = 0u; m < ROWS; m++) {
        let xo = m * x_stride + 2u * c;
        acc[m] += dot(w_lo, x4[xo]) + dot(w_hi, x4[xo + 1u]);
      }
    }
  }
  gemv_finish(acc, lid, n);
}

@compute @workgroup_size(GEMV_WORKGROUP)
fn gemv_word(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = (wid.x + wid.y * nwg.x) * FEATURES_PER_WORKGROUP + lid / TEAM;
  let lane = lid % TEAM;
  let words = p.in_features / 2u;
  var acc: array<f32, GEMV_MAX_ROWS>;
  if (n < p.out_features) {
    let w_row = n * words;
    for (var c = lane; c < words; c += TEAM) {
      let w = unpack_bf16x2(weight[w_row + c]);
      for (var m = 0u; m < ROWS; m++) {
        let xo = m * p.in_features + 2u * c;
        acc[m] += w.x * x[xo] + w.y * x[xo + 1u];
      }
    }
  }
  gemv_finish(acc, lid, n);
}
