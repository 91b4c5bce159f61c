/**
 * CPU references for the attention family beyond plain attention: the ragged head-wise cache, SnapKV-style window
 * scores and selection as the official SparseMM code does them (sparsemm/sparsemm_utils.py, SparseMM.calcul_attn_sore
 * and update_kv), and the attention probe. Built on cpu-ops `attention` (f64 accumulation).
 */
import type { WindowScoreShape } from '../../src/engine/ops/kv-selection';
import { attention } from './cpu-ops';

/** Rows of one KV head at the given token positions: [positions.length, headDim] from kv [tokens, numKvHeads, headDim]. */
export function gatherHeadRows(kv: Float32Array, numKvHeads: number, headDim: number, kvHead: number, positions: ArrayLike<number>): Float32Array {
  const out = new Float32Array(positions.length * headDim);
  for (let i = 0; i < positions.length; i++) {
    const src = (positions[i] * numKvHeads + kvHead) * headDim;
    out.set(kv.subarray(src, src + headDim), i * headDim);
  }
  return out;
}

/** Query heads of KV group g: [group, headDim] from q [numHeads, headDim]. */
function groupQueries(q: Float32Array, numHeads: number, numKvHeads: number, headDim: number, g: number): Float32Array {
  const group = numHeads / numKvHeads;
  return q.slice(g * group * headDim, (g + 1) * group * headDim);
}

/**
 * One decode query per head over a ragged cache: query head h sees exactly headKeys[g] / headValues[g] ([L_g, headDim],
 * g = h / group). Returns [numHeads, headDim] and per head the probabilities over its L_g keys.
 */
export function raggedDecodeAttention(
  q: Float32Array,
  headKeys: Float32Array[],
  headValues: Float32Array[],
  numHeads: number,
  headDim: number,
): { out: Float32Array; probs: Float32Array[] } {
  const numKvHeads = headKeys.length;
  const group = numHeads / numKvHeads;
  const out = new Float32Array(numHeads * headDim);
  const probs: Float32Array[] = [];
  for (let g = 0; g < numKvHeads; g++) {
    const keys = headKeys[g].length / headDim;
    const result = attention(groupQueries(q, numHeads, numKvHeads, headDim, g), headKeys[g], headValues[g], {
      queries: 1,
      keys,
      numHeads: group,
      numKvHeads: 1,
      headDim,
      causal: false,
    });
    out.set(result.out, g * group * headDim);
    for (let i = 0; i < group; i++) probs.push(result.probs.slice(i * keys, (i + 1) * keys));
  }
  return { out, probs };
}

/** The kernel's shape (ops/kv-selection.ts), so the reference and the kernel take the same argument. */
export type { WindowScoreShape };

/**
 * The official SnapKV-style scores: the last `window` queries attend to all keys (causal inside the window), softmax
 * in f32 over the whole row, mean over the window queries of the prefix columns, GQA mean over the group, then
 * avg_pool1d / max_pool1d with padding kernel//2, stride 1. avg_pool1d's default count_include_pad=True divides by
 * the kernel size at the edges too (the zero padding counts); max_pool1d pads with -inf (padding never wins).
 * Returns [numKvHeads, tokens - window].
 */
export function windowScores(q: Float32Array, k: Float32Array, shape: WindowScoreShape): Float32Array {
  const { tokens, window, numHeads, numKvHeads, headDim, poolKernel, pooling } = shape;
  const prefix = tokens - window;
  const group = numHeads / numKvHeads;
  const windowQueries = q.slice((tokens - window) * numHeads * headDim);
  // Causal with query offset tokens - window: window query w sees keys 0..prefix + w, as the official mask does.
  const { probs } = attention(windowQueries, k, k, { queries: window, keys: tokens, numHeads, numKvHeads, headDim, causal: true });
  const mean = new Float64Array(numKvHeads * prefix);
  for (let h = 0; h < numHeads; h++) {
    const g = Math.floor(h / group);
    for (let j = 0; j < prefix; j++) {
      let sum = 0;
      for (let w = 0; w < window; w++) sum += probs[(h * window + w) * tokens + j];
      mean[g * prefix + j] += sum / window / group;
    }
  }
  const pooled = new Float32Array(numKvHeads * prefix);
  const pad = Math.floor(poolKernel / 2);
  for (let g = 0; g < numKvHeads; g++) {
    for (let j = 0; j < prefix; j++) {
      let acc = pooling === 'avg' ? 0 : -Infinity;
      for (let o = -pad; o <= pad; o++) {
        const i = j + o;
        if (i < 0 || i >= prefix) continue;
        const value = mean[g * prefix + i];
        acc = pooling === 'avg' ? acc + value : Math.max(acc, value);
      }
      pooled[g * prefix + j] = pooling === 'avg' ? acc / poolKernel : acc;
    }
  }
  return pooled;
}

/**
 * Per KV head: the `capacities[g]` prefix positions with the highest pooled score (ties: lower position first),
 * ascending, then the last `window` positions. pooled is [numKvHeads, tokens - window].
 */
export function selectKeptPositions(pooled: Float32Array, capacities: number[], tokens: number, window: number): Uint32Array {
  const prefix = tokens - window;
  const out: number[] = [];
  capacities.forEach((capacity, g) => {
    const order = Array.from({ length: prefix }, (_, i) => i);
    order.sort((a, b) => pooled[g * prefix + b] - pooled[g * prefix + a] || a - b);
    const kept = order.slice(0, Math.min(capacity, prefix)).sort((a, b) => a - b);
    out.push(...kept);
    for (let t = prefix; t < tokens; t++) out.push(t);
  });
  return Uint32Array.from(out);
}

/**
 * The probe over a cache whose slot index is the position: per query head the key with the largest attention weight
 * (lowest index on ties) and the probabilities of keys start..start+length-1 ([numHeads, length]).
 */
export function attentionProbe(
  q: Float32Array,
  headKeys: Float32Array[],
  numHeads: number,
  headDim: number,
  start: number,
  length: number,
): { top1: Uint32Array; rows: Float32Array } {
  const zeros = headKeys.map((keys) => new Float32Array(keys.length));
  const { probs } = raggedDecodeAttention(q, headKeys, zeros, numHeads, headDim);
  const top1 = new Uint32Array(numHeads);
  const rows = new Float32Array(numHeads * length);
  probs.forEach((row, h) => {
    let best = 0;
    for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
    top1[h] = best;
    for (let i = 0; i < length; i++) rows[h * length + i] = start + i < row.length ? row[start + i] : 0;
  });
  return { top1, rows };
}
