/**
 * The Idefics3 / SmolVLM forward pass on WebGPU in our own kernels: SigLIP-style vision tower per tile, pixel-shuffle
 * connector, Llama text decoder with the head-wise (ragged) KV cache, and greedy / top-p generation.
 *
 * Architecture details, each checked against transformers' modeling_idefics3.py (4.46, the version SmolVLM's config
 * names), modeling_siglip.py and modeling_llama.py:
 * - Vision embeddings (Idefics3VisionEmbeddings): Conv2d(num_channels -> hidden, kernel = stride = patch_size,
 *   padding "valid") WITH bias, flattened to [patches, hidden] row-major over the patch grid; plus
 *   position_embedding(position_ids) (nn.Embedding(num_patches, hidden)). Position ids are bucketised for partially
 *   masked images: fractional coords arange(0, 1 - 1e-6, 1 / nb_patches) bucketed into boundaries
 *   arange(1/side, 1, 1/side) with right=True. For a full tile (nb_patches == side) coordinate i/side falls in bucket i,
 *   so the ids are exactly 0..num_patches-1. Every tile the Idefics3 processor produces is image_size x image_size
 *   (it resizes to multiples of max_image_size and splits; the global image is resized to image_size square), so its
 *   pixel_attention_mask is all ones and the patch mask is full: no masking and ids 0..N-1. We therefore support only
 *   full tiles (the CLI checks the mask). Idefics3Model also drops all-zero "padding" images: only batching several
 *   samples creates them; a single prompt's tiles are all real.
 * - Vision encoder layer (Idefics3EncoderLayer = SiglipEncoderLayer): pre-LN. h += out_proj(attn(layer_norm1(h)));
 *   h += fc2(gelu(fc1(layer_norm2(h)))). LayerNorm eps = vision_config.layer_norm_eps (1e-6), with weight and bias.
 *   q/k/v/out_proj are Linear WITH bias; attention is bidirectional (no mask for full tiles), scale head_dim**-0.5,
 *   softmax in f32. The MLP activation is vision_config.hidden_act = gelu_pytorch_tanh (tanh approximation).
 * - post_layernorm (LayerNorm, same eps) on the encoder output, before the connector.
 * - Connector (Idefics3Connector): pixel_shuffle(x, scale_factor) = view(b, h, w, d) -> view(b, h, w/s, d*s) ->
 *   permute(0,2,1,3) -> reshape(b, w/s, h/s, d*s*s) -> permute(0,2,1,3) -> reshape(b, seq/s^2, d*s^2); then
 *   modality_projection.proj = Linear(d*s^2 -> text hidden, bias=False). No other layer (no norm, no activation).
 * - Image features replace the embeddings at the input_ids == image_token_id positions (inputs_merger:
 *   inputs_embeds[mask] = features.view(-1, hidden)), in order: tile after tile (the processor puts the row/col tiles
 *   first and the global image last), 64 tokens per 512 px tile for SmolVLM.
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
import { GpuWeights } from './weights';
import { kvElementBytes, RaggedKvCache } from './kv-cache';
import { add } from './ops/add';
import { embedding } from './ops/embedding';
import { matmul } from './ops/matmul';
import { gemv, gemvSwiglu } from './ops/gemv';
import { layerNorm, rmsNorm } from './ops/norm';
import { rope } from './ops/rope';
import { geluTanh, swiglu } from './ops/activation';
import { argmax, sampleTopP, SeededRng } from './ops/sampling';
import { patchify, pixelShuffle } from './ops/vision-prep';
import { prefillAttention } from './ops/attention';
import { decodeAttention } from './ops/decode-attention';
import { KvCompressor, type KvPolicy } from './kv-policy';
import { checkRequiredLimits } from './limits';
import { modelPipelines } from './model-kernels';
import type { ModelConfig } from '../model-io/config';
import { checkShapes, idefics3Names, lmHeadName, requiredTensorNames } from '../model-io/idefics3';
import type { SafetensorsFile } from '../model-io/safetensors';

export type { KvPolicy };

export interface GenerateOptions {
  inputIds: Uint32Array;
  /** f32 [numTiles, channels, imageSize, imageSize] from the Idefics3 processor (normalised). */
  pixelValues: Float32Array;
  numTiles: number;
  /**
   * Image features already computed (encodeImage), one buffer per picture in prompt order, used instead of running the
   * vision tower on pixelValues (a chat reuses them across turns). The caller owns them: generate does not free them.
   */
  imageFeatures?: readonly GPUBuffer[];
  /** Tokens to generate at most, the first one (from the prefill) included. */
  maxNewTokens: number;
  eosTokenIds: number[];
  /** Omitted (or temperature 0): greedy. */
  sampling?: { temperature: number; topP: number; seed: number };
  signal?: AbortSignal;
  onToken?: (tokenId: number, stepIndex: number) => void;
  /**
   * Debugging / parity checks (generate --dump): the next-token logits f32 [vocab] of each step, read back before the
   * token is picked (a copy per step: slows decoding; the array is only valid during the call).
   */
  onLogits?: (logits: Float32Array, stepIndex: number) => void;
  /** KV-cache budget policy (SparseMM, SnapKV, ...); omitted = the full cache. */
  kvPolicy?: KvPolicy;
  /** Attention probes for visual-head scoring and heatmaps (read the full cache: use them without kvPolicy). */
  attentionHooks?: AttentionHooks;
}

