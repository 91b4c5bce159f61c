// out[m, n] = sum_k x[m, k] * W[n, k] (+ bias[n]): x f32 [rows, K], W [N, K] (PyTorch's Linear layout) in one of the
// weight formats (the module is compiled with weights_<format>.wgsl, whose weight_pair_* functions read two
// consecutive weights of a row: bf16 two per u32, element 2i in the low half; q8 / q4 blocks of 32 with K % 32 == 0),
// bias packed bf16 [N], out f32 [rows, N]. Math in f32.
// gemm: tiled GEMM for prefill / vision (64x64 output tiles, 32-wide K slices in workgroup memory, 8x8 register
// blocks). Decode (a few rows) runs the GEMV family in gemv.wgsl instead.
// #params Params (fields: src/engine/kernel-params.ts)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// #include bf16.wgsl

fn bias_at(n: u32) -> f32 {
  if (p.has_bias == 0u) {
    return 0.0;
  }
  let pair = unpack_bf16x2(bias[n >> 1u]);
  return select(pair.x, pair.y, (n & 1u) == 1u);
}

// ------------------------------------------------------------------ GEMM
// 64 x 64 output tiles, TILE_K-wide K slices in workgroup memory, 64 invocations as 8 x 8, each owning an 8 x 8 register
// block (rows 8 ty.., cols 8 tx..). Both tiles are stored k-major as vec4 over m (resp. n), so the inner loop reads
// 4 vec4 (16 values) from workgroup memory for 64 multiply-adds: the ratio of arithmetic to loads is what bounds a
// GEMM, most of all under CPU emulation where every load is a per-lane gather. Weights are unpacked once per tile.
const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
// 32 (16 KiB of tiles, halving the barriers) where the device has the workgroup memory, else 16; set by ops/matmul.ts.
override TILE_K: u32 = 32u;
const GEMM_WORKGROUP: u32 = 64u;
var<workgroup> tile_x: array<vec4<f32>, TILE_K * 16u>; // [TILE_K][TILE_M / 4]
var<workgroup> tile_w: array<vec4<f32>, TILE_K * 16u>; // [TILE_K][TILE_N / 4]

fn x_at(row: u32, k: u32) -> f32 {
  if (row < p.rows && k < p.in_features) {
    return x[row * p.in_features + k];
  }
  return 0.0;
}

// Weights k and k + 1 (k even) of row n, zero outside the matrix.
fn weight_pair_at(n: u32, k: u32) -> vec2<f32> {
  if (n < p.out_features && k < p.in_features) {
    let word = weight[weight_pair_index(n, k, p.in_features)];
    let scale_word = weight[weight_pair_scale_index(p.out_features, n, k, p.in_features)];
    return weight_pair_values(word, scale_word, n, k, p.in_features);
  }
  return vec2<f32>(0.0, 0.0);
}

@compute @workgroup_size(GEMM_WORKGROUP)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row0 = wid.y * TILE_M;
  let col0 = wid.x * TILE_N;
  let tx = lid % 8u;
  let ty = lid / 8u;
  let k_total = p.in_features;
  var acc: array<vec4<f32>, 16>; // acc[2 i + h]: row 8 ty + i, cols 8 tx + 4 h .. + 3

  // Tile loads: consecutive lanes read consecutive k of the same rows (coalesced on a GPU).
  let load_k = lid % TILE_K;            // x: this lane's k within the slice
  let load_m = lid / TILE_K;            // x: first of its row quads, then every x_step-th
  let x_step = GEMM_WORKGROUP / TILE_K;
  let load_word = lid % (TILE_K / 2u);  // weight: this lane's packed word within the slice (k = 2 word, 2 word + 1)
  let load_n = lid / (TILE_K / 2u);     // weight: first of its column quads, then every w_step-th
  let w_step = GEMM_WORKGROUP / (TILE_K / 2u);
  for (var k0 = 0u; k0 < k_total; k0 += TILE_K) {
    let gk = k0 + load_k;
    for (var qd = load_m; qd < TILE_M / 4u; qd += x_step) {
      let r = row0 + 4u * qd;
      tile_x[load_k * (TILE_M / 4u) + qd] = vec4<f32>(x_at(r, gk), x_at(r + 1u, gk), x_at(r + 2u, gk), x_at(r + 3u, gk));
    }
    // K is even and k0 a multiple of TILE_K (even), so a word never straddles the end of a row.
    let gk2 = k0 + 2u * load_word;
    for (var qd = load_n; qd < TILE_N / 4u; qd += w_step) {
      let n = col0 + 4u * qd;
      let w0 = weight_pair_at(n, gk2);
      let w1 = weight_pair_at(n + 1u, gk2);
      let w2 = weight_pair_at(n + 2u, gk2);
      let w3 = weight_pair_at(n + 3u, gk2);
      tile_w[(2u * load_word) * (TILE_N / 4u) + qd] = vec4<f32>(w0.x, w1.x, w2.x, w3.x);
      tile_w[(2u * load_word + 1u) * (TILE_N / 4u) + qd] = vec4<f32>(w0.y, w1.y, w2.y, w3.y);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TILE_K; kk++) {
      let base = kk * (TILE_M / 4u);
      let xa = tile_x[base + 2u * ty];
      let xb = tile_x[base + 2u * ty + 1u];
      let wa = tile_w[base + 2u * tx];
      let wb = tile_w[base + 2u * tx + 1u];
      acc[0] += xa.x * wa;
      acc[1] += xa.x * wb;
      acc[2] += xa.y * wa;
      acc[3] += xa.y * wb;
      acc[4] += xa.z * wa;
      acc[5] += xa.z * wb;
      acc[6] += xa.w * wa;
      acc[7] += xa.w * wb;
      acc[8] += xb.x * wa;
      acc[9] += xb.x * wb;
      acc[10] += xb.y * wa;
      acc[11] += xb.y * wb;
      acc[12] += xb.z * wa;
      acc[13] += xb.z * wb;
      acc[14] += xb.w * wa;
      acc[15] += xb.w * wb;
    }
    workgroupBarrier();
  }

  for (var h = 0u; h < 2u; h++) {
    for (var c = 0u; c < 4u; c++) {
      let col = col0 + 8u * tx + 4u * h + c;
      if (col < p.out_features) {
        let b = bias_at(col);
        for (var i = 0u; i < 8u; i++) {
          let row = row0 + 8u * ty + i;
          if (row < p.rows) {
            out[row * p.out_features + col] = acc[2u * i + h][c] + b;
          }
        }
      }
    }
  }
}
