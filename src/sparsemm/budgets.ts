/**
 * KV-cache budget allocation per (layer, KV head), reproducing the official SparseMM code base
 * (github CR400AF-A/SparseMM, `sparsemm/sparsemm_utils.py`) rule for rule:
 *
 * - Terms. `budget` is the official `max_capacity_prompt` (env BUDGET): average tokens kept per head,
 *   window included. `base = budget - window` is the official `base_capacity`: prefix tokens a head keeps
 *   on average. The official defaults (`init_snapkv` & co.) are window 32, kernel 5, avgpool, GQA mean;
 *   the eval scripts use ratio 0.1; AdaKV's floor ratio is 0.2 with `normalize` on; PyramidKV's beta 20.
 * - Capacities here count PREFIX tokens only (positions < promptLength - window). The last `window`
 *   prompt tokens are always kept on top, exactly as the official `torch.cat([top_k, last_window])`.
 * - When compression happens: all official classes leave the cache untouched when the prefix
 *   (`q_len - window`) is shorter than `base` (SnapKV: `q_len < max_capacity_prompt`; AdaKV/SparseMM:
 *   `base_capacity > attn_score.size(-1)`), i.e. iff promptLength < budget. At promptLength == budget
 *   compression does happen (SnapKV then keeps everything, SparseMM's small heads still shrink).
 * - A head whose capacity exceeds the prefix keeps the whole prefix: the official code slices the sorted
 *   indices with `[..., :cap]`, which silently stops at the prefix length; the excess is not redistributed.
 */
import { randomHeadScores } from './random';

import { budgetPolicies, policyTable, type BudgetPolicy } from './policies';

export { budgetPolicies, type BudgetPolicy };

export type PoolingKind = 'avgpool' | 'maxpool';

export interface BudgetParams {
  /** Average tokens kept per KV head including the window (official `max_capacity_prompt`). */
  budget: number;
  /** Number of most recent prompt tokens always kept; their queries score the prefix (official `window_size`). */
  window: number;
  /** 1-D pooling kernel over the window scores (odd; padding kernel/2, stride 1). */
  kernel: number;
  pooling: PoolingKind;
  /** SparseMM: share of `base` every head gets regardless of its score (official RATIO). */
  ratio: number;
  /** AdaKV: share of `base` every head gets before the adaptive split (official `floor_ratio`). */
  adakvFloorRatio: number;
  /** PyramidKV: the smallest layer capacity is base / beta (official `pyram_beta`). */
  pyramidBeta: number;
  /** StreamingLLM: number of attention-sink tokens at the start of the prompt. */
  sinkTokens: number;
  /** Seed of the `random` policy's head scores. */
  seed: number;
}

export const defaultBudgetParams: Readonly<BudgetParams> = Object.freeze({
  budget: 256,
  window: 32,
  kernel: 5,
  pooling: 'avgpool',
  ratio: 0.1,
  adakvFloorRatio: 0.2,
  pyramidBeta: 20,
  sinkTokens: 4,
  seed: 0,
});

export interface HeadCapacityRequest {
  layers: number;
  qHeads: number;
  kvHeads: number;
  /** Prompt length in tokens at the end of prefill. */
  promptLength: number;
  params: BudgetParams;
  /** Mean visual-head score per [layer][query head]; required by `sparsemm`. */
  headScores?: number[][];
}

export interface HeadCapacities {
  /**
   * False when the cache is left whole (policy `full`, or promptLength < budget): every head then keeps
   * all promptLength tokens, and `capacity` equals `prefixLength` everywhere.
   */
  compress: boolean;
  /**
   * True for `adakv`: the real per-head split is only known from the pooled window scores at prefill,
   * via `adakvCapacities` per layer; `capacity` then holds the per-head average `base` as a plan.
   */
  attentionDependent: boolean;
  /** True for `streamingllm`: the kept positions follow from the prompt length (streamingKeptPositions), no top-k. */
  fixedPositions: boolean;
  /** Candidate prefix positions: max(0, promptLength - window). */
  prefixLength: number;
  /** Tokens of the recent window kept on top of the prefix selection: min(window, promptLength). */
  windowLength: number;
  /** Prefix tokens each KV head keeps, [layer][kvHead], clamped to prefixLength. */
  capacity: number[][];
  /** The official `head_adaptive_capacity` before clamping ([layer][kvHead]); equals `capacity` when nothing clamps. */
  rawCapacity: number[][];
}