export interface GenerateResult {
  tokenIds: number[];
  promptTokens: number;
  imageTokens: number;
  /** Wall time from the call to the first token on the CPU: image encoding + text prefill + first sampling. */
  prefillMs: number;
  /** Of prefillMs: the vision tower and connector over every tile, until the GPU finished them (0 without an image). */
  visionMs: number;
  /** Of prefillMs: the text prefill and picking the first token (prefillMs - visionMs). */
  textPrefillMs: number;
  /** Mean wall time per decode step (token fed back -> next token read), 0 when only one token was made. */
  decodeMsPerToken: number;
  /** Bytes of the KV cache (K and V of every layer, with room for maxNewTokens), as allocated under 'kv'. */
  kvBytes: number;
  /** What the same prompt would take with the full cache (same maxNewTokens room): kvBytes / this = the memory ratio. */
  fullCacheKvBytes: number;
  /** Prompt tokens kept per [layer][kvHead] after compression (== promptTokens everywhere for the full cache). */
  keptPerHead: number[][];
  /** Whether the policy compressed the cache (false for full, or when the prompt is shorter than the budget). */
  compressed: boolean;
  /** Wall time of each decode step in ms (token fed back -> next token read), for speed-vs-length charts. */
  decodeStepMs: number[];
  weightBytes: number;
  stoppedBy: 'eos' | 'max' | 'cancel';
}

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

export interface DecodeOptions {
  attentionHooks?: AttentionHooks;
  /** Index of the token being predicted (for the hooks); 1 for the first decode step. */
  stepIndex?: number;
}

const bufferUsage = (): GPUBufferUsageFlags => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
/** Upper bound on rows per MLP chunk in the text prefill (bounds the scratch memory at long prompts). */
const maxMlpChunkRows = 2048;

/** Buffers for one-token decode steps, allocated once and reused by every step (no allocation per token). */
interface DecodeWorkspace {
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
  sampled: GPUBuffer;
}

/** A step of VlmModel.load, for a progress display: weights upload, then kernel compilation (done / total pipelines). */
export type ModelLoadStep =
  | { step: 'uploading weights' }
  | { step: 'compiling kernels'; done: number; total: number };

export interface ModelLoadOptions {
  onStep?: (step: ModelLoadStep) => void;
}

export class VlmModel {
  private workspace: DecodeWorkspace | null = null;

  private constructor(
    readonly ctx: GpuContext,
    readonly config: ModelConfig,
    private readonly weights: GpuWeights,
    private readonly lmHead: string,
  ) {}

