// Token selection from f32 logits [vocab], one workgroup of 256 invocations (vocab up to ~100k: each invocation
// scans vocab / 256 values per pass, which is cheap next to a decode step).
//   argmax       - greedy; the lowest index wins ties (as torch.argmax and our CPU reference).
//   sample_top_p - temperature softmax, nucleus (top-p) cut, then inverse-CDF sampling with a uniform from the CPU.
//
// Top-p rule (the CPU reference implements the same): rank tokens by probability, higher first, lower index first
// among equals; keep a token when the probability mass ranked before it is < top_p (so at least one is kept).
// Then u * (kept mass) is located in the running sum of kept probabilities in vocabulary order.
// On the GPU, the smallest kept probability c is found by a binary search over f32 bit patterns (probabilities are
// non-negative, so their bits order like their values): c is the smallest value with mass(p > c) < top_p.
// All tokens with p > c are kept, plus the first k (by index) of the tokens with p == c.
// Probabilities are handled unnormalised: e_i = exp((l_i - max) / T), masses compared against top_p * sum(e).
//
// Both kernels write out[0] = the token and out[1] = 1 when any logit is NaN or +-Inf (else 0), found in the same scan,
// so that a corrupt model is caught from the token's own 8-byte readback (the token is then meaningless).
// The test is on the bit pattern (all exponent bits set): WGSL lets a compiler assume floats are finite, so
// comparisons such as v != v may be folded away.
// Compiled after shaders/logit_reductions.wgsl (WORKGROUP_SIZE, red_f / red_u, sum_all, count_all, argmax_reduce).
// #params Params (fields: src/engine/kernel-params.ts)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

const ONE_BITS: u32 = 0x3f800000u; // bits of 1.0, the largest e_i

var<workgroup> chosen_chunk: u32;
var<workgroup> chosen_prefix: f32;
var<workgroup> sampled_target: f32;
var<workgroup> non_finite: atomic<u32>; // zero-initialised, like all workgroup memory

fn is_non_finite(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u;
}

// ------------------------------------------------------------------ argmax
@compute @workgroup_size(WORKGROUP_SIZE)
fn argmax(@builtin(local_invocation_index) lid: u32) {
  var best_value = LOWEST_F32;
  var best_index = NO_INDEX;
  // Ascending strided scan with a strict '>' keeps each invocation's first maximum.
  var bad = false;
  for (var i = lid; i < p.vocab; i += WORKGROUP_SIZE) {
    let v = logits[i];
    bad = bad || is_non_finite(v);
    if (best_index == NO_INDEX || v > best_value) {
      best_value = v;
      best_index = i;
    }
  }
  if (bad) {
    atomicOr(&non_finite, 1u);
  }
  let best = argmax_reduce(best_value, best_index, lid);
  if (lid == 0u) {
    out[0] = select(best, 0u, best == NO_INDEX);
    // Every invocation's atomicOr came before argmax_reduce's barriers.
    out[1] = atomicLoad(&non_finite);
  }
}

// ------------------------------------------------------------------ top-p sampling
fn max_all(value: f32, lid: u32) -> f32 {
  red_f[lid] = value;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      red_f[lid] = max(red_f[lid], red_f[lid + stride]);
    }
    workgroupBarrier();
  }
  return workgroupUniformLoad(&red_f[0]);
}

fn unnormalised_prob(i: u32, max_logit: f32) -> f32 {
  return exp((logits[i] - max_logit) / p.temperature);
}

