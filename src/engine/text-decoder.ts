/**
 * The Llama text decoder of Idefics3 / SmolVLM: the prefill over the whole prompt, one-token decode steps over the
 * head-wise (ragged) KV cache, and picking the next token on the GPU. Checked against transformers' modeling_llama.py
 * and modeling_idefics3.py (4.46):
 * - Text model (LlamaModel): embed_tokens; per layer h += o_proj(attn(rope(q, k), v)) on input_layernorm(h), then
 *   h += down_proj(silu(gate_proj(x)) * up_proj(x)) on post_attention_layernorm(h). RMSNorm: x * rsqrt(mean(x^2) + eps)
 *   * weight, computed in f32, eps = text_config.rms_norm_eps (1e-5 for SmolVLM). q/k/v/o and the MLP have no bias
 *   (attention_bias / mlp_bias false). GQA (9 query heads over 3 KV heads, head_dim from config), causal, scale
 *   head_dim**-0.5. RoPE: default rope type, rotate_half layout (pairs i and i + head_dim/2), inv_freq = 1 /
 *   theta^(2i/head_dim) with theta = rope_theta (100000 for SmolVLM), positions 0..T-1 over the whole prompt (image
 *   tokens included); decoded tokens continue at T, T+1, ...; rope_scaling null (rejected by the config parser
 *   otherwise). Final norm (RMSNorm) then lm_head.
 * - lm_head: Idefics3ForConditionalGeneration.lm_head = Linear(text hidden -> vocab, bias=False), weight "lm_head.weight".
 *   Tied to embed_tokens only when the TOP-LEVEL tie_word_embeddings is true; SmolVLM sets it false and ships lm_head.
 *
 * Supported sizes: every buffer is checked against maxStorageBufferBindingSize before allocation. The text MLP of the
 * prefill runs in row chunks (at most 2048 rows, fewer if an intermediate row block would exceed the binding limit), so
 * the largest per-prompt bindings are [T, numHeads * headDim] f32 (18 MiB at T = 8192 for SmolVLM-256M) and the
 * attention works without a [T, T] buffer: prompts of 8K+ tokens fit the 128 MiB default binding limit.
 */
import type { GpuContext } from './gpu';
import type { GpuWeights } from './weights';
import type { RaggedKvCache } from './kv-cache';
import { allocateModelBuffer, BufferScope, type ModelBufferCategory } from './model-buffers';
import { imageTokenRuns, mergeImageFeatures } from './connector';
import { add } from './ops/add';
import { embedding } from './ops/embedding';
import { matmul } from './ops/matmul';
import { DecodeStep, type DecodeStepBuffers } from './decode-step';
import { rmsNorm } from './ops/norm';
import { rope } from './ops/rope';
import { swiglu } from './ops/activation';
import { argmax, readSampled, sampledWords, sampleTopP } from './ops/sampling';
import { prefillAttention } from './ops/attention';
import type { ModelConfig } from '../model-io/config';
import { idefics3Names } from '../model-io/idefics3';

/**
 * Called during the prefill for each text layer once its q (after RoPE, [tokens, numHeads, headDim]) and K/V
 * ([tokens, numKvHeads, headDim]) are computed, before K/V are stored in the cache. Returns the layer's kept positions
 * (u32, the heads' ascending lists concatenated, head g holding cache.layout.keptPerHead[layer][g] entries) or null to
 * keep positions 0..kept-1 of every head. The buffers are only valid for commands recorded inside the callback.
 */
export type LayerKvSelector = (layer: number, q: GPUBuffer, k: GPUBuffer, v: GPUBuffer, tokens: number) => Promise<GPUBuffer | null> | GPUBuffer | null;

/**
 * Hooks to probe attention without reading whole matrices back. onLayerQuery is called once per text layer for the
 * query of the token being predicted (the last prompt position during the prefill, then each decoded token), after that
 * layer's cache holds every key the query attends to; q is [numHeads, headDim] (post-RoPE), valid only for commands
 * recorded inside the callback. onStepDone runs after each token is picked and may read back what was recorded.
 */
export interface AttentionHooks {
  onLayerQuery(layer: number, q: GPUBuffer, cache: RaggedKvCache, stepIndex: number): void;
  onStepDone?(stepIndex: number, tokenId: number): Promise<void> | void;
}

export interface PrefillOptions {
  selectKept?: LayerKvSelector;
  attentionHooks?: AttentionHooks;
  /** Checked between layers (the prefill yields to the event loop there, so a stop message can arrive). */
  signal?: AbortSignal;
}

