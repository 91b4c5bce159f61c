/**
 * The generate loop: image features (encoded or given), the text prefill into a KV cache sized by the policy, then
 * one decode step per token until EOS, the token limit or a stop. The cache, the image features and the decode
 * buffers are freed whatever happens, so the model is ready for the next call.
 */
import type { GpuContext } from './gpu';
import { kvElementBytes, RaggedKvCache } from './kv-cache';
import { SeededRng } from './ops/sampling';
import { KvCompressor, type KvPolicy } from './kv-policy';
import { joinImageFeatures } from './connector';
import { type AttentionHooks, type DecodeOptions, type LayerKvSelector, PrefillCancelledError, type PrefillOptions } from './text-decoder';
import type { ModelConfig } from '../model-io/config';

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

/** What the generate loop needs of a model (VlmModel). */
export interface GenerativeModel {
  readonly ctx: GpuContext;
  readonly config: ModelConfig;
  readonly weightBytes: number;
  encodeImage(pixelValues: Float32Array, numTiles: number): GPUBuffer;
  prefill(inputIds: Uint32Array, imageFeatures: GPUBuffer | null, cache: RaggedKvCache, options?: PrefillOptions): Promise<GPUBuffer>;
  decodeStep(tokenId: number, position: number, cache: RaggedKvCache, options?: DecodeOptions): GPUBuffer;
  selectToken(logits: GPUBuffer, sampling?: { temperature: number; topP: number; uniform: number }, stepIndex?: number): Promise<number>;
  releaseWorkspace(): void;
}

/**
 * Encodes the image, prefills, then decodes until an EOS token, maxNewTokens or the abort signal. The cache, the
 * image features and the decode buffers are freed whatever happens, so the model is ready for the next call.
 * Cancellation is checked between tokens and resolves with stoppedBy 'cancel' (it does not reject).
 */
export async function generate(model: GenerativeModel, options: GenerateOptions): Promise<GenerateResult> {
  const { inputIds, pixelValues, numTiles, imageFeatures, maxNewTokens, eosTokenIds, sampling, signal, onToken, onLogits, kvPolicy, attentionHooks } = options;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new Error(`generate: maxNewTokens must be a positive integer, got ${maxNewTokens}`);
  const { text } = model.config;
  const promptTokens = inputIds.length;
  const imageTokens = inputIds.reduce((n, id) => n + (id === model.config.imageTokenId ? 1 : 0), 0);
  if (numTiles > 0 && imageTokens !== numTiles * model.config.imageSeqLen) {
    throw new Error(`generate: the prompt has ${imageTokens} image tokens but ${numTiles} tiles give ${numTiles * model.config.imageSeqLen}`);
  }
  const rng = sampling && sampling.temperature > 0 ? new SeededRng(sampling.seed) : null;
  const pick = async (logits: GPUBuffer): Promise<number> => {
    if (onLogits) onLogits(await model.ctx.readF32(logits, text.vocabSize), result.tokenIds.length);
    const stepIndex = result.tokenIds.length;
    return model.selectToken(logits, rng && sampling ? { temperature: sampling.temperature, topP: sampling.topP, uniform: rng.next() } : undefined, stepIndex);
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
    weightBytes: model.weightBytes,
    stoppedBy: 'max',
  };
  if (signal?.aborted) return { ...result, stoppedBy: 'cancel' };

  const started = performance.now();
  let features: GPUBuffer | null = null;
  let cache: RaggedKvCache | null = null;
  try {
    if (imageFeatures) features = joinImageFeatures(model.ctx, model.config, imageFeatures, imageTokens);
    else if (numTiles > 0) features = model.encodeImage(pixelValues, numTiles);
    if (features) {
      // Waiting here costs one queue round trip and splits the time to first token into vision and text.
      await model.ctx.finish();
      result.visionMs = performance.now() - started;
    }
    cache = RaggedKvCache.create(model.ctx, {
      numLayers: text.numLayers, numKvHeads: text.numKvHeads, headDim: text.headDim, promptLength: promptTokens, keptPerHead, maxNewTokens,
    });
    result.kvBytes = cache.kvBytes;
    const liveCache = cache;
    const selectKept: LayerKvSelector | undefined = compressor
      ? (layer, q, k) => compressor.selectLayer(model.ctx, liveCache, layer, q, k)
      : undefined;
    let logits: GPUBuffer;
    try {
      logits = await model.prefill(inputIds, features, cache, { selectKept, attentionHooks, signal });
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
    model.ctx.allocator.destroy(features);
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
      token = await pick(model.decodeStep(token, promptTokens + decodeSteps, cache, { attentionHooks, stepIndex }));
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
    model.ctx.submit();
    if (features) model.ctx.allocator.destroy(features);
    cache?.destroy();
    model.releaseWorkspace();
  }
}

/** keptPerHead of the full cache: every head keeps the whole prompt. */
export function fullCacheKept(numLayers: number, numKvHeads: number, promptLength: number): number[][] {
  return Array.from({ length: numLayers }, () => new Array<number>(numKvHeads).fill(promptLength));
}
