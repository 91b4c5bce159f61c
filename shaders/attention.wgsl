// Prefill attention (text decoder, causal) and bidirectional attention (vision tower), flash-style. Two entry points:
// `flash` (register-blocked, head dims 32 and 64: SmolVLM's) and `main` (any head dim up to 128), described below.
// q [queries, numHeads, HEAD_DIM], k/v [keys, numKvHeads, HEAD_DIM], out [queries, numHeads, HEAD_DIM], all f32.
// One workgroup computes BQ query rows of one head. It walks the keys in tiles of BK, keeping a running max `m`,
// running denominator `l` and an unnormalised output per row (online softmax), so no [T, T] score buffer exists.
// Causal: query i sees keys 0..i + query_offset (query_offset = keys - queries).
// #params Params (fields: src/engine/kernel-params.ts)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

override HEAD_DIM: u32 = 64u;
// Keys per tile; the wrapper picks it so that the tiles fit the device's workgroup memory.
override BK: u32 = 16u;

const BQ: u32 = 16u;          // query rows per workgroup
const ROW_THREADS: u32 = 8u;  // threads sharing one query row (each owns every 8th output dimension)
const WG: u32 = BQ * ROW_THREADS;
const MAX_DIMS_PER_THREAD: u32 = 16u; // HEAD_DIM <= ROW_THREADS * 16 = 128
// Masked scores are stored as this sentinel; they get probability 0 explicitly (never exp(sentinel - sentinel)).
const MASKED: f32 = -3.0e38;

var<workgroup> q_tile: array<f32, BQ * HEAD_DIM>;
var<workgroup> k_tile: array<f32, BK * HEAD_DIM>;
var<workgroup> v_tile: array<f32, BK * HEAD_DIM>;
var<workgroup> s_tile: array<f32, BQ * BK>;
var<workgroup> row_alpha: array<f32, BQ>;
var<workgroup> row_l: array<f32, BQ>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear_id = wid.x + wid.y * nwg.x;
  let head = linear_id / p.query_tiles;
  if (head >= p.num_heads) {
    return;
  }
  let q_start = (linear_id % p.query_tiles) * BQ;
  let kv_head = head / (p.num_heads / p.num_kv_heads);
  let row = lid / ROW_THREADS;
  let lane = lid % ROW_THREADS;
  let qi = q_start + row;

  // Q tile, pre-scaled by 1/sqrt(HEAD_DIM).
  for (var e = lid; e < BQ * HEAD_DIM; e += WG) {
    let r = e / HEAD_DIM;
    let d = e % HEAD_DIM;
    let qr = q_start + r;
    var value = 0.0;
    if (qr < p.queries) {
      value = q[(qr * p.num_heads + head) * HEAD_DIM + d] * p.scale;
    }
    q_tile[e] = value;
  }

  // Keys past the last visible one of this tile's last query are never loaded.
  var key_end = p.keys;
  if (p.causal != 0u) {
    let last_query = min(q_start + BQ, p.queries) - 1u;
    key_end = min(p.keys, last_query + p.query_offset + 1u);
  }

  var acc: array<f32, MAX_DIMS_PER_THREAD>;
  var m_run = MASKED; // used by the lane-0 thread of each row only
  var l_run = 0.0;

  for (var k0 = 0u; k0 < key_end; k0 += BK) {
    for (var e = lid; e < BK * HEAD_DIM; e += WG) {
      let r = e / HEAD_DIM;
      let d = e % HEAD_DIM;
      let kj = k0 + r;
      var kv = 0.0;
      var vv = 0.0;
      if (kj < p.keys) {
        let src = (kj * p.num_kv_heads + kv_head) * HEAD_DIM + d;
        kv = k[src];
        vv = v[src];
      }
      k_tile[e] = kv;
      v_tile[e] = vv;
    }
    workgroupBarrier();

    // Scores: each thread of a row computes every ROW_THREADS-th key of the tile.
    for (var c = lane; c < BK; c += ROW_THREADS) {
      let kj = k0 + c;
      var visible = kj < p.keys && qi < p.queries;
      if (p.causal != 0u) {
        visible = visible && kj <= qi + p.query_offset;
      }
      var s = MASKED;
      if (visible) {
        var dot = 0.0;
        for (var d = 0u; d < HEAD_DIM; d++) {
          dot += q_tile[row * HEAD_DIM + d] * k_tile[c * HEAD_DIM + d];
        }
        s = dot;
      }
      s_tile[row * BK + c] = s;
    }
    workgroupBarrier();

    // Online-softmax update, one thread per row: scores become probabilities relative to the new running max.
    if (lane == 0u) {
      var tile_max = MASKED;
      for (var c = 0u; c < BK; c++) {
        tile_max = max(tile_max, s_tile[row * BK + c]);
      }
      let m_new = max(m_run, tile_max);
      let alpha = exp(m_run - m_new);
      var sum = 0.0;
      for (var c = 0u; c < BK; c++) {
        let s = s_tile[row * BK + c];
        var prob = 0.0;
        if (s > MASKED) {
          prob = exp(s - m_new);
        }
        s_tile[row * BK + c] = prob;
        sum += prob;
      }
      l_run = l_run * alpha + sum;
      m_run = m_new;
      row_alpha[row] = alpha;
    }
    workgroupBarrier();

    let alpha = row_alpha[row];
    for (var j = 0u; j < MAX_DIMS_PER_THREAD; j++) {
      let d = lane + j * ROW_THREADS;
      if (d < HEAD_DIM) {
        var sum = acc[j] * alpha;
        for (var c = 0u; c < BK; c++) {
          sum += s_tile[row * BK + c] * v_tile[c * HEAD_DIM + d];
        }
        acc[j] = sum;
      }
    }
    // The next tile overwrites k/v/s tiles.
    workgroupBarrier();
  }

  if (lane == 0u) {
    row_l[row] = l_run;
  }
  workgroupBarrier();

  if (qi < p.queries) {
    let l = row_l[row];
    let inv = select(0.0, 1.0 / l, l > 0.0);
    for (var j = 0u; j < MAX_DIMS_PER_THREAD; j++) {
      let d = lane + j * ROW_THREADS;
      if (d < HEAD_DIM) {
        out[(qi * p.num_heads + head) * HEAD_DIM + d] = acc[j] * inv;
      }
    }
  }
}