  /**
   * Uploads the weights (packed bf16, 'weights' category; refuses tensors above the binding limit before allocating),
   * then compiles every kernel the model can dispatch (asynchronously), so that the first question compiles nothing.
   */
  static async load(ctx: GpuContext, weights: SafetensorsFile, config: ModelConfig, options: ModelLoadOptions = {}): Promise<VlmModel> {
    // This model's shapes against the device's limits (head dim, largest tensor), before any allocation.
    checkRequiredLimits(ctx.device.limits, config);
    const has = (name: string): boolean => weights.has(name);
    const names = requiredTensorNames(config, has);
    const missing = names.filter((name) => !has(name));
    if (missing.length > 0) {
      throw new Error(`The weights lack ${missing.length} tensor(s) this Idefics3 model needs, e.g. "${missing.slice(0, 3).join('", "')}".`);
    }
    checkShapes(weights, config);
    options.onStep?.({ step: 'uploading weights' });
    const uploaded = await GpuWeights.upload(ctx, weights, names);
    try {
      await ctx.pipelines.prepare(modelPipelines(ctx, config), (done, total) => options.onStep?.({ step: 'compiling kernels', done, total }));
    } catch (error) {
      uploaded.destroy();
      throw error;
    }
    return new VlmModel(ctx, config, uploaded, lmHeadName(config, has));
  }

  get weightBytes(): number {
    return this.weights.totalBytes;
  }

  /**
   * Vision tower + connector for every tile: pixelValues f32 [numTiles, C, S, S] -> a new 'activations' buffer of
   * image features f32 [numTiles * imageSeqLen, textHidden] that the caller frees (ctx.allocator.destroy).
   * Tiles run one after another through the encoder (attention is within a tile), which bounds the activations to one tile.
   */
  encodeImage(pixelValues: Float32Array, numTiles: number, category: 'activations' | 'imageFeatures' = 'activations'): GPUBuffer {
    const { vision, text, scaleFactor, imageSeqLen } = this.config;
    const { hiddenSize: dim, numPatches: patches, patchSize: patch, imageSize: size, numChannels: channels } = vision;
    const tileValues = channels * size * size;
    if (!Number.isInteger(numTiles) || numTiles < 1) throw new Error(`encodeImage: numTiles must be a positive integer, got ${numTiles}`);
    if (pixelValues.length !== numTiles * tileValues) {
      throw new Error(`encodeImage: expected ${numTiles} x ${channels} x ${size} x ${size} = ${numTiles * tileValues} pixel values, got ${pixelValues.length}`);
    }
    const ctx = this.ctx;
    const w = (name: string): GPUBuffer => this.weights.get(name);
    const patchLen = channels * patch * patch;
    const shuffledDim = dim * scaleFactor * scaleFactor;
    const features = this.allocate(category, numTiles * imageSeqLen * text.hiddenSize * 4, 'image features');
    const scope = new BufferScope(this);
    try {
      const pixels = scope.f32(tileValues, 'vision pixels');
      const patchRows = scope.f32(patches * patchLen, 'vision patches');
      const positionIds = scope.u32(patches, 'vision position ids');
      const positions = scope.f32(patches * dim, 'vision position embeddings');
      let hidden = scope.f32(patches * dim, 'vision hidden');
      let hiddenNext = scope.f32(patches * dim, 'vision hidden next');
      const normed = scope.f32(patches * dim, 'vision normed');
      const q = scope.f32(patches * dim, 'vision q');
      const k = scope.f32(patches * dim, 'vision k');
      const v = scope.f32(patches * dim, 'vision v');
      const attention = scope.f32(patches * dim, 'vision attention');
      const projected = scope.f32(patches * dim, 'vision projected');
      const inner = scope.f32(patches * vision.intermediateSize, 'vision mlp inner');
      const innerActivated = scope.f32(patches * vision.intermediateSize, 'vision mlp activated');
      const shuffled = scope.f32(imageSeqLen * shuffledDim, 'pixel shuffle');
      const tileFeatures = scope.f32(imageSeqLen * text.hiddenSize, 'tile features');
      // Full tiles: position ids are 0..numPatches-1 (see the header comment on bucketised ids).
      ctx.upload(positionIds, Uint32Array.from({ length: patches }, (_, i) => i));

      for (let tile = 0; tile < numTiles; tile++) {
        // Uploads are queue-ordered before the next submit, so the previous tile must have been submitted (see below).
        ctx.upload(pixels, pixelValues.subarray(tile * tileValues, (tile + 1) * tileValues));
        patchify(ctx, pixels, patchRows, 1, channels, size, size, patch);
        matmul(ctx, patchRows, w(idefics3Names.patchEmbedWeight), w(idefics3Names.patchEmbedBias), hiddenNext, patches, patchLen, dim);
        embedding(ctx, w(idefics3Names.positionEmbedding), positionIds, positions, patches, dim);
        add(ctx, hiddenNext, positions, hidden, patches * dim);

        for (let layer = 0; layer < vision.numLayers; layer++) {
          const lw = (part: string): GPUBuffer => w(idefics3Names.visionLayer(layer, part));
          layerNorm(ctx, hidden, lw('layer_norm1.weight'), lw('layer_norm1.bias'), normed, patches, dim, vision.layerNormEps);
          matmul(ctx, normed, lw('self_attn.q_proj.weight'), lw('self_attn.q_proj.bias'), q, patches, dim, dim);
          matmul(ctx, normed, lw('self_attn.k_proj.weight'), lw('self_attn.k_proj.bias'), k, patches, dim, dim);
          matmul(ctx, normed, lw('self_attn.v_proj.weight'), lw('self_attn.v_proj.bias'), v, patches, dim, dim);
          prefillAttention(ctx, q, k, v, attention, {
            queries: patches, keys: patches, numHeads: vision.numHeads, numKvHeads: vision.numHeads, headDim: vision.headDim, causal: false,
          });
          matmul(ctx, attention, lw('self_attn.out_proj.weight'), lw('self_attn.out_proj.bias'), projected, patches, dim, dim);
          add(ctx, hidden, projected, hiddenNext, patches * dim);
          [hidden, hiddenNext] = [hiddenNext, hidden];
          layerNorm(ctx, hidden, lw('layer_norm2.weight'), lw('layer_norm2.bias'), normed, patches, dim, vision.layerNormEps);
          matmul(ctx, normed, lw('mlp.fc1.weight'), lw('mlp.fc1.bias'), inner, patches, dim, vision.intermediateSize);
          geluTanh(ctx, inner, innerActivated, patches * vision.intermediateSize);
          matmul(ctx, innerActivated, lw('mlp.fc2.weight'), lw('mlp.fc2.bias'), projected, patches, vision.intermediateSize, dim);
          add(ctx, hidden, projected, hiddenNext, patches * dim);
          [hidden, hiddenNext] = [hiddenNext, hidden];
          if (layer % 8 === 7) ctx.submit(); // keeps one submit well under the uniform arena's dispatch limit
        }
        layerNorm(ctx, hidden, w(idefics3Names.postLayerNormWeight), w(idefics3Names.postLayerNormBias), normed, patches, dim, vision.layerNormEps);
        pixelShuffle(ctx, normed, shuffled, 1, patches, dim, scaleFactor);
        matmul(ctx, shuffled, w(idefics3Names.connectorProj), null, tileFeatures, imageSeqLen, shuffledDim, text.hiddenSize);
        const tileBytes = imageSeqLen * text.hiddenSize * 4;
        ctx.record().copy(tileFeatures, 0, features, tile * tileBytes, tileBytes);
        ctx.submit();
      }
    } catch (error) {
      this.ctx.allocator.destroy(features);
      throw error;
    } finally {
      scope.release();
    }
    return features;
  }

