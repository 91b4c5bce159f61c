import type { TextConfig } from '../model-io/config';
import {
  adakvCapacities,
  defaultBudgetParams,
  headCapacities,
  streamingKeptPositions,
  type BudgetParams,
  type BudgetPolicy,
  type HeadCapacities,
} from '../sparsemm/budgets';
import type { GpuContext } from './gpu';
import type { RaggedKvCache } from './kv-cache';
import { keptPerHeadFromCapacities, selectKeptPositions, windowScores } from './ops/kv-selection';

export interface KvPolicy {
  policy: BudgetPolicy;
  params: BudgetParams;
  /** [layer][queryHead] mean visual-head scores; needed by `sparsemm`. */
  headScores?: number[][];
}

/** The knobs a person (UI, CLI flags, benchmark spec) sets for a KV policy; the rest of BudgetParams is the default. */
export interface KvPolicyOptions {
  policy: BudgetPolicy;
  /** Average tokens kept per KV head, the window included. */
  budget: number;
  window: number;
  ratio: number;
}

/**
 * The one way from KV options to the engine's KvPolicy (worker, CLI and benchmark): undefined for the full cache.
 * `headScores` ([layer][query head]) is read by `sparsemm` only.
 */
export function kvPolicyFromOptions(options: KvPolicyOptions, headScores?: number[][]): KvPolicy | undefined {
  if (options.policy === 'full') return undefined;
  return { policy: options.policy, params: budgetParamsFromOptions(options), headScores };
}

/** The budget parameters of `options`: its budget, window and ratio, the defaults for the rest. */
export function budgetParamsFromOptions(options: KvPolicyOptions): BudgetParams {
  return { ...defaultBudgetParams, budget: options.budget, window: options.window, ratio: options.ratio };
}

/**
 * Turns a budget policy (pure math in src/sparsemm) into the GPU work done at the end of each layer's prefill:
 * how many prompt tokens each KV head keeps (the cache layout) and which ones (window scores -> pooling -> top-k).
 */
export class KvCompressor {
  /** [layer][kvHead] prompt tokens kept (selected prefix + window): the cache layout to create. */
  readonly keptPerHead: number[][];
  private readonly streamingPositions: Uint32Array | null;

  private constructor(
    readonly text: TextConfig,
    readonly promptLength: number,
    readonly kvPolicy: KvPolicy,
    readonly capacities: HeadCapacities,
  ) {
    const { window } = kvPolicy.params;
    const windowLength = capacities.windowLength;
    if (!capacities.compress) {
      this.keptPerHead = capacities.capacity.map((row) => row.map(() => promptLength));
      this.streamingPositions = null;
    } else if (capacities.fixedPositions) {
      const positions = streamingKeptPositions(promptLength, kvPolicy.params);
      this.streamingPositions = Uint32Array.from(positions);
      this.keptPerHead = capacities.capacity.map((row) => row.map(() => positions.length));
    } else if (capacities.attentionDependent) {
      // AdaKV: the per-head split comes from each layer's scores; reserve the layer's total (+1 per head for rounding).
      this.keptPerHead = capacities.capacity.map((row) => row.map((cap) => Math.min(cap + 1, capacities.prefixLength) + windowLength));
      this.streamingPositions = null;
    } else {
      this.keptPerHead = capacities.capacity.map((row) => keptPerHeadFromCapacities(row, window, capacities.prefixLength));
      this.streamingPositions = null;
    }
  }

  static plan(text: TextConfig, promptLength: number, kvPolicy: KvPolicy): KvCompressor {
    const capacities = headCapacities(kvPolicy.policy, {
      layers: text.numLayers,
      qHeads: text.numHeads,
      kvHeads: text.numKvHeads,
      promptLength,
      params: kvPolicy.params,
      headScores: kvPolicy.headScores,
    });
    return new KvCompressor(text, promptLength, kvPolicy, capacities);
  }

  get compresses(): boolean {
    return this.capacities.compress;
  }

  /**
   * Chooses this layer's kept positions from its post-RoPE q [T, Hq, D] and k [T, Hkv, D]; returns the u32 list for
   * RaggedKvCache.storePrefill (null = keep everything). AdaKV reads the pooled scores back to split the layer's budget.
   */
  async selectLayer(ctx: GpuContext, cache: RaggedKvCache, layer: number, q: GPUBuffer, k: GPUBuffer): Promise<GPUBuffer | null> {
    if (!this.capacities.compress) return null;
    const { params } = this.kvPolicy;
    const tokens = this.promptLength;
    const { numKvHeads } = this.text;
    const keptTotal = this.keptPerHead[layer].reduce((a, b) => a + b, 0);
    const positions = ctx.scratch('kept positions', keptTotal * 4);
    if (this.streamingPositions) {
      // The same list for every layer, so a write that lands before an earlier layer's recorded copy runs is harmless.
      const all = new Uint32Array(this.streamingPositions.length * numKvHeads);
      for (let g = 0; g < numKvHeads; g++) all.set(this.streamingPositions, g * this.streamingPositions.length);
      ctx.upload(positions, all);
      return positions;
    }
    const prefix = this.capacities.prefixLength;
    const window = this.capacities.windowLength;
    const pooled = ctx.scratch('pooled window scores', numKvHeads * prefix * 4);
    windowScores(ctx, q, k, pooled, {
      tokens,
      window,
      numHeads: this.text.numHeads,
      numKvHeads,
      headDim: this.text.headDim,
      poolKernel: params.kernel,
      pooling: params.pooling === 'maxpool' ? 'max' : 'avg',
    });
    let capacities = this.capacities.capacity[layer];
    if (this.capacities.attentionDependent) {
      const scores = await ctx.readF32(pooled, numKvHeads * prefix);
      const perHead = Array.from({ length: numKvHeads }, (_, g) => scores.subarray(g * prefix, (g + 1) * prefix));
      capacities = adakvCapacities(perHead, params).map((cap) => Math.min(cap, prefix));
      cache.setLayerKept(layer, keptPerHeadFromCapacities(capacities, window, prefix));
    }
    selectKeptPositions(ctx, pooled, capacities, tokens, window, positions);
    return positions;
  }
}
