// Fidelity of one decode step of a compressed KV cache against the full cache, from the two next-token logit rows
// (f32 [vocab] each), one workgroup of 256 invocations; only four numbers per step go back to the CPU.
//   step_fidelity - out[4 * out_step + 0] = KL(p || q) in nats as f32 bits (p = softmax(reference), q = softmax(compressed)),
//                   out[... + 1] = 1 when argmax(reference) == argmax(compressed) else 0,
//                   out[... + 2] = rank of ref_token under the compressed logits (1 = its top-1),
//                   out[... + 3] = argmax(compressed) (the token a free-running compressed decode would pick).
// Argmax and rank break ties by the lower index, as shaders/sampling.wgsl's argmax (greedy decoding): rank 1 <=> the
// compressed decode would pick ref_token.
// KL = sum_i p_i * (log p_i - log q_i) with log p_i = (r_i - max r) - log(sum_j exp(r_j - max r)), the same for q.
// Both rows go through the same arithmetic in the same order, so identical rows give log p_i == log q_i bit for bit and
// KL exactly 0. Rounding can push a true KL of ~0 slightly below zero: it is clamped at 0.
// Compiled after shaders/logit_reductions.wgsl (WORKGROUP_SIZE, red_f / red_u, sum_all, count_all, argmax_reduce).
// #params Params (fields: src/engine/kernel-params.ts)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> reference: array<f32>;
@group(0) @binding(2) var<storage, read> compressed: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

fn logit(row: u32, i: u32) -> f32 {
  if (row == 0u) {
    return reference[p.reference_offset + i];
  }
  return compressed[i];
}

// The index of the row's largest logit (lowest index among equals). row 0: reference, 1: compressed.
fn argmax_all(row: u32, lid: u32) -> u32 {
  var best_value = LOWEST_F32;
  var best_index = NO_INDEX;
  for (var i = lid; i < p.vocab; i += WORKGROUP_SIZE) {
    let v = logit(row, i);
    if (best_index == NO_INDEX || v > best_value) {
      best_value = v;
      best_index = i;
    }
  }
  return argmax_reduce(best_value, best_index, lid);
}

// log(sum_i exp(l_i - max)) of a row whose largest logit is `max_logit`.
fn log_sum_exp_shifted(row: u32, max_logit: f32, lid: u32) -> f32 {
  var partial = 0.0;
  for (var i = lid; i < p.vocab; i += WORKGROUP_SIZE) {
    partial += exp(logit(row, i) - max_logit);
  }
  return log(sum_all(partial, lid));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn step_fidelity(@builtin(local_invocation_index) lid: u32) {
  let top_reference = argmax_all(0u, lid);
  let max_reference = reference[p.reference_offset + top_reference];
  let top_compressed = argmax_all(1u, lid);
  let max_compressed = compressed[top_compressed];
  let lse_reference = log_sum_exp_shifted(0u, max_reference, lid);
  let lse_compressed = log_sum_exp_shifted(1u, max_compressed, lid);

  let ref_logit = compressed[p.ref_token];
  var kl_partial = 0.0;
  var above = 0u;
  for (var i = lid; i < p.vocab; i += WORKGROUP_SIZE) {
    let log_p = (reference[p.reference_offset + i] - max_reference) - lse_reference;
    let log_q = (compressed[i] - max_compressed) - lse_compressed;
    kl_partial += exp(log_p) * (log_p - log_q);
    let c = compressed[i];
    if (c > ref_logit || (c == ref_logit && i < p.ref_token)) {
      above += 1u;
    }
  }
  let kl = sum_all(kl_partial, lid);
  let ranked_above = count_all(above, lid);
  if (lid == 0u) {
    let base = 4u * p.out_step;
    out[base] = bitcast<u32>(max(kl, 0.0));
    out[base + 1u] = select(0u, 1u, top_reference == top_compressed);
    out[base + 2u] = ranked_above + 1u;
    out[base + 3u] = top_compressed;
  }
}