  /** The pictures' precomputed features side by side in one new 'activations' buffer [imageTokens, textHidden]. */
  private joinImageFeatures(parts: readonly GPUBuffer[], imageTokens: number): GPUBuffer {
    const rowBytes = this.config.text.hiddenSize * 4;
    const total = parts.reduce((n, part) => n + part.size, 0);
    if (total !== imageTokens * rowBytes) {
      throw new Error(`generate: the prompt has ${imageTokens} image tokens but the given image features hold ${total / rowBytes} rows`);
    }
    const joined = this.allocate('activations', total, 'image features (joined)');
    const recorder = this.ctx.record();
    let offset = 0;
    for (const part of parts) {
      recorder.copy(part, 0, joined, offset, part.size);
      offset += part.size;
    }
    return joined;
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
    const scope = new BufferScope(this);
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
      if (imageFeatures) {
        let featureRow = 0;
        for (const run of imageRuns) {
          ctx.record().copy(imageFeatures, featureRow * dim * 4, hidden, run.start * dim * 4, run.length * dim * 4);
          featureRow += run.length;
        }
      }

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
      this.finalLogits(workspace.hidden, workspace);
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
    const ctx = this.ctx;
    const { text } = this.config;
    const dim = text.hiddenSize;
    const qDim = text.numHeads * text.headDim;
    const kvDim = text.numKvHeads * text.headDim;
    if (!Number.isInteger(tokenId) || tokenId < 0 || tokenId >= text.vocabSize) throw new Error(`decodeStep: token id ${tokenId} is outside the vocabulary`);
    const ws = this.decodeWorkspace();
    const w = (name: string): GPUBuffer => this.weights.get(name);
    // The previous step was submitted, so these writes cannot overtake commands that still read the old values.
    ctx.upload(ws.tokenId, Uint32Array.of(tokenId));
    ctx.upload(ws.position, Uint32Array.of(position));
    // The residual stream stays in ws.hidden: o_proj and down_proj add into it (GEMV epilogue), and every RMSNorm is
    // computed inside the GEMV that consumes it.
    const hidden = ws.hidden;
    const eps = text.rmsNormEps;
    embedding(ctx, w(idefics3Names.embedTokens), ws.tokenId, hidden, 1, dim);
    for (let layer = 0; layer < text.numLayers; layer++) {
      const lw = (part: string): GPUBuffer => w(idefics3Names.textLayer(layer, part));
      const inputNorm = { normWeight: lw('input_layernorm.weight'), eps };
      gemv(ctx, hidden, lw('self_attn.q_proj.weight'), null, ws.q, 1, dim, qDim, inputNorm);
      gemv(ctx, hidden, lw('self_attn.k_proj.weight'), null, ws.k, 1, dim, kvDim, inputNorm);
      gemv(ctx, hidden, lw('self_attn.v_proj.weight'), null, ws.v, 1, dim, kvDim, inputNorm);
      rope(ctx, ws.q, ws.position, 1, text.numHeads, text.headDim, text.ropeTheta);
      rope(ctx, ws.k, ws.position, 1, text.numKvHeads, text.headDim, text.ropeTheta);
      cache.append(layer, ws.k, ws.v);
      options.attentionHooks?.onLayerQuery(layer, ws.q, cache, options.stepIndex ?? cache.decodeSteps + 1);
      decodeAttention(ctx, ws.q, cache, layer, ws.attention, text.numHeads);
      gemv(ctx, ws.attention, lw('self_attn.o_proj.weight'), null, hidden, 1, qDim, dim, { accumulate: true });
      gemvSwiglu(ctx, hidden, lw('mlp.gate_proj.weight'), lw('mlp.up_proj.weight'), ws.activated, 1, dim, text.intermediateSize, {
        normWeight: lw('post_attention_layernorm.weight'),
        eps,
      });
      gemv(ctx, ws.activated, lw('mlp.down_proj.weight'), null, hidden, 1, text.intermediateSize, dim, { accumulate: true });
    }
    cache.advance();
    this.finalLogits(hidden, ws);
    ctx.submit();
    return ws.logits;
  }