// ------------------------------------------------------------------ flash: register-blocked variant
// For head dims 32 and 64 (both of SmolVLM's towers). 64 invocations per workgroup, 32 query rows, 32-key tiles.
// Each key tile takes four phases between barriers:
//   1. K tile -> workgroup memory.
//   2. Scores: invocation (tq, tk) computes a 4 x 4 block (queries 4 tq.., keys 4 tk..) reading q straight from the
//      storage buffer (cached; this leaves the workgroup memory to K/V) and K from the tile: 8 loads per 16
//      multiply-adds, where the one-row-per-thread main kernel above needs 2 loads per multiply-add.
//   3. Online softmax by one invocation per query row while the other 32 load the V tile over the K tile.
//   4. P V: invocation (tq, td) accumulates 4 query rows x HEAD_DIM / 8 dims in registers.
const FQ: u32 = 32u;   // query rows per workgroup
const FK: u32 = 32u;   // keys per tile
const FLASH_WG: u32 = 64u;
override FLASH_HALVES: u32 = HEAD_DIM / 32u; // vec4 groups of output dims per invocation and query row (1 or 2)

var<workgroup> kv_tile: array<f32, FK * HEAD_DIM>; // K, then V, of the current key tile: [key][dim]
var<workgroup> p_tile: array<f32, FK * FQ>;        // scores, then probabilities: [key][query]
var<workgroup> flash_alpha: array<f32, FQ>;
var<workgroup> flash_l: array<f32, FQ>;

fn load_kv_tile(source: u32, k0: u32, kv_head: u32, first: u32, stride: u32) {
  for (var e = first; e < FK * HEAD_DIM; e += stride) {
    let kj = k0 + e / HEAD_DIM;
    var value = 0.0;
    if (kj < p.keys) {
      let src = (kj * p.num_kv_heads + kv_head) * HEAD_DIM + e % HEAD_DIM;
      if (source == 0u) {
        value = k[src];
      } else {
        value = v[src];
      }
    }
    kv_tile[e] = value;
  }
}

