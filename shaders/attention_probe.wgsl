// Attention probe for visual-head scoring and heatmaps: for one decode query per head, over the KV cache rows its
// KV head holds (slot index; on the full cache slot index == prompt position), the key with the largest attention
// weight (lowest index on ties; softmax is monotonic, so this is the largest score) and optionally the attention
// probabilities of slots row_start..row_start+row_length-1 (0 past the head's length).
// One workgroup per query head. q [num_heads, HEAD_DIM]; cache layout (f16 pairs) as in decode_attention.wgsl.

override HEAD_DIM: u32 = 64u;
const WG: u32 = 256u;
const MASKED: f32 = -3.0e38;
// One metadata record per (layer, KV head): META_FIELDS u32 (kvMetaLayout in src/engine/kv-cache.ts; a test checks both).
const META_FIELDS: u32 = 4u;
const META_SLOT_OFFSET: u32 = 0u;
const META_KEPT: u32 = 1u;

// #params Params (fields: src/engine/kernel-params.ts)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k_cache: array<u32>; // f16 pairs (kv_cache.wgsl)
@group(0) @binding(3) var<storage, read> cache_meta: array<u32>;
@group(0) @binding(4) var<storage, read_write> top1: array<u32>;
@group(0) @binding(5) var<storage, read_write> row: array<f32>;

var<workgroup> red_max: array<f32, WG>;
var<workgroup> red_sum: array<f32, WG>;
var<workgroup> red_best: array<f32, WG>;
var<workgroup> red_index: array<u32, WG>;

fn slot_score(head: u32, slot: u32) -> f32 {
  var dot = 0.0;
  for (var w = 0u; w < HEAD_DIM / 2u; w++) {
    let kd = unpack2x16float(k_cache[slot * (HEAD_DIM / 2u) + w]);
    dot += q[head * HEAD_DIM + 2u * w] * kd.x + q[head * HEAD_DIM + 2u * w + 1u] * kd.y;
  }
  return dot * p.scale;
}

struct HeadSlice {
  offset: u32,
  length: u32,
}

fn head_slice(head: u32) -> HeadSlice {
  let g = head / (p.num_heads / p.num_kv_heads);
  let m = p.meta_base + g * META_FIELDS;
  return HeadSlice(cache_meta[m + META_SLOT_OFFSET], cache_meta[m + META_KEPT] + p.appended);
}

/** Softmax max and denominator of this head's row, and its arg-max; results in red_*[0]. */
fn reduce_row(head: u32, lid: u32) {
  let slice = head_slice(head);
  var m = MASKED;
  var l = 0.0;
  var best = MASKED;
  var best_index = 0xffffffffu;
  for (var j = lid; j < slice.length; j += WG) {
    let s = slot_score(head, slice.offset + j);
    let m_new = max(m, s);
    l = l * exp(m - m_new) + exp(s - m_new);
    m = m_new;
    if (s > best) { // j increases, so the first (lowest) index wins ties within a thread
      best = s;
      best_index = j;
    }
  }
  red_max[lid] = m;
  red_sum[lid] = l;
  red_best[lid] = best;
  red_index[lid] = best_index;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      let m1 = red_max[lid];
      let m2 = red_max[lid + stride];
      let m_new = max(m1, m2);
      red_sum[lid] = red_sum[lid] * exp(m1 - m_new) + red_sum[lid + stride] * exp(m2 - m_new);
      red_max[lid] = m_new;
      let other_best = red_best[lid + stride];
      let other_index = red_index[lid + stride];
      if (other_best > red_best[lid] || (other_best == red_best[lid] && other_index < red_index[lid])) {
        red_best[lid] = other_best;
        red_index[lid] = other_index;
      }
    }
    workgroupBarrier();
  }
}

// Both entry points: the head's row reduced into red_* and its top-1 slot stored.
fn reduce_and_store_top1(head: u32, lid: u32) {
  reduce_row(head, lid);
  if (lid == 0u) {
    top1[head] = red_index[0];
  }
}

@compute @workgroup_size(WG)
fn probe_top1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let head = wid.x;
  if (head >= p.num_heads) {
    return;
  }
  reduce_and_store_top1(head, lid);
}

@compute @workgroup_size(WG)
fn probe_top1_row(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let head = wid.x;
  if (head >= p.num_heads) {
    return;
  }
  reduce_and_store_top1(head, lid);
  let m = red_max[0];
  let inv = 1.0 / red_sum[0];
  let slice = head_slice(head);
  for (var i = lid; i < p.row_length; i += WG) {
    let j = p.row_start + i;
    var prob = 0.0;
    if (j < slice.length) {
      prob = exp(slot_score(head, slice.offset + j) - m) * inv;
    }
    row[head * p.row_length + i] = prob;
  }
}