  /** Picks the next token on the GPU (argmax, or top-p with `uniform`) and reads back only that u32. */
  async selectToken(logits: GPUBuffer, sampling?: { temperature: number; topP: number; uniform: number }): Promise<number> {
    const ws = this.decodeWorkspace();
    const vocab = this.config.text.vocabSize;
    if (sampling && sampling.temperature > 0) sampleTopP(this.ctx, logits, ws.sampled, vocab, sampling.temperature, sampling.topP, sampling.uniform);
    else argmax(this.ctx, logits, ws.sampled, vocab);
    return (await this.ctx.readU32(ws.sampled, 1))[0];
  }

  /**
   * Encodes the image, prefills, then decodes until an EOS token, maxNewTokens or the abort signal. The cache, the
   * image features and the decode buffers are freed whatever happens, so the model is ready for the next call.
   * Cancellation is checked between tokens and resolves with stoppedBy 'cancel' (it does not reject).
   */
  async generate(options: GenerateOptions): Promise<GenerateResult> {
    const { inputIds, pixelValues, numTiles, imageFeatures, maxNewTokens, eosTokenIds, sampling, signal, onToken, onLogits, kvPolicy, attentionHooks } = options;
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new Error(`generate: maxNewTokens must be a positive integer, got ${maxNewTokens}`);
    const { text } = this.config;
    const promptTokens = inputIds.length;
    const imageTokens = inputIds.reduce((n, id) => n + (id === this.config.imageTokenId ? 1 : 0), 0);
    if (numTiles > 0 && imageTokens !== numTiles * this.config.imageSeqLen) {
      throw new Error(`generate: the prompt has ${imageTokens} image tokens but ${numTiles} tiles give ${numTiles * this.config.imageSeqLen}`);
    }
    const rng = sampling && sampling.temperature > 0 ? new SeededRng(sampling.seed) : null;
    const pick = async (logits: GPUBuffer): Promise<number> => {
      if (onLogits) onLogits(await this.ctx.readF32(logits, text.vocabSize), result.tokenIds.length);
      return this.selectToken(logits, rng && sampling ? { temperature: sampling.temperature, topP: sampling.topP, uniform: rng.next() } : undefined);
    };
    const compressor = kvPolicy && kvPolicy.policy !== 'full' ? KvCompressor.plan(text, promptTokens, kvPolicy) : null;
    const keptPerHead = compressor?.keptPerHead ?? fullCacheKept(text.numLayers, text.numKvHeads, promptTokens);
    const result: GenerateResult = {
      tokenIds: [],
      promptTokens,
      imageTokens,
      prefillMs: 0,
      visionMs: 0,
      textPrefillMs: 0,
      decodeMsPerToken: 0,
      kvBytes: 0,
      fullCacheKvBytes: 2 * text.numLayers * text.numKvHeads * (promptTokens + maxNewTokens) * text.headDim * kvElementBytes,
      keptPerHead: keptPerHead.map((row) => [...row]),
      compressed: compressor?.compresses ?? false,
      decodeStepMs: [],
      weightBytes: this.weightBytes,
      stoppedBy: 'max',
    };
    if (signal?.aborted) return { ...result, stoppedBy: 'cancel' };

    const started = performance.now();
    let features: GPUBuffer | null = null;
    let cache: RaggedKvCache | null = null;
    try {
      if (imageFeatures) features = this.joinImageFeatures(imageFeatures, imageTokens);
      else if (numTiles > 0) features = this.encodeImage(pixelValues, numTiles);
      if (features) {
        // Waiting here costs one queue round trip and splits the time to first token into vision and text.
        await this.ctx.finish();
        result.visionMs = performance.now() - started;
      }
      cache = RaggedKvCache.create(this.ctx, {
        numLayers: text.numLayers, numKvHeads: text.numKvHeads, headDim: text.headDim, promptLength: promptTokens, keptPerHead, maxNewTokens,
      });
      result.kvBytes = cache.kvBytes;
      const liveCache = cache;
      const selectKept: LayerKvSelector | undefined = compressor
        ? (layer, q, k) => compressor.selectLayer(this.ctx, liveCache, layer, q, k)
        : undefined;
      let logits: GPUBuffer;
      try {
        logits = await this.prefill(inputIds, features, cache, { selectKept, attentionHooks, signal });
      } catch (error) {
        if (error instanceof PrefillCancelledError) {
          const prefillMs = performance.now() - started;
          return { ...result, prefillMs, textPrefillMs: prefillMs - result.visionMs, stoppedBy: 'cancel' };
        }
        throw error;
      }
      let token = await pick(logits);
      result.prefillMs = performance.now() - started;
      result.textPrefillMs = result.prefillMs - result.visionMs;
      // AdaKV re-splits each layer between its heads during the prefill.
      result.keptPerHead = cache.layout.keptPerHead.map((row) => [...row]);
      // The features are only needed by the prefill.
      this.ctx.allocator.destroy(features);
      features = null;
      result.tokenIds.push(token);
      await attentionHooks?.onStepDone?.(0, token);
      onToken?.(token, 0);
      let decodeSteps = 0;
      let decodeTotalMs = 0;
      for (;;) {
        if (eosTokenIds.includes(token)) {
          result.stoppedBy = 'eos';
          break;
        }
        if (result.tokenIds.length >= maxNewTokens) {
          result.stoppedBy = 'max';
          break;
        }
        if (signal?.aborted) {
          result.stoppedBy = 'cancel';
          break;
        }
        const stepStarted = performance.now();
        const stepIndex = decodeSteps + 1;
        token = await pick(this.decodeStep(token, promptTokens + decodeSteps, cache, { attentionHooks, stepIndex }));
        const stepMs = performance.now() - stepStarted;
        decodeSteps += 1;
        decodeTotalMs += stepMs;
        result.decodeStepMs.push(stepMs);
        result.tokenIds.push(token);
        await attentionHooks?.onStepDone?.(stepIndex, token);
        onToken?.(token, result.tokenIds.length - 1);
      }
      result.decodeMsPerToken = decodeSteps > 0 ? decodeTotalMs / decodeSteps : 0;
      return result;
    } finally {
      // Submit anything recorded before freeing, so no pending command refers to a destroyed buffer.
      this.ctx.submit();
      if (features) this.ctx.allocator.destroy(features);
      cache?.destroy();
      this.releaseWorkspace();
    }
  }

