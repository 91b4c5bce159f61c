// KV selection: the SnapKV-style token scoring and selection at the end of prefill that every compressing policy
// uses (SparseMM, SnapKV, PyramidKV, AdaKV, random: they differ only in the per-head capacities), as the official
// SparseMM code does it (sparsemm_utils.py, SparseMM.calcul_attn_sore / update_kv):
//   row_stats   : per (head, window query) the softmax max and denominator over all keys it sees
//                 (window query w is prompt position prefix + w and sees keys 0..prefix + w: causal inside the window)
//   window_mean : per (KV head, prefix key) mean over the window queries and over the GQA group of the probabilities
//   pool        : avg_pool1d (count_include_pad: always / kernel) or max_pool1d, padding kernel / 2, stride 1
//   select_top  : per KV head (one dispatch each) the top-`capacity` prefix positions, ties to the lower position,
//                 written ascending, then the window positions prefix..tokens-1
// q [tokens, num_heads, HEAD_DIM], k [tokens, num_kv_heads, HEAD_DIM] (keys after RoPE), f32.

override HEAD_DIM: u32 = 64u;
const MASKED: f32 = -3.0e38;

// #params ScoreParams (fields: src/engine/kernel-params.ts)

// #params PoolParams (fields: src/engine/kernel-params.ts)

// #params SelectParams (fields: src/engine/kernel-params.ts)

@group(0) @binding(0) var<uniform> score_p: ScoreParams;
@group(0) @binding(0) var<uniform> pool_p: PoolParams;
@group(0) @binding(0) var<uniform> select_p: SelectParams;

// row_stats / window_mean
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;       // [num_heads, window, 2]: max, sum of exp
@group(0) @binding(3) var<storage, read> stats_in: array<f32>;
@group(0) @binding(4) var<storage, read_write> window_means: array<f32>; // [num_kv_heads, prefix]

fn score(query: u32, head: u32, key: u32) -> f32 {
  let group = score_p.num_heads / score_p.num_kv_heads;
  let qo = (query * score_p.num_heads + head) * HEAD_DIM;
  let ko = (key * score_p.num_kv_heads + head / group) * HEAD_DIM;
  var dot = 0.0;
  for (var d = 0u; d < HEAD_DIM; d++) {
    dot += q[qo + d] * k[ko + d];
  }
  return dot * score_p.scale;
}

var<workgroup> red_max: array<f32, 64>;
var<workgroup> red_sum: array<f32, 64>;

@compute @workgroup_size(64)
fn row_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x; // head * window + w
  if (row >= score_p.num_heads * score_p.window) {
    return;
  }
  let head = row / score_p.window;
  let query = score_p.tokens - score_p.window + row % score_p.window;
  var m = MASKED;
  var l = 0.0;
  for (var j = lid; j <= query; j += 64u) {
    let s = score(query, head, j);
    let m_new = max(m, s);
    l = l * exp(m - m_new) + exp(s - m_new);
    m = m_new;
  }
  red_max[lid] = m;
  red_sum[lid] = l;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      let m1 = red_max[lid];
      let m2 = red_max[lid + stride];
      let m_new = max(m1, m2);
      red_sum[lid] = red_sum[lid] * exp(m1 - m_new) + red_sum[lid + stride] * exp(m2 - m_new);
      red_max[lid] = m_new;
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    stats[row * 2u] = red_max[0];
    stats[row * 2u + 1u] = red_sum[0];
  }
}

@compute @workgroup_size(64)
fn window_mean(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let prefix = score_p.tokens - score_p.window;
  let e = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (e >= score_p.num_kv_heads * prefix) {
    return;
  }
  let g = e / prefix;
  let key = e % prefix;
  let group = score_p.num_heads / score_p.num_kv_heads;
  var acc = 0.0;
  for (var hh = 0u; hh < group; hh++) {
    let head = g * group + hh;
    var head_acc = 0.0;
    for (var w = 0u; w < score_p.window; w++) {
      let row = head * score_p.window + w;
      // A prefix key is visible to every window query, so no mask is needed here.
      head_acc += exp(score(prefix + w, head, key) - stats_in[row * 2u]) / stats_in[row * 2u + 1u];
    }
    acc += head_acc / f32(score_p.window);
  }
  window_means[e] = acc / f32(group);
}

// pool
@group(0) @binding(1) var<storage, read> means_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> pooled: array<f32>;

