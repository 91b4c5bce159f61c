/**
 * One decode step of the text decoder (token id -> next-token logits), 6 dispatches per layer: the fused q/k/v GEMV
 * (RMSNorm, RoPE, the KV-cache append), split-K decode attention (2), o_proj with the residual add, gate/up + SwiGLU
 * with RMSNorm, down_proj with the residual add; then the final norm inside lm_head.
 *
 * Recording those ~180 dispatches one by one costs more CPU time than a small model's step takes on a GPU, so the
 * step is recorded once per KV cache into a DispatchPlan and replayed: later tokens only rewrite what changes (the
 * position and cache rows of the q/k/v kernel, the attention's lengths and workgroup count). Steps with attention
 * probes, and shapes the fused q/k/v kernel does not take (separate GEMVs, RoPE and append), are recorded directly.
 */
import type { GpuContext } from './gpu';
import type { GpuWeights } from './weights';
import type { RaggedKvCache } from './kv-cache';
import { DispatchPlan } from './dispatch-plan';
import { decodeQkvShape } from './model-kernels';
import { embedding } from './ops/embedding';
import { gemv, gemvQkvRope, gemvSwiglu, qkvRopePairs } from './ops/gemv';
import { rope } from './ops/rope';
import { decodeAttention, decodeAttentionLengths, decodeAttentionScratch } from './ops/decode-attention';
import { paramWordOffset } from './params';
import { attendParams, qkvParams } from './kernel-params';
import type { ModelConfig } from '../model-io/config';
import { idefics3Names } from '../model-io/idefics3';
import type { DecodeOptions } from './text-decoder';

/** The decode buffers a step reads and writes (allocated once by TextModel). */
export interface DecodeStepBuffers {
  tokenId: GPUBuffer;
  position: GPUBuffer;
  /** The residual stream (o_proj and down_proj add into it). */
  hidden: GPUBuffer;
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  attention: GPUBuffer;
  /** silu(gate) * up. */
  activated: GPUBuffer;
  logits: GPUBuffer;
}

/** A step recorded for one cache: the plan and where the per-token dispatches sit in it. */
interface StepPlan {
  plan: DispatchPlan;
  qkv: number[];
  attention: number[];
  /** The split-K scratch the plan binds (growingScratch may replace it when a larger cache comes). */
  scratch: GPUBuffer;
  buffers: DecodeStepBuffers;
  /** The buffer the plan's embedding gather reads the token id from (its first u32). */
  tokenSource: GPUBuffer;
}

/** The words updatePlan rewrites in the q/k/v and attention blocks. */
const qkvPositionWord = paramWordOffset(qkvParams, 'position');
const qkvCacheRowWord = paramWordOffset(qkvParams, 'cache_row');
const attendAppendedWord = paramWordOffset(attendParams, 'appended');
const attendMaxChunksWord = paramWordOffset(attendParams, 'max_chunks');

/** Caches whose plan is kept (the benchmark decodes a few caches in turn); the oldest is dropped beyond. */
const maxPlans = 8;

export class DecodeStep {
  private readonly plans = new Map<RaggedKvCache, StepPlan>();

  constructor(
    private readonly ctx: GpuContext,
    private readonly config: ModelConfig,
    private readonly weights: GpuWeights,
    private readonly lmHead: string,
  ) {}

  /**
   * Records one decode step (submitted by the caller) and advances the cache; the logits land in buffers.logits.
   * `token` is a token id from the CPU (written to buffers.tokenId) or a GPU buffer whose first u32 is the token (what
   * a sampling kernel wrote: a pipelined decode feeds the sampled token without reading it back first).
   */
  record(buffers: DecodeStepBuffers, token: number | GPUBuffer, position: number, cache: RaggedKvCache, options: DecodeOptions): void {
    const ctx = this.ctx;
    // The previous step was submitted, so these writes cannot overtake commands that still read the old values.
    if (typeof token === 'number') ctx.upload(buffers.tokenId, Uint32Array.of(token));
    const tokenSource = typeof token === 'number' ? buffers.tokenId : token;
    const fused = qkvRopePairs(decodeQkvShape(this.config), ctx.gemv) !== null;
    if (!fused || options.attentionHooks) {
      if (!fused) ctx.upload(buffers.position, Uint32Array.of(position));
      this.recordLayers(buffers, tokenSource, position, cache, options, fused, null);
    } else {
      const numHeads = this.config.text.numHeads;
      let step = this.plans.get(cache);
      if (step && (step.buffers !== buffers || step.tokenSource !== tokenSource || step.scratch !== decodeAttentionScratch(ctx, cache, numHeads))) {
        this.dropPlan(cache);
        step = undefined;
      }
      if (!step) {
        step = this.buildPlan(buffers, tokenSource, position, cache);
      } else {
        this.updatePlan(step, position, cache);
      }
      step.plan.record();
    }
    cache.advance();
  }

  /** final norm + lm_head of one row `hidden` into `logits` (the norm inside the GEMV). */
  finalLogits(hidden: GPUBuffer, logits: GPUBuffer): void {
    const { text } = this.config;
    const norm = { normWeight: this.weights.get(idefics3Names.finalNorm), eps: text.rmsNormEps };
    gemv(this.ctx, hidden, this.weights.get(this.lmHead), null, logits, 1, text.hiddenSize, text.vocabSize, norm);
  }

  /** Frees every plan (their parameter buffers); TextModel.releaseWorkspace calls it. */
  releasePlans(): void {
    for (const cache of [...this.plans.keys()]) this.dropPlan(cache);
  }