// Sum of e_i over the tokens whose e_i has bits > threshold_bits.
fn mass_above(threshold_bits: u32, max_logit: f32, lid: u32) -> f32 {
  var mass = 0.0;
  for (var i = lid; i < p.vocab; i += WORKGROUP_SIZE) {
    let e = unnormalised_prob(i, max_logit);
    if (bitcast<u32>(e) > threshold_bits) {
      mass += e;
    }
  }
  return sum_all(mass, lid);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn sample_top_p(@builtin(local_invocation_index) lid: u32) {
  var local_max = LOWEST_F32;
  var bad = false;
  for (var i = lid; i < p.vocab; i += WORKGROUP_SIZE) {
    let v = logits[i];
    bad = bad || is_non_finite(v);
    local_max = max(local_max, v);
  }
  if (bad) {
    atomicOr(&non_finite, 1u);
  }
  let max_logit = max_all(local_max, lid);
  let total = mass_above(0u, max_logit, lid) ; // e_i > +0: zero terms do not change the sum
  let nucleus_mass = p.top_p * total;

  // Smallest bits b with mass(e > b) < nucleus_mass. mass(e > bits(1.0)) = 0, so hi is always a solution.
  var lo = 0u;
  var hi = ONE_BITS;
  if (p.top_p >= 1.0) {
    hi = 0u; // keep everything
  }
  while (lo < hi) {
    let mid = lo + (hi - lo) / 2u;
    if (mass_above(mid, max_logit, lid) < nucleus_mass) {
      hi = mid;
    } else {
      lo = mid + 1u;
    }
  }
  let cutoff_bits = lo;
  let cutoff = bitcast<f32>(cutoff_bits);
  // Ties at the cutoff: keep the first `keep_ties` of them in vocabulary order (the rank order among equals).
  // With cutoff 0 everything of non-zero mass is already kept by the strict '>' test.
  var keep_ties = 0u;
  if (cutoff_bits != 0u) {
    let mass_strictly_above = mass_above(cutoff_bits, max_logit, lid);
    var local_ties = 0u;
    for (var i = lid; i < p.vocab; i += WORKGROUP_SIZE) {
      if (bitcast<u32>(unnormalised_prob(i, max_logit)) == cutoff_bits) {
        local_ties += 1u;
      }
    }
    let ties = count_all(local_ties, lid);
    // Tie j (0-based) is kept when mass_strictly_above + j * cutoff < nucleus_mass.
    let needed = ceil((nucleus_mass - mass_strictly_above) / cutoff);
    keep_ties = clamp(u32(max(needed, 1.0)), 1u, max(ties, 1u));
  }

  // Inverse CDF in vocabulary order. Each invocation owns one contiguous chunk of the vocabulary.
  let chunk = (p.vocab + WORKGROUP_SIZE - 1u) / WORKGROUP_SIZE;
  let start = min(lid * chunk, p.vocab);
  let end = min(start + chunk, p.vocab);
  var chunk_ties = 0u;
  for (var i = start; i < end; i++) {
    if (bitcast<u32>(unnormalised_prob(i, max_logit)) == cutoff_bits) {
      chunk_ties += 1u;
    }
  }
  red_u[lid] = chunk_ties;
  workgroupBarrier();
  if (lid == 0u) {
    // Exclusive prefix sum of tie counts (256 adds: not worth a parallel scan).
    var running = 0u;
    for (var t = 0u; t < WORKGROUP_SIZE; t++) {
      let c = red_u[t];
      red_u[t] = running;
      running += c;
    }
  }
  workgroupBarrier();
  let ties_before_chunk = red_u[lid];
  var chunk_mass = 0.0;
  var tie_rank = ties_before_chunk;
  for (var i = start; i < end; i++) {
    let e = unnormalised_prob(i, max_logit);
    let bits = bitcast<u32>(e);
    if (bits > cutoff_bits) {
      chunk_mass += e;
    } else if (bits == cutoff_bits && cutoff_bits != 0u) {
      if (tie_rank < keep_ties) {
        chunk_mass += e;
      }
      tie_rank += 1u;
    }
  }
  red_f[lid] = chunk_mass;
  workgroupBarrier();
  if (lid == 0u) {
    var kept_mass = 0.0;
    for (var t = 0u; t < WORKGROUP_SIZE; t++) {
      kept_mass += red_f[t];
    }
    let target_mass = p.uniform * kept_mass;
    // The first chunk whose running sum passes the target; rounding can leave none, then the last non-empty one.
    var running = 0.0;
    var pick = NO_INDEX;
    var pick_prefix = 0.0;
    var last_nonempty = 0u;
    var last_prefix = 0.0;
    for (var t = 0u; t < WORKGROUP_SIZE; t++) {
      let m = red_f[t];
      if (m > 0.0) {
        last_nonempty = t;
        last_prefix = running;
        if (pick == NO_INDEX && running + m > target_mass) {
          pick = t;
          pick_prefix = running;
        }
      }
      running += m;
    }
    if (pick == NO_INDEX) {
      pick = last_nonempty;
      pick_prefix = last_prefix;
    }
    chosen_chunk = pick;
    chosen_prefix = pick_prefix;
    sampled_target = target_mass;
    // Every invocation's atomicOr came before the barriers of max_all.
    out[1] = atomicLoad(&non_finite);
  }
  workgroupBarrier();
  if (lid == chosen_chunk) {
    var running = chosen_prefix;
    var picked = NO_INDEX;
    var last_kept = start;
    tie_rank = ties_before_chunk;
    for (var i = start; i < end; i++) {
      let e = unnormalised_prob(i, max_logit);
      let bits = bitcast<u32>(e);
      var kept = bits > cutoff_bits;
      if (bits == cutoff_bits && cutoff_bits != 0u) {
        kept = tie_rank < keep_ties;
        tie_rank += 1u;
      }
      if (kept && picked == NO_INDEX) {
        last_kept = i;
        running += e;
        if (running > sampled_target) {
          picked = i;
        }
      }
    }
    out[0] = select(picked, last_kept, picked == NO_INDEX);
  }
}
