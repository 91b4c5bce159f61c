/**
 * Plain-array reference of SnapKV-style token selection at the end of prefill, as the official
 * `SnapKVCluster.update_kv` / `SparseMM.calcul_attn_sore` do it, for one layer. It documents the rule
 * and is what tests check the GPU version (src/engine/ops/kv-selection.ts) against.
 *
 * Steps (all keys/queries after RoPE):
 * 1. The last `window` queries attend to all prompt keys, scaled by 1/sqrt(headDim), causal inside the
 *    window (query i of the window sees the prefix and window keys 0..i), softmax per row.
 * 2. Mean over those `window` query rows, per query head, of the probabilities on PREFIX keys only.
 * 3. GQA: mean over the query heads of each KV group (official `gqa_func = 'mean'`).
 * 4. 1-D pooling along positions: kernel k (odd), padding k/2, stride 1. avgpool counts the zero
 *    padding (torch's default count_include_pad), i.e. always divides by k; maxpool ignores padding.
 * 5. Per KV head keep the top `capacity` prefix positions by pooled score (equal scores: lower position
 *    first; torch.topk leaves ties unspecified), plus every position of the window.
 *
 * Layouts follow the model's projections: q [promptLength, qHeads, headDim], k [promptLength, kvHeads, headDim].
 * Sums run in float64; results are stored as float32 like the GPU's.
 */
import { adakvCapacities, type BudgetParams, type PoolingKind } from './budgets';

export interface WindowScoreShape {
  promptLength: number;
  qHeads: number;
  kvHeads: number;
  headDim: number;
  window: number;
  /** Defaults to 1/sqrt(headDim). */
  scale?: number;
}

function checkShape(q: Float32Array, k: Float32Array, shape: WindowScoreShape): void {
  const { promptLength, qHeads, kvHeads, headDim, window } = shape;
  if (qHeads % kvHeads !== 0) throw new RangeError(`qHeads (${qHeads}) must be a multiple of kvHeads (${kvHeads})`);
  if (q.length !== promptLength * qHeads * headDim) throw new RangeError(`q has ${q.length} values, expected ${promptLength} x ${qHeads} x ${headDim}`);
  if (k.length !== promptLength * kvHeads * headDim) throw new RangeError(`k has ${k.length} values, expected ${promptLength} x ${kvHeads} x ${headDim}`);
  if (!Number.isInteger(window) || window < 1 || window > promptLength) throw new RangeError(`window must be in 1..promptLength (${promptLength}), got ${window}`);
}

/**
 * Steps 1-2: per query head, the window queries' mean attention probability on each prefix key
 * (prefixLength = promptLength - window values per head).
 */
export function windowPrefixScores(q: Float32Array, k: Float32Array, shape: WindowScoreShape): Float32Array[] {
  checkShape(q, k, shape);
  const { promptLength, qHeads, kvHeads, headDim, window } = shape;
  const scale = shape.scale ?? 1 / Math.sqrt(headDim);
  const group = qHeads / kvHeads;
  const prefixLength = promptLength - window;
  const logits = new Float64Array(promptLength);
  const result: Float32Array[] = [];
  for (let h = 0; h < qHeads; h++) {
    const g = Math.floor(h / group);
    const sums = new Float64Array(prefixLength);
    for (let w = 0; w < window; w++) {
      const query = prefixLength + w;
      const visible = query + 1; // causal: the window's mask hides keys after the query
      let max = -Infinity;
      for (let j = 0; j < visible; j++) {
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += q[(query * qHeads + h) * headDim + d] * k[(j * kvHeads + g) * headDim + d];
        logits[j] = dot * scale;
        if (logits[j] > max) max = logits[j];
      }
      let total = 0;
      for (let j = 0; j < visible; j++) {
        logits[j] = Math.exp(logits[j] - max);
        total += logits[j];
      }
      for (let j = 0; j < prefixLength; j++) sums[j] += logits[j] / total;
    }
    result.push(Float32Array.from(sums, (s) => s / window));
  }
  return result;
}

/** Step 3: mean over each KV group's query heads (KV head g owns query heads g*G .. g*G+G-1). */
export function gqaMeanScores(perQueryHead: Float32Array[], kvHeads: number): Float32Array[] {
  if (perQueryHead.length % kvHeads !== 0) throw new RangeError(`${perQueryHead.length} query heads do not split into ${kvHeads} KV groups`);
  const group = perQueryHead.length / kvHeads;
  const result: Float32Array[] = [];
  for (let g = 0; g < kvHeads; g++) {
    const length = perQueryHead[g * group].length;
    const mean = new Float32Array(length);
    for (let i = 0; i < length; i++) {
      let sum = 0;
      for (let j = 0; j < group; j++) sum += perQueryHead[g * group + j][i];
      mean[i] = sum / group;
    }
    result.push(mean);
  }
  return result;
}

