/**
 * The Idefics3 / SmolVLM model on WebGPU in our own kernels: the composition of the vision tower (vision-tower.ts),
 * the connector (connector.ts), the Llama text decoder with the head-wise KV cache (text-decoder.ts) and the
 * greedy / top-p generate loop (generate.ts), over one set of uploaded weights.
 */
import type { GpuContext } from './gpu';
import { GpuWeights } from './weights';
import type { WeightFormat } from './weight-format';
import type { RaggedKvCache } from './kv-cache';
import { checkRequiredLimits } from './limits';
import { modelPipelines } from './model-kernels';
import { encodeImage } from './vision-tower';
import { type DecodeOptions, type PrefillOptions, TextModel, type TokenSampling } from './text-decoder';
import { generate, type GenerateOptions, type GenerateResult, type GenerativeModel } from './generate';
import type { ModelConfig } from '../model-io/config';
import { checkShapes, idefics3Names, requiredTensorNames, textLayerParts } from '../model-io/idefics3';
import type { SafetensorsFile } from '../model-io/safetensors';
import { describeKeptBf16, planWeights, weightBytesByFormat } from '../model-io/weight-plan';

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
  /**
   * How the text decoder's projections and lm_head are held on the GPU: 'bf16' (default, exact, as in the file), or
   * 'q8' / 'q4' blocks of 32 made while loading (src/model-io/quantize.ts; everything else stays bf16).
   */
  weightFormat?: WeightFormat;
}

/** What VlmModel.load made of the weights: the format, the bytes on the GPU, and what stayed bf16 and why. */
export interface LoadedWeights {
  format: WeightFormat;
  /** GPU bytes of every weight tensor (what the allocator counts under 'weights'). */
  bytes: number;
  /** The same model's weight bytes in each format (for the picker and the out-of-memory advice). */
  bytesByFormat: Record<WeightFormat, number>;
  /** Tensors the format would quantize that stay bf16 (input dimension not whole blocks of 32), or null. */
  note: string | null;
}

export class VlmModel implements GenerativeModel {
  private readonly text: TextModel;

  private constructor(
    readonly ctx: GpuContext,
    readonly config: ModelConfig,
    private readonly weights: GpuWeights,
    private readonly lmHead: string,
    readonly loadedWeights: LoadedWeights,
  ) {
    this.text = new TextModel(ctx, config, weights, lmHead);
  }

  /**
   * Uploads the weights (packed bf16, or the text projections and lm_head quantized to options.weightFormat; 'weights'
   * category; refuses tensors above the binding limit before allocating), then compiles every kernel the model can
   * dispatch (asynchronously), so that the first question compiles nothing.
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
    const format = options.weightFormat ?? 'bf16';
    const shapeOf = (name: string): readonly number[] | undefined => (has(name) ? weights.get(name).shape : undefined);
    const plan = planWeights(config, shapeOf, format);
    const bytesByFormat = weightBytesByFormat(config, shapeOf);
    options.onStep?.({ step: 'uploading weights' });
    const uploaded = await GpuWeights.uploadPlan(ctx, weights, plan.tensors, bytesByFormat);
    try {
      await ctx.pipelines.prepare(modelPipelines(ctx, config, format), (done, total) => options.onStep?.({ step: 'compiling kernels', done, total }));
    } catch (error) {
      uploaded.destroy();
      throw error;
    }
    return new VlmModel(ctx, config, uploaded, plan.lmHead, { format, bytes: uploaded.totalBytes, bytesByFormat, note: describeKeptBf16(plan) });
  }

  get weightBytes(): number {
    return this.weights.totalBytes;
  }

  get weightFormat(): WeightFormat {
    return this.loadedWeights.format;
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
