// The decode GEMV family: out[m, n] = epilogue(sum_k xn[m, k] * W[n, k] + bias[n]) for a few rows m (decode: one).
// x f32 [ROWS, K]; W [N, K] (PyTorch's Linear layout) in one of the weight formats (bf16, q8, q4: the module is
// compiled with weights_<format>.wgsl, whose weight_chunk_* functions read an 8-weight chunk; K % 32 == 0 for q8 /
// q4); bias packed bf16 [N]; out f32 [ROWS, N]. Math in f32. K % 8 == 0 (one chunk per load; every SmolVLM dim is).
//
// A team of TEAM lanes computes OUTS consecutive output features: lane j streams 16-byte chunks j, j + TEAM, ... of
// each of those weight rows, so the lanes of a team read consecutive 16 bytes (coalesced), and each x load serves OUTS
// rows (on SwiftShader, where a lane's loop overhead is the cost, 8 rows per team run ~2.5x faster than 1). Then
// team_sum adds the lanes' partial sums. team_sum
// is not defined here: the module is compiled with one of two preludes, chosen once per device (ops/gemv.ts):
//   gemv_team_subgroup.wgsl  - subgroupShuffleXor butterflies (adapters with `subgroups`; TEAM <= subgroup size)
//   gemv_team_workgroup.wgsl - a tree in workgroup memory with barriers (every adapter)
// followed by rope_angle.wgsl (sin_cos, for gemv_qkv_rope) and the weight format's file (per weight tensor).
// Teams past the last output read row 0 and drop the result instead of returning early: team_sum must be reached by
// every lane of a team (subgroup operations and barriers need uniform control flow).
//
// Fusions (override constants, so that each pipeline carries only what it uses):
//   NORM        xn = RMSNorm(x) * norm_weight: each team also sums x^2 over the row it streams (the same 16-byte x
//               loads), so the norm costs no dispatch and no extra pass over x.
//   ACCUMULATE  out += result (the residual add of o_proj / down_proj), instead of out = result.
// Entry points: gemv (one weight), gemv_swiglu (gate and up rows of the same feature: out = silu(gate.xn) * (up.xn)),
// gemv_qkv_rope (a decode layer's q, k and v projections with RoPE and the KV-cache append, below).
// #params Params (fields: src/engine/kernel-params.ts)

override ROWS: u32 = 1u;      // 1..MAX_ROWS, specialised so the per-row loops unroll and acc stays in registers
override TEAM: u32 = 32u;     // lanes per output feature: a power of two, 2..WORKGROUP
override NORM: bool = false;
override ACCUMULATE: bool = false;
override OUTS: u32 = 4u;      // output features per team, 1..MAX_OUTS
const MAX_ROWS: u32 = 4u;
const MAX_OUTS: u32 = 8u;
const WORKGROUP: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight: array<WeightChunk>;
@group(0) @binding(3) var<storage, read> bias: array<u32>;
@group(0) @binding(4) var<storage, read> norm_weight: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
// gemv_swiglu: the up projection in place of bias (no bias there).
@group(0) @binding(3) var<storage, read> weight_up: array<WeightChunk>;

// #include bf16.wgsl

// Chunk c (weights 8c .. 8c + 7) of row n of a weight binding with `rows` rows, in f32: one accessor per binding
// (WGSL passes no storage pointers), the format's functions do the rest.
fn weight_at(rows: u32, n: u32, c: u32, chunks: u32) -> array<vec4<f32>, 2> {
  return weight_chunk_values(weight[weight_chunk_index(n, c, chunks)], weight[weight_scale_index(rows, n, c, chunks)], n, c, chunks);
}

fn weight_up_at(rows: u32, n: u32, c: u32, chunks: u32) -> array<vec4<f32>, 2> {
  return weight_chunk_values(weight_up[weight_chunk_index(n, c, chunks)], weight_up[weight_scale_index(rows, n, c, chunks)], n, c, chunks);
}

fn bias_at(n: u32) -> f32 {
  if (p.has_bias == 0u) {
    return 0.0;
  }
  let pair = unpack_bf16x2(bias[n >> 1u]);
  return select(pair.x, pair.y, (n & 1u) == 1u);
}