  /** Frees the reused decode buffers (generate does this itself; call it after using prefill/decodeStep directly). */
  releaseWorkspace(): void {
    if (!this.workspace) return;
    this.ctx.submit();
    for (const buffer of Object.values(this.workspace)) this.ctx.allocator.destroy(buffer);
    this.workspace = null;
  }

  /** Frees the weights and every buffer this model made. */
  destroy(): void {
    this.releaseWorkspace();
    this.weights.destroy();
  }

  /** Rows per MLP chunk in the prefill: bounded by the binding limit of an intermediate block and by maxMlpChunkRows. */
  private mlpChunkRows(tokens: number): number {
    const limit = this.ctx.device.limits.maxStorageBufferBindingSize;
    const byLimit = Math.floor(limit / (this.config.text.intermediateSize * 4));
    if (byLimit < 1) throw new Error('The text MLP does not fit one row in this GPU\'s maxStorageBufferBindingSize.');
    return Math.max(1, Math.min(tokens, maxMlpChunkRows, byLimit));
  }

  /** final norm + lm_head of one row `hidden` into ws.logits (the norm inside the GEMV). */
  private finalLogits(hidden: GPUBuffer, ws: DecodeWorkspace): void {
    const { text } = this.config;
    const norm = { normWeight: this.weights.get(idefics3Names.finalNorm), eps: text.rmsNormEps };
    gemv(this.ctx, hidden, this.weights.get(this.lmHead), null, ws.logits, 1, text.hiddenSize, text.vocabSize, norm);
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
      sampled: this.allocate('scratch', 4, 'sampled token'),
    };
    return this.workspace;
  }

  /** @internal Allocates a storage buffer after checking it can be bound whole. */
  allocate(category: 'activations' | 'scratch' | 'imageFeatures', bytes: number, label: string): GPUBuffer {
    const limit = this.ctx.device.limits.maxStorageBufferBindingSize;
    if (bytes > limit) {
      throw new Error(`${label} needs ${bytes} bytes, above this GPU's maxStorageBufferBindingSize (${limit} bytes): the input is too large for this adapter.`);
    }
    return this.ctx.allocator.create(category, bytes, bufferUsage(), label);
  }
}

