// Prefill attention (text decoder, causal) and bidirectional attention (vision tower), flash-style.
// q [queries, numHeads, HEAD_DIM], k/v [keys, numKvHeads, HEAD_DIM], out [queries, numHeads, HEAD_DIM], all f32.
// One workgroup computes BQ query rows of one head. It walks the keys in tiles of BK, keeping a running max `m`,
// running denominator `l` and an unnormalised output per row (online softmax), so no [T, T] score buffer exists.
// Causal: query i sees keys 0..i + query_offset (query_offset = keys - queries).
struct Params {
  queries: u32,
  keys: u32,
  num_heads: u32,
  num_kv_heads: u32,
  causal: u32,
  query_offset: u32,
  query_tiles: u32,
  scale: f32,
}

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