// x chunk c of one row, times the RMSNorm weight with NORM: sum_k w_k (x_k g_k) * inv_rms.
fn normed_x(v: vec4<f32>, g: vec4<f32>) -> vec4<f32> {
  if (NORM) {
    return v * g;
  }
  return v;
}

// One 8-value chunk of x starting at vec4 `at`, times the RMSNorm weight chunk g with NORM, and its sum of squares
// (for inv_rms; unused, so compiled away, without NORM).
struct XChunk {
  lo: vec4<f32>,
  hi: vec4<f32>,
  sumsq: f32,
}

fn x_chunk(at: u32, g: array<vec4<f32>, 2>) -> XChunk {
  let raw_lo = x[at];
  let raw_hi = x[at + 1u];
  return XChunk(normed_x(raw_lo, g[0]), normed_x(raw_hi, g[1]), dot(raw_lo, raw_lo) + dot(raw_hi, raw_hi));
}

fn norm_chunk(c: u32) -> array<vec4<f32>, 2> {
  if (NORM) {
    return unpack_bf16x8(norm_weight[c]);
  }
  return array<vec4<f32>, 2>(vec4<f32>(1.0), vec4<f32>(1.0));
}

// 1 / rms of an x row of `features` values from the team's partial sum of squares (1 without NORM).
fn inv_rms(sumsq: f32, lid: u32, features: u32, eps: f32) -> f32 {
  if (!NORM) {
    return 1.0;
  }
  return inverseSqrt(team_sum(sumsq, lid) / f32(features) + eps);
}

fn store(m: u32, n: u32, value: f32) {
  let o = m * p.out_features + n;
  if (ACCUMULATE) {
    out[o] += value;
  } else {
    out[o] = value;
  }
}

// The weight row of each of this lane's team's OUTS output features; features past the last one read the last row and
// drop the result.
fn team_rows(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> array<u32, MAX_OUTS> {
  let n0 = team_first(wid, nwg, lid);
  var rows: array<u32, MAX_OUTS>;
  for (var r = 0u; r < OUTS; r++) {
    rows[r] = min(n0 + r, p.out_features - 1u);
  }
  return rows;
}

fn team_first(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return ((wid.x + wid.y * nwg.x) * (WORKGROUP / TEAM) + lid / TEAM) * OUTS;
}

@compute @workgroup_size(WORKGROUP)
fn gemv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n0 = team_first(wid, nwg, lid);
  let lane = lid % TEAM;
  let chunks = p.in_features / 8u;   // 16-byte chunks (8 bf16) per weight row
  let x_stride = p.in_features / 4u; // vec4<f32> per x row
  let rows = team_rows(wid, nwg, lid);
  var acc: array<f32, MAX_OUTS * MAX_ROWS>; // [r * MAX_ROWS + m]
  var sumsq: array<f32, MAX_ROWS>;
  for (var c = lane; c < chunks; c += TEAM) {
    let g = norm_chunk(c);
    for (var m = 0u; m < ROWS; m++) {
      let xc = x_chunk(m * x_stride + 2u * c, g);
      if (NORM) {
        sumsq[m] += xc.sumsq;
      }
      let lo = xc.lo;
      let hi = xc.hi;
      for (var r = 0u; r < OUTS; r++) {
        let w = weight_at(p.out_features, rows[r], c, chunks);
        acc[r * MAX_ROWS + m] += dot(w[0], lo) + dot(w[1], hi);
      }
    }
  }
  for (var m = 0u; m < ROWS; m++) {
    let scale = inv_rms(sumsq[m], lid, p.in_features, p.eps);
    for (var r = 0u; r < OUTS; r++) {
      let total = team_sum(acc[r * MAX_ROWS + m], lid) * scale;
      let n = n0 + r;
      if (lane == 0u && n < p.out_features) {
        store(m, n, total + bias_at(n));
      }
    }
  }
}

fn silu(v: f32) -> f32 {
  return v / (1.0 + exp(-v));
}