@compute @workgroup_size(FLASH_WG)
fn flash(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear_id = wid.x + wid.y * nwg.x;
  let head = linear_id / p.query_tiles;
  if (head >= p.num_heads) {
    return;
  }
  let q_start = (linear_id % p.query_tiles) * FQ;
  let kv_head = head / (p.num_heads / p.num_kv_heads);
  let tq = lid / 8u;
  let t8 = lid % 8u; // tk in phase 2, td in phase 4
  // Rows past the prompt read the last row instead (in bounds); their scores are masked and their outputs dropped.
  var q_base: array<u32, 4>;
  for (var i = 0u; i < 4u; i++) {
    q_base[i] = (min(q_start + 4u * tq + i, p.queries - 1u) * p.num_heads + head) * HEAD_DIM;
  }

  var key_end = p.keys;
  if (p.causal != 0u) {
    let last_query = min(q_start + FQ, p.queries) - 1u;
    key_end = min(p.keys, last_query + p.query_offset + 1u);
  }

  var acc: array<vec4<f32>, 8>; // acc[2 i + h]: query row 4 tq + i, dims 4 FLASH_HALVES t8 + 4 h ..
  var m_run = MASKED; // softmax state of row lid (lid < FQ)
  var l_run = 0.0;

  for (var k0 = 0u; k0 < key_end; k0 += FK) {
    load_kv_tile(0u, k0, kv_head, lid, FLASH_WG);
    workgroupBarrier();

    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    let kb = 4u * t8 * HEAD_DIM;
    for (var d = 0u; d < HEAD_DIM; d++) {
      let kv4 = vec4<f32>(kv_tile[kb + d], kv_tile[kb + HEAD_DIM + d], kv_tile[kb + 2u * HEAD_DIM + d], kv_tile[kb + 3u * HEAD_DIM + d]);
      s0 += q[q_base[0] + d] * kv4;
      s1 += q[q_base[1] + d] * kv4;
      s2 += q[q_base[2] + d] * kv4;
      s3 += q[q_base[3] + d] * kv4;
    }
    var s_rows = array<vec4<f32>, 4>(s0, s1, s2, s3);
    for (var i = 0u; i < 4u; i++) {
      let qi = q_start + 4u * tq + i;
      for (var j = 0u; j < 4u; j++) {
        let kj = k0 + 4u * t8 + j;
        var visible = kj < p.keys && qi < p.queries;
        if (p.causal != 0u) {
          visible = visible && kj <= qi + p.query_offset;
        }
        p_tile[(4u * t8 + j) * FQ + 4u * tq + i] = select(MASKED, s_rows[i][j] * p.scale, visible);
      }
    }
    workgroupBarrier();

    if (lid < FQ) {
      var tile_max = MASKED;
      for (var c = 0u; c < FK; c++) {
        tile_max = max(tile_max, p_tile[c * FQ + lid]);
      }
      let m_new = max(m_run, tile_max);
      let alpha = exp(m_run - m_new);
      var sum = 0.0;
      for (var c = 0u; c < FK; c++) {
        let s = p_tile[c * FQ + lid];
        var prob = 0.0;
        if (s > MASKED) {
          prob = exp(s - m_new);
        }
        p_tile[c * FQ + lid] = prob;
        sum += prob;
      }
      l_run = l_run * alpha + sum;
      m_run = m_new;
      flash_alpha[lid] = alpha;
    } else {
      load_kv_tile(1u, k0, kv_head, lid - FQ, FLASH_WG - FQ);
    }
    workgroupBarrier();

    let alpha = vec4<f32>(flash_alpha[4u * tq], flash_alpha[4u * tq + 1u], flash_alpha[4u * tq + 2u], flash_alpha[4u * tq + 3u]);
    let db = 4u * FLASH_HALVES * t8;
    for (var h = 0u; h < FLASH_HALVES; h++) {
      acc[h] *= alpha.x;
      acc[2u + h] *= alpha.y;
      acc[4u + h] *= alpha.z;
      acc[6u + h] *= alpha.w;
    }
    for (var c = 0u; c < FK; c++) {
      let pb = c * FQ + 4u * tq;
      let pr = vec4<f32>(p_tile[pb], p_tile[pb + 1u], p_tile[pb + 2u], p_tile[pb + 3u]);
      for (var h = 0u; h < FLASH_HALVES; h++) {
        let vb = c * HEAD_DIM + db + 4u * h;
        let vv = vec4<f32>(kv_tile[vb], kv_tile[vb + 1u], kv_tile[vb + 2u], kv_tile[vb + 3u]);
        acc[h] += pr.x * vv;
        acc[2u + h] += pr.y * vv;
        acc[4u + h] += pr.z * vv;
        acc[6u + h] += pr.w * vv;
      }
    }
    // The next tile overwrites kv_tile and p_tile.
    workgroupBarrier();
  }

  if (lid < FQ) {
    flash_l[lid] = l_run;
  }
  workgroupBarrier();

  let db = 4u * FLASH_HALVES * t8;
  for (var i = 0u; i < 4u; i++) {
    let row = 4u * tq + i;
    let qi = q_start + row;
    if (qi < p.queries) {
      let l = flash_l[row];
      let inv = select(0.0, 1.0 / l, l > 0.0);
      for (var h = 0u; h < FLASH_HALVES; h++) {
        let o = (qi * p.num_heads + head) * HEAD_DIM + db + 4u * h;
        let value = acc[2u * i + h] * inv;
        out[o] = value.x;
        out[o + 1u] = value.y;
        out[o + 2u] = value.z;
        out[o + 3u] = value.w;
      }
    }
  }
}