/** Python's `int(x)` for a float: truncation toward zero. */
function pyInt(x: number): number {
  return Math.trunc(x);
}

/** `torch.round`: round half to even (like Python's `round`), not JS Math.round's half-up. */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff < 0.5) return floor;
  if (diff > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Python `//` on integers: floor division (rounds toward -infinity, also for negative numerators). */
function floorDiv(a: number, b: number): number {
  return Math.floor(a / b);
}

export function validateBudgetParams(params: BudgetParams): void {
  const positiveInt = (name: string, v: number): void => {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  };
  positiveInt('window', params.window);
  positiveInt('budget', params.budget);
  positiveInt('kernel', params.kernel);
  // The official SnapKVCluster asserts max_capacity_prompt - window_size > 0.
  if (params.budget <= params.window) throw new RangeError(`budget (${params.budget}) must exceed the window (${params.window})`);
  // An even kernel with padding kernel/2 makes torch's pooled row one longer than the prefix.
  if (params.kernel % 2 === 0) throw new RangeError(`pooling kernel must be odd, got ${params.kernel}`);
  if (params.pooling !== 'avgpool' && params.pooling !== 'maxpool') throw new RangeError(`pooling must be avgpool or maxpool, got ${String(params.pooling)}`);
  if (!(params.ratio >= 0 && params.ratio <= 1)) throw new RangeError(`ratio must be in [0, 1], got ${params.ratio}`);
  if (!(params.adakvFloorRatio >= 0 && params.adakvFloorRatio <= 1)) throw new RangeError(`adakvFloorRatio must be in [0, 1], got ${params.adakvFloorRatio}`);
  if (!(params.pyramidBeta >= 1)) throw new RangeError(`pyramidBeta must be >= 1, got ${params.pyramidBeta}`);
  if (!Number.isInteger(params.pyramidBeta)) throw new RangeError(`pyramidBeta must be an integer (the official code floor-divides by it), got ${params.pyramidBeta}`);
  if (!Number.isInteger(params.sinkTokens) || params.sinkTokens < 0) throw new RangeError(`sinkTokens must be a non-negative integer, got ${params.sinkTokens}`);
  if (!Number.isFinite(params.seed)) throw new RangeError(`seed must be a finite number, got ${params.seed}`);
}

function validateShape(layers: number, qHeads: number, kvHeads: number, promptLength: number): void {
  for (const [name, v] of [['layers', layers], ['qHeads', qHeads], ['kvHeads', kvHeads]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  }
  if (qHeads % kvHeads !== 0) throw new RangeError(`qHeads (${qHeads}) must be a multiple of kvHeads (${kvHeads})`);
  if (!Number.isSafeInteger(promptLength) || promptLength < 0) throw new RangeError(`promptLength must be a non-negative integer, got ${promptLength}`);
}

/** `base_capacity` of the official classes: prefix tokens per head on average. */
export function baseCapacity(params: BudgetParams): number {
  return params.budget - params.window;
}

/**
 * SparseMM's `head_adaptive_capacity` ([layer][kvHead], unclamped), as in `SparseMM.__init__`:
 * - scores are normalised by their plain sequential float64 sum (`head_score_list / sum(head_score_list)`,
 *   Python's built-in sum, in row-major (layer, head) order);
 * - GQA: `view(L, Hkv, G).sum(-1)`, so KV head g sums query heads g*G .. g*G+G-1 (the repeat_kv layout);
 * - `min_cache = int(base * ratio)` truncates the float64 product;
 * - `remain = (base - min_cache) * L * Hq // G` (integer; equals (base - min_cache) * L * Hkv);
 * - `torch.round(score * remain + min_cache)` in float64, ties to even.
 * All-zero scores (where the official code divides by zero) split the budget evenly, as equal scores would.
 */
export function sparsemmRawCapacities(headScores: number[][], layers: number, qHeads: number, kvHeads: number, params: BudgetParams): number[][] {
  if (headScores.length !== layers || headScores.some((row) => row.length !== qHeads)) {
    const shape = `${headScores.length} x ${headScores[0]?.length ?? 0}`;
    throw new RangeError(`head scores are ${shape} but the model has ${layers} layers x ${qHeads} query heads`);
  }
  let total = 0;
  for (const row of headScores) {
    for (const s of row) {
      if (!Number.isFinite(s) || s < 0) throw new RangeError(`head scores must be finite and non-negative, got ${s}`);
      total += s;
    }
  }
  // All zero (a visual-head search in which no head ever looked at the text it read): the official code would divide
  // by zero. Every head then carries the same (lack of) evidence, so we use the limit of equal scores: an even split.
  const scores = total > 0 ? headScores : headScores.map((row) => row.map(() => 1));
  if (!(total > 0)) total = layers * qHeads;
  const group = qHeads / kvHeads;
  const base = baseCapacity(params);
  const minCache = pyInt(base * params.ratio);
  const remain = floorDiv((base - minCache) * layers * qHeads, group);
  return scores.map((row) => {
    const normalised = row.map((s) => s / total);
    const caps: number[] = [];
    for (let g = 0; g < kvHeads; g++) {
      let groupScore = 0;
      for (let j = 0; j < group; j++) groupScore += normalised[g * group + j];
      caps.push(roundHalfEven(groupScore * remain + minCache));
    }
    return caps;
  });
}

/**
 * PyramidKV's prefix capacity of every layer, as `SnapKVCluster.update_kv` with `pyram_mode`:
 * - `min = base // beta`, `max = 2*base - min` (so the mean over layers stays about `base`);
 * - if `max >= promptLength - window`: `max = promptLength - window`, `min = 2*base - max`;
 * - `steps = (max - min) // (L - 1)` (floor division: negative when the prompt is shorter than base);
 * - layer l keeps `max - l*steps` prefix tokens (layer 0 the most).
 * With a single layer the official code divides by zero; we use steps = 0 (the layer keeps `max`).
 */
export function pyramidLayerCapacities(layers: number, promptLength: number, params: BudgetParams): number[] {
  const base = baseCapacity(params);
  const prefixLength = promptLength - params.window;
  let minNum = floorDiv(base, params.pyramidBeta);
  let maxNum = base * 2 - minNum;
  if (maxNum >= prefixLength) {
    maxNum = prefixLength;
    minNum = base * 2 - maxNum;
  }
  const steps = layers > 1 ? floorDiv(maxNum - minNum, layers - 1) : 0;
  return Array.from({ length: layers }, (_, layer) => maxNum - layer * steps);
}

/**
 * AdaKV's per-head prefix capacity for one layer, from that layer's pooled window scores (one row of
 * prefixLength scores per KV head, after the GQA mean and pooling), as `AdaKVCluster.update_kv`:
 * - no compression when `base > prefixLength` (every head keeps the whole prefix);
 * - each head's scores sorted descending; with `normalize` (official default True) each head's sorted
 *   row is multiplied by (sum of its top `base`) / (sum of all of it);
 * - the rows are flattened and the top `Hkv * base` entries overall are counted per head;
 * - `cap = round(count * (1 - f) + int(base * f))`, ties to even.
 * Numerics: torch does the normalisation in float32 and `int64 count * python float` yields float32, so
 * those steps round through Math.fround. Equal flattened scores are taken head-major, lower rank first
 * (torch.topk leaves that order unspecified).
 */
export function adakvCapacities(pooledScores: Float32Array[], params: BudgetParams): number[] {
  const kvHeads = pooledScores.length;
  if (kvHeads === 0) throw new RangeError('adakvCapacities needs the pooled scores of at least one KV head');
  const prefixLength = pooledScores[0].length;
  if (pooledScores.some((row) => row.length !== prefixLength)) throw new RangeError('pooled score rows differ in length');
  const base = baseCapacity(params);
  if (base > prefixLength) return pooledScores.map(() => prefixLength);
  const floorRatio = params.adakvFloorRatio;
  const floorCapacity = pyInt(base * floorRatio);

  const candidates: { value: number; head: number; rank: number }[] = [];
  pooledScores.forEach((row, head) => {
    const sorted = Array.from(row).sort((a, b) => b - a);
    let topSum = 0;
    let allSum = 0;
    for (let i = 0; i < sorted.length; i++) {
      if (i < base) topSum += sorted[i];
      allSum += sorted[i];
    }
    // A row of zeros gives 0/0 in torch too (NaN); keep the raw scores there rather than propagate NaN.
    const weight = allSum > 0 ? Math.fround(Math.fround(topSum) / Math.fround(allSum)) : 1;
    sorted.forEach((value, rank) => candidates.push({ value: Math.fround(value * weight), head, rank }));
  });
  candidates.sort((a, b) => b.value - a.value || a.head - b.head || a.rank - b.rank);
  const counts = new Array<number>(kvHeads).fill(0);
  for (let i = 0; i < kvHeads * base; i++) counts[candidates[i].head]++;

  const keepShare = Math.fround(1 - floorRatio);
  return counts.map((count) => Math.min(prefixLength, roundHalfEven(Math.fround(Math.fround(count * keepShare) + floorCapacity))));
}

/**
 * Prefix capacities per [layer][kvHead] for a policy. For `adakv` this is only the plan (every head
 * `base`, flagged `attentionDependent`); the engine calls `adakvCapacities` per layer at prefill.
 * `random` draws query-head scores from `params.seed` and applies the SparseMM formula.
 * `streamingllm` keeps `base` prefix tokens per head: the first `sinkTokens` and the most recent rest
 * (see `streamingKeptPositions`).
 */
export function headCapacities(policy: BudgetPolicy, request: HeadCapacityRequest): HeadCapacities {
  const { layers, qHeads, kvHeads, promptLength, params } = request;
  validateShape(layers, qHeads, kvHeads, promptLength);
  validateBudgetParams(params);
  const base = baseCapacity(params);
  const prefixLength = Math.max(0, promptLength - params.window);
  const windowLength = Math.min(params.window, promptLength);
  const uniform = (value: number): number[][] => Array.from({ length: layers }, () => new Array<number>(kvHeads).fill(value));

  let raw: number[][];
  switch (policy) {
    case 'full':
      raw = uniform(prefixLength);
      break;
    case 'snapkv':
    case 'adakv':
    case 'streamingllm':
      raw = uniform(base);
      break;
    case 'pyramidkv':
      raw = pyramidLayerCapacities(layers, promptLength, params).map((cap) => new Array<number>(kvHeads).fill(cap));
      break;
    case 'sparsemm':
      if (!request.headScores) throw new RangeError('the sparsemm policy needs head scores (a visual-head score file)');
      raw = sparsemmRawCapacities(request.headScores, layers, qHeads, kvHeads, params);
      break;
    case 'random': {
      raw = sparsemmRawCapacities(randomHeadScores(layers, qHeads, params.seed), layers, qHeads, kvHeads, params);
      break;
    }
    default: {
      const unknown: never = policy;
      throw new RangeError(`unknown budget policy ${String(unknown)}`);
    }
  }

  const compress = policy !== 'full' && promptLength >= params.budget;
  const capacity = compress ? raw.map((row) => row.map((cap) => Math.max(0, Math.min(cap, prefixLength)))) : uniform(prefixLength);
  const { attentionDependent, fixedPositions } = policyTable[policy];
  return { compress, attentionDependent, fixedPositions, prefixLength, windowLength, capacity, rawCapacity: raw };
}

/** Tokens each head keeps after prefill ([layer][kvHead]): its prefix capacity plus the recent window. */
export function keptLengths(result: HeadCapacities): number[][] {
  return result.capacity.map((row) => row.map((cap) => cap + result.windowLength));
}

/** Total cached tokens over all layers and KV heads (what the KV memory scales with). */
export function totalKeptTokens(result: HeadCapacities): number {
  return keptLengths(result).reduce((sum, row) => row.reduce((s, v) => s + v, sum), 0);
}

/**
 * StreamingLLM (attention sinks + recent tokens; not in the official code base, a cheap extra): the
 * same for every head and layer. When compressing (promptLength >= budget) a head keeps `budget` tokens:
 * the first min(sinkTokens, base) prompt positions and the most recent ones, the last `window` of which
 * are the usual window. Otherwise every position is kept. Returns ascending positions.
 */
export function streamingKeptPositions(promptLength: number, params: BudgetParams): Int32Array {
  validateBudgetParams(params);
  if (!Number.isSafeInteger(promptLength) || promptLength < 0) throw new RangeError(`promptLength must be a non-negative integer, got ${promptLength}`);
  if (promptLength < params.budget) return Int32Array.from({ length: promptLength }, (_, i) => i);
  const sinks = Math.min(params.sinkTokens, baseCapacity(params));
  const recent = params.budget - sinks;
  const kept = new Int32Array(params.budget);
  for (let i = 0; i < sinks; i++) kept[i] = i;
  for (let i = 0; i < recent; i++) kept[sinks + i] = promptLength - recent + i;
  return kept;
}