@compute @workgroup_size(WORKGROUP)
fn gemv_swiglu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n0 = team_first(wid, nwg, lid);
  let lane = lid % TEAM;
  let chunks = p.in_features / 8u;
  let x_stride = p.in_features / 4u;
  let rows = team_rows(wid, nwg, lid);
  var acc_gate: array<f32, MAX_OUTS * MAX_ROWS>;
  var acc_up: array<f32, MAX_OUTS * MAX_ROWS>;
  var sumsq: array<f32, MAX_ROWS>;
  for (var c = lane; c < chunks; c += TEAM) {
    let g = norm_chunk(c);
    for (var m = 0u; m < ROWS; m++) {
      let xc = x_chunk(m * x_stride + 2u * c, g);
      if (NORM) {
        sumsq[m] += xc.sumsq;
      }
      let lo = xc.lo;
      let hi = xc.hi;
      for (var r = 0u; r < OUTS; r++) {
        let wg = weight_at(p.out_features, rows[r], c, chunks);
        let wu = weight_up_at(p.out_features, rows[r], c, chunks);
        acc_gate[r * MAX_ROWS + m] += dot(wg[0], lo) + dot(wg[1], hi);
        acc_up[r * MAX_ROWS + m] += dot(wu[0], lo) + dot(wu[1], hi);
      }
    }
  }
  for (var m = 0u; m < ROWS; m++) {
    let scale = inv_rms(sumsq[m], lid, p.in_features, p.eps);
    for (var r = 0u; r < OUTS; r++) {
      let gate = team_sum(acc_gate[r * MAX_ROWS + m], lid) * scale;
      let up = team_sum(acc_up[r * MAX_ROWS + m], lid) * scale;
      let n = n0 + r;
      if (lane == 0u && n < p.out_features) {
        store(m, n, silu(gate) * up);
      }
    }
  }
}

// ------------------------------------------------------------------ gemv_qkv_rope
// One decode token's attention inputs in one dispatch: xn = RMSNorm(x) (NORM), then for the num_heads query heads and
// the num_kv_heads key and value heads (one output space: q heads, then k heads, then v heads, HEAD_DIM rows each)
// the GEMV rows; RoPE (rotate_half: dims i and i + HEAD_DIM/2, angle f32(position) * inv_freq[i], as shaders/rope.wgsl)
// on q and k; q goes to `out` f32 [num_heads * HEAD_DIM], k and v are packed to f16 (pack2x16float, dims 2w and 2w + 1
// in word w) into row cache_row[g] of the layer's ragged cache (the layout kv_cache.wgsl:append_token writes).
// A team computes PAIRS consecutive dims i of one head together with their partners i + HEAD_DIM/2, so it holds both
// halves RoPE mixes and whole f16 words: PAIRS is even and divides HEAD_DIM/2 (ops/gemv.ts checks), hence a team never
// straddles two heads. Each dim's dot product is summed exactly as gemv sums it.
// #params QkvParams (fields: src/engine/kernel-params.ts)

override HEAD_DIM: u32 = 64u;
override PAIRS: u32 = 4u;
const MAX_PAIRS: u32 = 4u;

@group(0) @binding(0) var<uniform> qp: QkvParams;
@group(0) @binding(3) var<storage, read> weight_k: array<WeightChunk>;
@group(0) @binding(6) var<storage, read> weight_v: array<WeightChunk>;
@group(0) @binding(7) var<storage, read_write> k_cache: array<u32>;
@group(0) @binding(8) var<storage, read_write> v_cache: array<u32>;

// Chunk c of row n of projection `proj` (0 q, 1 k, 2 v; `rows` rows); proj is the same for every lane of a team.
fn qkv_weight(proj: u32, rows: u32, n: u32, c: u32, chunks: u32) -> array<vec4<f32>, 2> {
  if (proj == 0u) {
    return weight_at(rows, n, c, chunks);
  }
  let at = weight_chunk_index(n, c, chunks);
  let scale_at = weight_scale_index(rows, n, c, chunks);
  if (proj == 1u) {
    return weight_chunk_values(weight_k[at], weight_k[scale_at], n, c, chunks);
  }
  return weight_chunk_values(weight_v[at], weight_v[scale_at], n, c, chunks);
}

