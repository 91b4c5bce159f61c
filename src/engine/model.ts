/**
 * The Idefics3 / SmolVLM model on WebGPU in our own kernels: the composition of the vision tower (vision-tower.ts),
 * the connector (connector.ts), the Llama text decoder with the head-wise KV cache (text-decoder.ts) and the
 * greedy / top-p generate loop (generate.ts), over one set of uploaded weights.
 */
import type { GpuContext } from './gpu';
import { GpuWeights } from './weights';
import type { RaggedKvCache } from './kv-cache';
import { checkRequiredLimits } from './limits';
import { modelPipelines } from './model-kernels';
import { encodeImage } from './vision-tower';
import { type DecodeOptions, type PrefillOptions, TextModel, type TokenSampling } from './text-decoder';
import { generate, type GenerateOptions, type GenerateResult, type GenerativeModel } from './generate';
import type { ModelConfig } from '../model-io/config';
import { checkShapes, idefics3Names, lmHeadName, requiredTensorNames, textLayerParts } from '../model-io/idefics3';
import type { SafetensorsFile } from '../model-io/safetensors';

export type { KvPolicy } from './kv-policy';
export type { GenerateOptions, GenerateResult } from './generate';
export { fullCacheKept } from './generate';
export type { AttentionHooks, DecodeOptions, LayerKvSelector, PrefillOptions, TokenSampling } from './text-decoder';
export { NonFiniteLogitsError, PrefillCancelledError } from './text-decoder';
export { imageTokenRuns } from './connector';

/** A step of VlmModel.load, for a progress display: weights upload, then kernel compilation (done / total pipelines). */
export type ModelLoadStep =
  | { step: 'uploading weights' }
  | { step: 'compiling kernels'; done: number; total: number };

export interface ModelLoadOptions {
  onStep?: (step: ModelLoadStep) => void;
}

export class VlmModel implements GenerativeModel {
  private readonly text: TextModel;

  private constructor(
    readonly ctx: GpuContext,
    readonly config: ModelConfig,
    private readonly weights: GpuWeights,
    private readonly lmHead: string,
  ) {
    this.text = new TextModel(ctx, config, weights, lmHead);
  }

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
   * Bytes of weights one decode step reads, from the buffers as uploaded: every text layer's tensors, the final norm,
   * lm_head, and one row of the embedding table.
   */
  get decodeWeightBytes(): number {
    const { text } = this.config;
    const names = [idefics3Names.finalNorm, this.lmHead];
    for (let layer = 0; layer < text.numLayers; layer++) for (const part of textLayerParts) names.push(idefics3Names.textLayer(layer, part));
    return this.weights.bytesOf(names) + this.weights.bytesOf([idefics3Names.embedTokens]) / text.vocabSize;
  }

  /**
   * Vision tower + connector for every tile: pixelValues f32 [numTiles, C, S, S] -> a new 'activations' buffer of
   * image features f32 [numTiles * imageSeqLen, textHidden] that the caller frees (ctx.allocator.destroy).
   */
  encodeImage(pixelValues: Float32Array, numTiles: number, category: 'activations' | 'imageFeatures' = 'activations'): GPUBuffer {
    return encodeImage(this.ctx, this.weights, this.config, pixelValues, numTiles, category);
  }

  /** Text prefill over the whole prompt into `cache` (TextModel.prefill); returns the last position's logits. */
  prefill(inputIds: Uint32Array, imageFeatures: GPUBuffer | null, cache: RaggedKvCache, options: PrefillOptions = {}): Promise<GPUBuffer> {
    return this.text.prefill(inputIds, imageFeatures, cache, options);
  }

  /** One decode step (TextModel.decodeStep); returns the next-token logits in a model-owned buffer. */
  decodeStep(tokenId: number, position: number, cache: RaggedKvCache, options: DecodeOptions = {}): GPUBuffer {
    return this.text.decodeStep(tokenId, position, cache, options);
  }

  /** decodeStep recorded but not submitted; the token may be a GPU buffer (TextModel.recordDecodeStep). */
  recordDecodeStep(token: number | GPUBuffer, position: number, cache: RaggedKvCache, options: DecodeOptions = {}): GPUBuffer {
    return this.text.recordDecodeStep(token, position, cache, options);
  }

  /** Records the next-token choice into `out` on the GPU, nothing read back (TextModel.recordTokenSelection). */
  recordTokenSelection(logits: GPUBuffer, out: GPUBuffer, sampling?: TokenSampling): void {
    this.text.recordTokenSelection(logits, out, sampling);
  }

  /** Picks the next token on the GPU (TextModel.selectToken: throws NonFiniteLogitsError on NaN / Inf logits). */
  selectToken(logits: GPUBuffer, sampling?: TokenSampling, stepIndex = 0): Promise<number> {
    return this.text.selectToken(logits, sampling, stepIndex);
  }

  /** The generate loop (generate.ts): image, prefill, decode; everything it made is freed whatever happens. */
  generate(options: GenerateOptions): Promise<GenerateResult> {
    return generate(this, options);
  }

  /** Frees the reused decode buffers (generate does this itself; call it after using prefill/decodeStep directly). */
  releaseWorkspace(): void {
    this.text.releaseWorkspace();
  }

  /** Frees the weights and every buffer this model made. */
  destroy(): void {
    this.releaseWorkspace();
    this.weights.destroy();
  }
}