@compute @workgroup_size(64)
fn pool(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (e >= pool_p.num_kv_heads * pool_p.prefix) {
    return;
  }
  let g = e / pool_p.prefix;
  let j = i32(e % pool_p.prefix);
  let pad = i32(pool_p.kernel / 2u);
  var acc = 0.0;
  if (pool_p.use_max != 0u) {
    acc = MASKED;
  }
  for (var o = -pad; o <= pad; o++) {
    let i = j + o;
    if (i < 0 || i >= i32(pool_p.prefix)) {
      continue; // zero padding adds nothing to the average; -inf padding never wins the max
    }
    let value = means_in[g * pool_p.prefix + u32(i)];
    if (pool_p.use_max != 0u) {
      acc = max(acc, value);
    } else {
      acc += value;
    }
  }
  if (pool_p.use_max == 0u) {
    acc /= f32(pool_p.kernel); // count_include_pad=True (PyTorch's default)
  }
  pooled[e] = acc;
}

// select_top
@group(0) @binding(1) var<storage, read> scores_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> kept_positions: array<u32>;

const SELECT_WG: u32 = 256u;
var<workgroup> scan_buf: array<u32, SELECT_WG>;
var<workgroup> reduced: u32;

/** Maps f32 to u32 so that unsigned order is float order. */
fn order_key(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn head_key(j: u32) -> u32 {
  return order_key(scores_in[select_p.kv_head * select_p.prefix + j]);
}

/** Number of prefix keys >= t, the same value in every thread. */
fn count_at_least(t: u32, lid: u32) -> u32 {
  var c = 0u;
  for (var j = lid; j < select_p.prefix; j += SELECT_WG) {
    c += u32(head_key(j) >= t);
  }
  scan_buf[lid] = c;
  workgroupBarrier();
  for (var stride = SELECT_WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      scan_buf[lid] += scan_buf[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    reduced = scan_buf[0];
  }
  let total = workgroupUniformLoad(&reduced);
  return total;
}

/** Inclusive prefix sum over the workgroup; `reduced` receives the total. */
fn inclusive_scan(value: u32, lid: u32) -> u32 {
  workgroupBarrier();
  scan_buf[lid] = value;
  workgroupBarrier();
  for (var offset = 1u; offset < SELECT_WG; offset <<= 1u) {
    var add = 0u;
    if (lid >= offset) {
      add = scan_buf[lid - offset];
    }
    workgroupBarrier();
    scan_buf[lid] += add;
    workgroupBarrier();
  }
  let result = scan_buf[lid];
  if (lid == SELECT_WG - 1u) {
    reduced = result;
  }
  workgroupBarrier();
  return result;
}

@compute @workgroup_size(SELECT_WG)
fn select_top(@builtin(local_invocation_index) lid: u32) {
  let capacity = min(select_p.capacity, select_p.prefix);
  if (capacity > 0u) {
    // Radix select, MSB first: the largest threshold t with at least `capacity` keys >= t is the capacity-th largest key.
    var threshold = 0u;
    for (var bit = 31i; bit >= 0i; bit--) {
      let candidate = threshold | (1u << u32(bit));
      if (count_at_least(candidate, lid) >= capacity) {
        threshold = candidate;
      }
    }
    var above = 0u;
    if (threshold != 0xffffffffu) {
      above = count_at_least(threshold + 1u, lid);
    }
    // Keys equal to the threshold fill the remaining places, lowest positions first.
    let equal_needed = capacity - above;
    var written = 0u;
    var equal_seen = 0u;
    for (var base = 0u; base < select_p.prefix; base += SELECT_WG) {
      let j = base + lid;
      var key = 0u;
      if (j < select_p.prefix) {
        key = head_key(j);
      }
      let is_equal = j < select_p.prefix && key == threshold;
      let equal_rank = equal_seen + inclusive_scan(u32(is_equal), lid) - u32(is_equal);
      equal_seen += reduced;
      let keep = j < select_p.prefix && (key > threshold || (is_equal && equal_rank < equal_needed));
      let slot = written + inclusive_scan(u32(keep), lid) - u32(keep);
      written += reduced;
      if (keep) {
        kept_positions[select_p.out_start + slot] = j;
      }
    }
  }
  for (var i = lid; i < select_p.window; i += SELECT_WG) {
    kept_positions[select_p.out_start + capacity + i] = select_p.prefix + i;
  }
}