/** Thrown by prefill when its signal is aborted; generate turns it into stoppedBy 'cancel'. */
export class PrefillCancelledError extends Error {
  constructor() {
    super('The prefill was cancelled.');
    this.name = 'PrefillCancelledError';
  }
}

/**
 * Lets queued events (e.g. a Stop message to the worker) run without waiting for the GPU. A MessageChannel round
 * trip, not setTimeout, because browsers clamp nested timeouts to 4 ms.
 */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/**
 * The logits of a step held NaN or an infinity (a corrupt or overflowing model file): the answer cannot go on. Step 0
 * is the prefill's token, step n the n-th decode step.
 */
export class NonFiniteLogitsError extends Error {
  constructor(readonly stepIndex: number) {
    super(
      `The model produced non-finite values (NaN or infinity) in its logits at ${stepIndex === 0 ? 'step 0 (the prefill)' : `decode step ${stepIndex}`}: ` +
        'its weights may be corrupt. The answer was stopped.',
    );
    this.name = 'NonFiniteLogitsError';
  }
}

/** One step's sampling: temperature and top-p, with the step's uniform draw in [0, 1) (temperature 0: greedy). */
export interface TokenSampling {
  temperature: number;
  topP: number;
  uniform: number;
}

export interface DecodeOptions {
  attentionHooks?: AttentionHooks;
  /** Index of the token being predicted (for the hooks); 1 for the first decode step. */
  stepIndex?: number;
}

/** Upper bound on rows per MLP chunk in the text prefill (bounds the scratch memory at long prompts). */
const maxMlpChunkRows = 2048;

/** Buffers for one-token decode steps, allocated once and reused by every step (no allocation per token). */
interface DecodeWorkspace extends DecodeStepBuffers {
  sampled: GPUBuffer;
}

/** The text decoder's kernels over the uploaded weights, with its reusable decode buffers. */
export class TextModel {
  private workspace: DecodeWorkspace | null = null;
  private readonly steps: DecodeStep;

  constructor(
    private readonly ctx: GpuContext,
    private readonly config: ModelConfig,
    private readonly weights: GpuWeights,
    lmHead: string,
  ) {
    this.steps = new DecodeStep(ctx, config, weights, lmHead);
  }

