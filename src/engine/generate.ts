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
import { type AttentionHooks, type DecodeOptions, type LayerKvSelector, NonFiniteLogitsError, PrefillCancelledError, type PrefillOptions, type TokenSampling } from './text-decoder';
import { DecodeStream } from './decode-stream';
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
  /**
   * Decode steps submitted beyond the token being read back (default 2): the GPU runs step n + 1 while the CPU reads
   * token n, and a stop token read late discards at most this many steps. 0 is the step-by-step loop (forced with
   * onLogits or attentionHooks). The answer is the same either way.
   */
  lookahead?: number;
}

/** Steps in flight beyond the one being read: enough to hide a readback and the next step's recording. */
export const defaultLookahead = 2;

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
  /** Decode steps the look-ahead ran past the stop and discarded (their tokens dropped, the cache rewound). */
  discardedSteps: number;
}

/** What the generate loop needs of a model (VlmModel). */
export interface GenerativeModel {
  readonly ctx: GpuContext;
  readonly config: ModelConfig;
  readonly weightBytes: number;
  encodeImage(pixelValues: Float32Array, numTiles: number): GPUBuffer;
  prefill(inputIds: Uint32Array, imageFeatures: GPUBuffer | null, cache: RaggedKvCache, options?: PrefillOptions): Promise<GPUBuffer>;
  decodeStep(tokenId: number, position: number, cache: RaggedKvCache, options?: DecodeOptions): GPUBuffer;
  recordDecodeStep(token: number | GPUBuffer, position: number, cache: RaggedKvCache, options?: DecodeOptions): GPUBuffer;
  recordTokenSelection(logits: GPUBuffer, out: GPUBuffer, sampling?: TokenSampling): void;
  selectToken(logits: GPUBuffer, sampling?: TokenSampling, stepIndex?: number): Promise<number>;
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
  // One uniform per selection, drawn in step order when the step is submitted: the same draws as a step-by-step loop.
  const nextSampling = (): TokenSampling | undefined => (rng && sampling ? { temperature: sampling.temperature, topP: sampling.topP, uniform: rng.next() } : undefined);
  // Logits dumps and attention probes read what one step left before the next overwrites it: no look-ahead then.
  const lookahead = onLogits || attentionHooks ? 0 : (options.lookahead ?? defaultLookahead);
  if (!Number.isInteger(lookahead) || lookahead < 0) throw new Error(`generate: lookahead must be a non-negative integer, got ${lookahead}`);
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
    discardedSteps: 0,
  };
  if (signal?.aborted) return { ...result, stoppedBy: 'cancel' };

  const started = performance.now();
  let features: GPUBuffer | null = null;
  let cache: RaggedKvCache | null = null;
  let stream: DecodeStream | null = null;
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
    stream = new DecodeStream(model, cache, { promptLength: promptTokens, maxPending: lookahead + 1 });
    const live = stream;
    stream.selectFirst(logits, nextSampling());
    // Decode steps submitted so far: at most maxNewTokens - 1 (the cache has room for no more).
    let submitted = 0;
    const submitAhead = (): void => {
      while (live.pendingCount <= lookahead && submitted < maxNewTokens - 1 && !signal?.aborted) {
        live.submitStep(nextSampling(), { attentionHooks });
        submitted += 1;
      }
    };
    submitAhead();
    let previousReadAt = 0;
    let decodeTotalMs = 0;
    for (;;) {
      const got = await stream.next();
      // Only without look-ahead do the model's logits still hold this step's (onLogits forces it).
      if (onLogits) onLogits(await model.ctx.readF32(logits, text.vocabSize), got.stepIndex);
      if (got.nonFinite) throw new NonFiniteLogitsError(got.stepIndex);
      const token = got.tokenId;
      if (got.stepIndex === 0) {
        result.prefillMs = got.readAtMs - started;
        result.textPrefillMs = result.prefillMs - result.visionMs;
        // AdaKV re-splits each layer between its heads during the prefill.
        result.keptPerHead = cache.layout.keptPerHead.map((row) => [...row]);
        // The features are only needed by the prefill.
        model.ctx.allocator.destroy(features);
        features = null;
      } else {
        // Token to token, as the reader sees them arrive (with look-ahead the CPU's recording is hidden in it).
        const stepMs = got.readAtMs - previousReadAt;
        decodeTotalMs += stepMs;
        result.decodeStepMs.push(stepMs);
      }
      previousReadAt = got.readAtMs;
      result.tokenIds.push(token);
      await attentionHooks?.onStepDone?.(got.stepIndex, token);
      onToken?.(token, got.stepIndex);
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
      submitAhead();
    }
    // Steps submitted past the stop are dropped, and the cache rewound to the tokens kept.
    result.discardedSteps = await stream.discardPending();
    const decodeSteps = result.decodeStepMs.length;
    result.decodeMsPerToken = decodeSteps > 0 ? decodeTotalMs / decodeSteps : 0;
    return result;
  } finally {
    // A failure with steps in flight: wait for their readbacks before their buffers go.
    if (stream) {
      if (stream.pendingCount > 0) await stream.discardPending().catch(() => undefined);
      stream.destroy();
    }
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