/** Step 4: torch's avg_pool1d / max_pool1d with padding kernel/2, stride 1 (output as long as the input). */
export function pool1d(scores: Float32Array, kernel: number, pooling: PoolingKind): Float32Array {
  if (!Number.isInteger(kernel) || kernel < 1 || kernel % 2 === 0) throw new RangeError(`pooling kernel must be a positive odd integer, got ${kernel}`);
  const half = (kernel - 1) / 2;
  const out = new Float32Array(scores.length);
  for (let i = 0; i < scores.length; i++) {
    const from = Math.max(0, i - half);
    const to = Math.min(scores.length - 1, i + half);
    if (pooling === 'avgpool') {
      let sum = 0;
      for (let j = from; j <= to; j++) sum += scores[j];
      out[i] = sum / kernel;
    } else {
      let max = -Infinity;
      for (let j = from; j <= to; j++) max = Math.max(max, scores[j]);
      out[i] = max;
    }
  }
  return out;
}

/** Steps 1-4 for one layer: the pooled score per KV head and prefix position (input of top-k and of AdaKV). */
export function windowPooledScores(q: Float32Array, k: Float32Array, shape: WindowScoreShape, params: Pick<BudgetParams, 'kernel' | 'pooling'>): Float32Array[] {
  return gqaMeanScores(windowPrefixScores(q, k, shape), shape.kvHeads).map((row) => pool1d(row, params.kernel, params.pooling));
}

/** Step 5's top-k: the `count` highest-scoring positions, equal scores to the lower position, returned ascending. */
export function topkPositions(scores: ArrayLike<number>, count: number): Int32Array {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`top-k count must be a non-negative integer, got ${count}`);
  const order = Array.from({ length: scores.length }, (_, i) => i);
  order.sort((a, b) => scores[b] - scores[a] || a - b);
  return Int32Array.from(order.slice(0, Math.min(count, scores.length))).sort();
}

export interface LayerSelection {
  /** False when promptLength < budget: every head keeps the whole prompt. */
  compress: boolean;
  /** Pooled scores per KV head (empty when not compressing). */
  pooled: Float32Array[];
  /** Prefix tokens kept per KV head. */
  capacity: number[];
  /** Kept prompt positions per KV head, ascending: the selected prefix positions, then the window. */
  kept: Int32Array[];
}

/**
 * The whole selection for one layer. `capacity` is that layer's row of `headCapacities(...).capacity`,
 * or 'adakv' to split the layer's budget from its own pooled scores (`adakvCapacities`).
 */
export function selectLayerPositions(
  q: Float32Array,
  k: Float32Array,
  shape: WindowScoreShape,
  capacity: readonly number[] | 'adakv',
  params: BudgetParams,
): LayerSelection {
  const { promptLength, kvHeads, window } = shape;
  if (window !== params.window) throw new RangeError(`shape.window (${window}) differs from params.window (${params.window})`);
  if (capacity !== 'adakv' && capacity.length !== kvHeads) throw new RangeError(`${capacity.length} capacities for ${kvHeads} KV heads`);
  const prefixLength = promptLength - window;
  // Same rule as headCapacities: below the budget the official code keeps the cache whole.
  if (promptLength < params.budget) {
    const all = Int32Array.from({ length: promptLength }, (_, i) => i);
    return { compress: false, pooled: [], capacity: new Array<number>(kvHeads).fill(prefixLength), kept: Array.from({ length: kvHeads }, () => all.slice()) };
  }
  const pooled = windowPooledScores(q, k, shape, params);
  const caps = capacity === 'adakv' ? adakvCapacities(pooled, params) : capacity.map((c) => Math.max(0, Math.min(c, prefixLength)));
  const kept = pooled.map((row, g) => {
    const chosen = topkPositions(row, caps[g]);
    const positions = new Int32Array(chosen.length + window);
    positions.set(chosen);
    for (let i = 0; i < window; i++) positions[chosen.length + i] = prefixLength + i;
    return positions;
  });
  return { compress: true, pooled, capacity: caps, kept };
}