  /**
   * Text prefill over the whole prompt: fills `cache` (which must have promptLength == inputIds.length) and returns the
   * logits f32 [vocab] of the last position in a model-owned buffer, valid until the next prefill / decodeStep.
   * imageFeatures ([imageTokens, textHidden], from encodeImage) replace the embeddings at the image-token positions in order.
   */
  async prefill(inputIds: Uint32Array, imageFeatures: GPUBuffer | null, cache: RaggedKvCache, options: PrefillOptions = {}): Promise<GPUBuffer> {
    const ctx = this.ctx;
    const { text } = this.config;
    const tokens = inputIds.length;
    const dim = text.hiddenSize;
    const qDim = text.numHeads * text.headDim;
    const kvDim = text.numKvHeads * text.headDim;
    if (tokens === 0) throw new Error('prefill: empty prompt');
    if (cache.layout.promptLength !== tokens) throw new Error(`prefill: the cache was made for ${cache.layout.promptLength} prompt tokens, got ${tokens}`);
    for (const id of inputIds) if (id >= text.vocabSize) throw new Error(`prefill: token id ${id} is outside the vocabulary (${text.vocabSize})`);
    const imageRuns = imageTokenRuns(inputIds, this.config.imageTokenId);
    const imageTokens = imageRuns.reduce((n, run) => n + run.length, 0);
    if (imageTokens > 0) {
      if (!imageFeatures) throw new Error(`prefill: the prompt has ${imageTokens} image tokens but no image features were given`);
      if (imageFeatures.size < imageTokens * dim * 4) {
        throw new Error(`prefill: ${imageTokens} image tokens but the features hold only ${Math.floor(imageFeatures.size / (dim * 4))} rows`);
      }
    }
    const workspace = this.decodeWorkspace();
    const w = (name: string): GPUBuffer => this.weights.get(name);
    const mlpRows = this.mlpChunkRows(tokens);
    const scope = new BufferScope(this.ctx);
    try {
      const ids = scope.u32(tokens, 'prefill ids');
      const positions = scope.u32(tokens, 'prefill positions');
      let hidden = scope.f32(tokens * dim, 'prefill hidden');
      let hiddenNext = scope.f32(tokens * dim, 'prefill hidden next');
      const normed = scope.f32(tokens * dim, 'prefill normed');
      const q = scope.f32(tokens * qDim, 'prefill q');
      const k = scope.f32(tokens * kvDim, 'prefill k');
      const v = scope.f32(tokens * kvDim, 'prefill v');
      const attention = scope.f32(tokens * qDim, 'prefill attention');
      const projected = scope.f32(tokens * dim, 'prefill projected');
      const chunked = mlpRows < tokens;
      const chunkIn = chunked ? scope.f32(mlpRows * dim, 'prefill mlp chunk in') : normed;
      const chunkOut = chunked ? scope.f32(mlpRows * dim, 'prefill mlp chunk out') : projected;
      const gate = scope.f32(mlpRows * text.intermediateSize, 'prefill mlp gate');
      const up = scope.f32(mlpRows * text.intermediateSize, 'prefill mlp up');
      const activated = scope.f32(mlpRows * text.intermediateSize, 'prefill mlp activated');
      ctx.upload(ids, inputIds);
      ctx.upload(positions, Uint32Array.from({ length: tokens }, (_, i) => i));

      embedding(ctx, w(idefics3Names.embedTokens), ids, hidden, tokens, dim);
      if (imageFeatures) mergeImageFeatures(ctx, imageFeatures, hidden, imageRuns, dim);

      for (let layer = 0; layer < text.numLayers; layer++) {
        if (options.signal) {
          await yieldToEventLoop();
          if (options.signal.aborted) throw new PrefillCancelledError();
        }
        const lw = (part: string): GPUBuffer => w(idefics3Names.textLayer(layer, part));
        rmsNorm(ctx, hidden, lw('input_layernorm.weight'), normed, tokens, dim, text.rmsNormEps);
        matmul(ctx, normed, lw('self_attn.q_proj.weight'), null, q, tokens, dim, qDim);
        matmul(ctx, normed, lw('self_attn.k_proj.weight'), null, k, tokens, dim, kvDim);
        matmul(ctx, normed, lw('self_attn.v_proj.weight'), null, v, tokens, dim, kvDim);
        rope(ctx, q, positions, tokens, text.numHeads, text.headDim, text.ropeTheta);
        rope(ctx, k, positions, tokens, text.numKvHeads, text.headDim, text.ropeTheta);
        // SparseMM's selection sees the post-RoPE keys; prefill attention itself still uses the full K/V.
        const kept = (await options.selectKept?.(layer, q, k, v, tokens)) ?? null;
        cache.storePrefill(layer, k, v, kept);
        if (options.attentionHooks) {
          // The probe wants the last prompt query alone: copy its row into the decode workspace's q.
          ctx.record().copy(q, (tokens - 1) * qDim * 4, workspace.q, 0, qDim * 4);
          options.attentionHooks.onLayerQuery(layer, workspace.q, cache, 0);
        }
        prefillAttention(ctx, q, k, v, attention, {
          queries: tokens, keys: tokens, numHeads: text.numHeads, numKvHeads: text.numKvHeads, headDim: text.headDim, causal: true,
        });
        matmul(ctx, attention, lw('self_attn.o_proj.weight'), null, projected, tokens, qDim, dim);
        add(ctx, hidden, projected, hiddenNext, tokens * dim);
        [hidden, hiddenNext] = [hiddenNext, hidden];
        rmsNorm(ctx, hidden, lw('post_attention_layernorm.weight'), normed, tokens, dim, text.rmsNormEps);
        for (let start = 0; start < tokens; start += mlpRows) {
          const rows = Math.min(mlpRows, tokens - start);
          if (chunked) ctx.record().copy(normed, start * dim * 4, chunkIn, 0, rows * dim * 4);
          matmul(ctx, chunkIn, lw('mlp.gate_proj.weight'), null, gate, rows, dim, text.intermediateSize);
          matmul(ctx, chunkIn, lw('mlp.up_proj.weight'), null, up, rows, dim, text.intermediateSize);
          swiglu(ctx, gate, up, activated, rows * text.intermediateSize);
          matmul(ctx, activated, lw('mlp.down_proj.weight'), null, chunkOut, rows, text.intermediateSize, dim);
          if (chunked) ctx.record().copy(chunkOut, 0, projected, start * dim * 4, rows * dim * 4);
        }
        add(ctx, hidden, projected, hiddenNext, tokens * dim);
        [hidden, hiddenNext] = [hiddenNext, hidden];
        ctx.submit();
      }
      // Only the last position's logits are needed to start generating.
      ctx.record().copy(hidden, (tokens - 1) * dim * 4, workspace.hidden, 0, dim * 4);
      this.steps.finalLogits(workspace.hidden, workspace.logits);
      ctx.submit();
    } finally {
      scope.release();
    }
    return workspace.logits;
  }