@compute @workgroup_size(WORKGROUP)
fn gemv_qkv_rope(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let half = HEAD_DIM / 2u;
  let lane = lid % TEAM;
  let chunks = qp.in_features / 8u;
  let total = (qp.num_heads + 2u * qp.num_kv_heads) * half; // (i, i + half) pairs over all heads
  let team = (wid.x + wid.y * nwg.x) * (WORKGROUP / TEAM) + lid / TEAM;
  // Teams past the end redo the last pairs and drop them (team_sum must be reached by every lane).
  let valid = team * PAIRS < total;
  let j0 = min(team * PAIRS, total - PAIRS);
  let head = j0 / half;
  let i0 = j0 % half;
  var proj = 0u;
  var h = head;
  if (head >= qp.num_heads + qp.num_kv_heads) {
    proj = 2u;
    h = head - qp.num_heads - qp.num_kv_heads;
  } else if (head >= qp.num_heads) {
    proj = 1u;
    h = head - qp.num_heads;
  }
  let row0 = h * HEAD_DIM + i0; // rows row0 + r and row0 + half + r of the projection
  let proj_rows = select(qp.num_kv_heads, qp.num_heads, proj == 0u) * HEAD_DIM;
  var acc_lo: array<f32, MAX_PAIRS>;
  var acc_hi: array<f32, MAX_PAIRS>;
  var sumsq = 0.0;
  for (var c = lane; c < chunks; c += TEAM) {
    let g = norm_chunk(c);
    let xc = x_chunk(2u * c, g);
    if (NORM) {
      sumsq += xc.sumsq;
    }
    let lo = xc.lo;
    let hi = xc.hi;
    for (var r = 0u; r < PAIRS; r++) {
      let wa = qkv_weight(proj, proj_rows, row0 + r, c, chunks);
      let wb = qkv_weight(proj, proj_rows, row0 + half + r, c, chunks);
      acc_lo[r] += dot(wa[0], lo) + dot(wa[1], hi);
      acc_hi[r] += dot(wb[0], lo) + dot(wb[1], hi);
    }
  }
  let scale = inv_rms(sumsq, lid, qp.in_features, qp.eps);
  var a: array<f32, MAX_PAIRS>;
  var b: array<f32, MAX_PAIRS>;
  for (var r = 0u; r < PAIRS; r++) {
    a[r] = team_sum(acc_lo[r], lid) * scale;
    b[r] = team_sum(acc_hi[r], lid) * scale;
    if (proj < 2u) {
      let i = i0 + r;
      let sc = sin_cos(f32(qp.position) * qp.inv_freq[i / 4u][i % 4u]);
      let rotated_a = a[r] * sc.y - b[r] * sc.x;
      let rotated_b = b[r] * sc.y + a[r] * sc.x;
      a[r] = rotated_a;
      b[r] = rotated_b;
    }
  }
  if (lane != 0u || !valid) {
    return;
  }
  if (proj == 0u) {
    for (var r = 0u; r < PAIRS; r++) {
      out[row0 + r] = a[r];
      out[row0 + half + r] = b[r];
    }
    return;
  }
  let base = qp.cache_row[h / 4u][h % 4u] * half; // u32 words per cache row: HEAD_DIM / 2
  for (var r = 0u; r < PAIRS; r += 2u) {
    let word_lo = base + (i0 + r) / 2u;
    let word_hi = base + (half + i0 + r) / 2u;
    let packed_lo = pack2x16float(vec2<f32>(a[r], a[r + 1u]));
    let packed_hi = pack2x16float(vec2<f32>(b[r], b[r + 1u]));
    if (proj == 1u) {
      k_cache[word_lo] = packed_lo;
      k_cache[word_hi] = packed_hi;
    } else {
      v_cache[word_lo] = packed_lo;
      v_cache[word_hi] = packed_hi;
    }
  }
}