  private buildPlan(buffers: DecodeStepBuffers, tokenSource: GPUBuffer, position: number, cache: RaggedKvCache): StepPlan {
    const plan = new DispatchPlan(this.ctx);
    const slots = this.recordLayers(buffers, tokenSource, position, cache, {}, true, plan);
    plan.seal();
    if (this.plans.size >= maxPlans) this.dropPlan(this.plans.keys().next().value as RaggedKvCache);
    const step: StepPlan = { plan, ...slots, scratch: decodeAttentionScratch(this.ctx, cache, this.config.text.numHeads), buffers, tokenSource };
    this.plans.set(cache, step);
    return step;
  }

  /**
   * Rewrites only the words that change from token to token (the step's position and cache rows, the attention's
   * appended count and chunks): the rest of each block (shapes, RoPE tables) stays as the plan captured it, so a step
   * costs a few stores per layer, not a params block rebuilt by name.
   */
  private updatePlan(step: StepPlan, position: number, cache: RaggedKvCache): void {
    const { text } = this.config;
    const plan = step.plan;
    const positionWord = Uint32Array.of(position);
    for (let layer = 0; layer < text.numLayers; layer++) {
      const rows = cache.reserveAppend(layer);
      plan.setParamWords(step.qkv[layer], qkvPositionWord, positionWord);
      plan.setParamWords(step.qkv[layer], qkvCacheRowWord, rows);
      const { appended, maxChunks } = decodeAttentionLengths(cache, layer);
      for (const pass of [step.attention[layer], step.attention[layer] + 1]) {
        plan.setParamWords(pass, attendAppendedWord, [appended]);
        plan.setParamWords(pass, attendMaxChunksWord, [maxChunks]);
      }
      plan.setWorkgroups(step.attention[layer], cache.layout.numKvHeads * maxChunks);
    }
  }

  private dropPlan(cache: RaggedKvCache): void {
    this.plans.get(cache)?.plan.destroy();
    this.plans.delete(cache);
  }

  /**
   * Records (or, with `plan`, captures into it) the embedding, every layer and the logits, appending this token to
   * every layer of the cache; returns where each layer's q/k/v and attention dispatches are in the plan.
   */
  private recordLayers(
    ws: DecodeStepBuffers,
    tokenSource: GPUBuffer,
    position: number,
    cache: RaggedKvCache,
    options: DecodeOptions,
    fused: boolean,
    plan: DispatchPlan | null,
  ): { qkv: number[]; attention: number[] } {
    const ctx = this.ctx;
    const { text } = this.config;
    const dim = text.hiddenSize;
    const qDim = text.numHeads * text.headDim;
    const kvDim = text.numKvHeads * text.headDim;
    const eps = text.rmsNormEps;
    const w = (name: string): GPUBuffer => this.weights.get(name);
    const run = (record: () => void): number => {
      if (plan) return plan.capture(record);
      record();
      return -1;
    };
    const slots = { qkv: [] as number[], attention: [] as number[] };
    // The residual stream stays in ws.hidden: o_proj and down_proj add into it (GEMV epilogue), and every RMSNorm is
    // computed inside the GEMV that consumes it.
    const hidden = ws.hidden;
    run(() => embedding(ctx, w(idefics3Names.embedTokens), tokenSource, hidden, 1, dim));
    const qkvShape = decodeQkvShape(this.config);
    for (let layer = 0; layer < text.numLayers; layer++) {
      const lw = (part: string): GPUBuffer => w(idefics3Names.textLayer(layer, part));
      const qkvWeights = { q: lw('self_attn.q_proj.weight'), k: lw('self_attn.k_proj.weight'), v: lw('self_attn.v_proj.weight'), norm: lw('input_layernorm.weight') };
      if (fused) {
        // One dispatch: RMSNorm, q/k/v, RoPE, and this token's K/V written into the cache.
        const rows = cache.reserveAppend(layer);
        const caches = { keys: cache.keys(layer), values: cache.values(layer), rows };
        slots.qkv.push(run(() => gemvQkvRope(ctx, hidden, qkvWeights, eps, ws.q, caches, qkvShape, { position, theta: text.ropeTheta })));
      } else {
        const inputNorm = { normWeight: qkvWeights.norm, eps };
        gemv(ctx, hidden, qkvWeights.q, null, ws.q, 1, dim, qDim, inputNorm);
        gemv(ctx, hidden, qkvWeights.k, null, ws.k, 1, dim, kvDim, inputNorm);
        gemv(ctx, hidden, qkvWeights.v, null, ws.v, 1, dim, kvDim, inputNorm);
        rope(ctx, ws.q, ws.position, 1, text.numHeads, text.headDim, text.ropeTheta);
        rope(ctx, ws.k, ws.position, 1, text.numKvHeads, text.headDim, text.ropeTheta);
        cache.append(layer, ws.k, ws.v);
      }
      options.attentionHooks?.onLayerQuery(layer, ws.q, cache, options.stepIndex ?? cache.decodeSteps + 1);
      slots.attention.push(run(() => decodeAttention(ctx, ws.q, cache, layer, ws.attention, text.numHeads)));
      run(() => {
        gemv(ctx, ws.attention, lw('self_attn.o_proj.weight'), null, hidden, 1, qDim, dim, { accumulate: true });
        gemvSwiglu(ctx, hidden, lw('mlp.gate_proj.weight'), lw('mlp.up_proj.weight'), ws.activated, 1, dim, text.intermediateSize, {
          normWeight: lw('post_attention_layernorm.weight'),
          eps,
        });
        gemv(ctx, ws.activated, lw('mlp.down_proj.weight'), null, hidden, 1, text.intermediateSize, dim, { accumulate: true });
      });
    }
    run(() => this.finalLogits(hidden, ws.logits));
    return slots;
  }
}