  /**
   * One decode step: feeds `tokenId` at `position` (prompt length + tokens decoded before it), appends its K/V to
   * every layer of the cache and advances it; returns the next-token logits f32 [vocab] in a model-owned buffer.
   */
  decodeStep(tokenId: number, position: number, cache: RaggedKvCache, options: DecodeOptions = {}): GPUBuffer {
    const logits = this.recordDecodeStep(tokenId, position, cache, options);
    this.ctx.submit();
    return logits;
  }

  /**
   * decodeStep without the submit: the caller records more into the same command buffer (the sampling kernel, a
   * readback copy) and submits. `token` is a token id, or a GPU buffer whose first u32 is the token (what
   * recordTokenSelection wrote: the token never leaves the GPU).
   */
  recordDecodeStep(token: number | GPUBuffer, position: number, cache: RaggedKvCache, options: DecodeOptions = {}): GPUBuffer {
    const { text } = this.config;
    if (typeof token === 'number' && (!Number.isInteger(token) || token < 0 || token >= text.vocabSize)) {
      throw new Error(`decodeStep: token id ${token} is outside the vocabulary`);
    }
    const ws = this.decodeWorkspace();
    this.steps.record(ws, token, position, cache, options);
    return ws.logits;
  }

  /**
   * Records the next-token choice on the GPU (argmax, or top-p with `uniform`) into `out` (sampledWords u32: the token,
   * then the non-finite flag); nothing is read back or submitted.
   */
  recordTokenSelection(logits: GPUBuffer, out: GPUBuffer, sampling?: TokenSampling): void {
    const vocab = this.config.text.vocabSize;
    if (sampling && sampling.temperature > 0) sampleTopP(this.ctx, logits, out, vocab, sampling.temperature, sampling.topP, sampling.uniform);
    else argmax(this.ctx, logits, out, vocab);
  }

  /**
   * Picks the next token on the GPU (argmax, or top-p with `uniform`) and reads back only that token and the kernel's
   * non-finite flag; throws NonFiniteLogitsError when a logit was NaN or infinite (`stepIndex` names the step in it).
   */
  async selectToken(logits: GPUBuffer, sampling?: TokenSampling, stepIndex = 0): Promise<number> {
    const ws = this.decodeWorkspace();
    this.recordTokenSelection(logits, ws.sampled, sampling);
    const { tokenId, nonFinite } = await readSampled(this.ctx, ws.sampled);
    if (nonFinite) throw new NonFiniteLogitsError(stepIndex);
    return tokenId;
  }

  /** Frees the reused decode buffers (generate does this itself; call it after using prefill/decodeStep directly). */
  releaseWorkspace(): void {
    if (!this.workspace) return;
    this.ctx.submit();
    this.steps.releasePlans();
    for (const buffer of Object.values(this.workspace)) this.ctx.allocator.destroy(buffer);
    this.workspace = null;
  }

  /** Rows per MLP chunk in the prefill: bounded by the binding limit of an intermediate block and by maxMlpChunkRows. */
  private mlpChunkRows(tokens: number): number {
    const limit = this.ctx.device.limits.maxStorageBufferBindingSize;
    const byLimit = Math.floor(limit / (this.config.text.intermediateSize * 4));
    if (byLimit < 1) throw new Error('The text MLP does not fit one row in this GPU\'s maxStorageBufferBindingSize.');
    return Math.max(1, Math.min(tokens, maxMlpChunkRows, byLimit));
  }

  private decodeWorkspace(): DecodeWorkspace {
    if (this.workspace) return this.workspace;
    const { text } = this.config;
    const f32 = (count: number, label: string): GPUBuffer => this.allocate('activations', count * 4, `decode ${label}`);
    const qDim = text.numHeads * text.headDim;
    const kvDim = text.numKvHeads * text.headDim;
    this.workspace = {
      tokenId: this.allocate('scratch', 4, 'decode token id'),
      position: this.allocate('scratch', 4, 'decode position'),
      hidden: f32(text.hiddenSize, 'hidden'),
      q: f32(qDim, 'q'),
      k: f32(kvDim, 'k'),
      v: f32(kvDim, 'v'),
      attention: f32(qDim, 'attention'),
      activated: f32(text.intermediateSize, 'activated'),
      logits: f32(text.vocabSize, 'logits'),
      sampled: this.allocate('scratch', sampledWords * 4, 'sampled token'),
    };
    return this.workspace;
  }

  private allocate(category: ModelBufferCategory, bytes: number, label: string): GPUBuffer {
    return allocateModelBuffer(this.ctx, category, bytes, label);
  }
}