/** Per-call activation buffers, freed together (after submitting what was recorded). */
class BufferScope {
  private readonly buffers: GPUBuffer[] = [];

  constructor(private readonly model: VlmModel) {}

  f32(count: number, label: string): GPUBuffer {
    const buffer = this.model.allocate('activations', count * 4, label);
    this.buffers.push(buffer);
    return buffer;
  }

  u32(count: number, label: string): GPUBuffer {
    const buffer = this.model.allocate('scratch', count * 4, label);
    this.buffers.push(buffer);
    return buffer;
  }

  release(): void {
    this.model.ctx.submit();
    for (const buffer of this.buffers) this.model.ctx.allocator.destroy(buffer);
    this.buffers.length = 0;
  }
}

/** Contiguous runs of the image token in the prompt (one per tile for Idefics3 prompts). */
export function imageTokenRuns(inputIds: ArrayLike<number>, imageTokenId: number): { start: number; length: number }[] {
  const runs: { start: number; length: number }[] = [];
  for (let i = 0; i < inputIds.length; i++) {
    if (inputIds[i] !== imageTokenId) continue;
    const last = runs[runs.length - 1];
    if (last && last.start + last.length === i) last.length += 1;
    else runs.push({ start: i, length: 1 });
  }
  return runs;
}

/** keptPerHead of the full cache: every head keeps the whole prompt. */
export function fullCacheKept(numLayers: number, numKvHeads: number, promptLength: number): number[][] {
  return Array.from({ length: numLayers }, () => new Array<number>(numKvHeads).fill(promptLength));
}
