/**
 * The benchmark's synthetic workload: an image-heavy prompt of a given length, and per policy a KV cache filled through
 * the real selection and store kernels from random q/k/v (only the values are synthetic; see benchmark.ts).
 */
import type { ModelConfig } from '../model-io/config';
import { randomF32 } from '../sparsemm/random';
import type { BenchmarkOptions, BenchmarkPolicySpec } from './benchmark-types';
import type { GpuContext } from './gpu';
import { RaggedKvCache } from './kv-cache';
import { KvCompressor, kvPolicyFromOptions, type KvPolicy } from './kv-policy';
import { fullCacheKept, type VlmModel } from './model';
import { argmax, sampledWords } from './ops/sampling';

export const storageUsage = (): GPUBufferUsageFlags => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const bytesPerF32 = 4;

/**
 * An Idefics3-style prompt of exactly `length` tokens, image-token heavy like several tiled images: a short text head,
 * then tiles of (<fake_token_around_image>-like marker, imageSeqLen image tokens) while they fit, then text. Text ids
 * are drawn from the vocabulary, avoiding the image token.
 */
export function syntheticPrompt(config: ModelConfig, length: number, seed: number): { inputIds: Uint32Array; imageTokens: number } {
  const vocab = config.text.vocabSize;
  const imageId = config.imageTokenId;
  const next = randomF32(length, seed, 1);
  let r = 0;
  const textToken = (): number => {
    let id = Math.floor(((next[r++ % length] + 1) / 2) * vocab) % vocab;
    if (id === imageId) id = (id + 1) % vocab;
    return id;
  };
  const ids = new Uint32Array(length);
  const headText = Math.min(8, length);
  const tailText = Math.min(16, Math.max(0, length - headText));
  let i = 0;
  for (; i < headText; i++) ids[i] = textToken();
  let imageTokens = 0;
  const tile = config.imageSeqLen + 1;
  while (i + tile <= length - tailText) {
    ids[i++] = textToken(); // stands for <fake_token_around_image> / <row_i_col_j>
    for (let j = 0; j < config.imageSeqLen; j++) ids[i++] = imageId;
    imageTokens += config.imageSeqLen;
  }
  for (; i < length; i++) ids[i] = textToken();
  return { inputIds: ids, imageTokens };
}

/** One (weight format, policy) cache during the decode rounds of a prompt length. */
export interface LiveRun {
  spec: BenchmarkPolicySpec;
  /** The model that decodes this run (one per weight format) and its format's name. */
  model: VlmModel;
  weightFormat: string;
  cache: RaggedKvCache;
  compressed: boolean;
  selectMs: number;
  /** Decode steps read back so far (warm-up included). */
  step: number;
  /** Measured steps: GPU time (or wall clock without timestamps), wall clock between tokens, GPU idle before it, CPU record. */
  stepMs: number[];
  wallMs: number[];
  idleMs: number[];
  recordMs: number[];
  dispatches: number;
  kvReadPerStep: number[];
}

/** A run of another weight format on a copy of `run`'s cache (same selection, same K/V). */
export function liveRunFor(run: LiveRun, model: VlmModel, weightFormat: string): LiveRun {
  return { ...run, model, weightFormat, cache: run.cache.clone(), step: 0, stepMs: [], wallMs: [], idleMs: [], recordMs: [], dispatches: 0, kvReadPerStep: [] };
}

function kvPolicyFor(spec: BenchmarkPolicySpec, options: BenchmarkOptions): KvPolicy {
  const kvPolicy = kvPolicyFromOptions({ ...spec, window: options.window, ratio: options.ratio }, options.headScores);
  if (!kvPolicy) throw new Error('The full cache has no KV policy to plan.');
  return kvPolicy;
}

/** Builds each policy's cache for `promptLen`: real layout, real selection + store kernels, synthetic K/V values. */
export async function fillSyntheticCaches(
  ctx: GpuContext,
  model: { model: VlmModel; weightFormat: string },
  options: BenchmarkOptions,
  policies: BenchmarkPolicySpec[],
  promptLen: number,
  maxNewTokens: number,
  seed: number,
  live: LiveRun[],
  onFilled: (spec: BenchmarkPolicySpec, ms: number) => void,
  checkCancel: () => void,
): Promise<void> {
  const text = options.config.text;
  const qDim = text.numHeads * text.headDim;
  const kvDim = text.numKvHeads * text.headDim;
  const alloc = (count: number, label: string): GPUBuffer => ctx.allocator.create('scratch', count * bytesPerF32, storageUsage(), label);
  // Random q/k of scale 2 make the window softmax peaked enough that the top-k is not decided by ties alone.
  const q = alloc(promptLen * qDim, 'benchmark synthetic q');
  const k = alloc(promptLen * kvDim, 'benchmark synthetic k');
  const v = alloc(promptLen * kvDim, 'benchmark synthetic v');
  try {
    ctx.upload(q, randomF32(promptLen * qDim, seed + 1, 2));
    ctx.upload(k, randomF32(promptLen * kvDim, seed + 2, 2));
    ctx.upload(v, randomF32(promptLen * kvDim, seed + 3, 1));
    for (const spec of policies) {
      checkCancel();
      const compressor = spec.policy === 'full' ? null : KvCompressor.plan(text, promptLen, kvPolicyFor(spec, options));
      const keptPerHead = compressor?.keptPerHead.map((row) => [...row]) ?? fullCacheKept(text.numLayers, text.numKvHeads, promptLen);
      const cache = RaggedKvCache.create(ctx, {
        numLayers: text.numLayers, numKvHeads: text.numKvHeads, headDim: text.headDim, promptLength: promptLen, keptPerHead, maxNewTokens,
      });
      const run: LiveRun = {
        spec, ...model, cache, compressed: compressor?.compresses ?? false, selectMs: 0,
        step: 0, stepMs: [], wallMs: [], idleMs: [], recordMs: [], dispatches: 0, kvReadPerStep: [],
      };
      live.push(run);
      const selectStarted = performance.now();
      for (let layer = 0; layer < text.numLayers; layer++) {
        const positions = compressor ? await compressor.selectLayer(ctx, cache, layer, q, k) : null;
        cache.storePrefill(layer, k, v, positions);
        // The kept-positions scratch is shared by all layers: submit before the next layer overwrites it.
        ctx.submit();
      }
      await ctx.finish();
      run.selectMs = performance.now() - selectStarted;
      onFilled(spec, run.selectMs);
    }
  } finally {
    ctx.submit();
    for (const buffer of [q, k, v]) ctx.allocator.destroy(buffer);
  }
}

/** Wall time of the real text prefill with the policy's selection, on a synthetic image-heavy prompt. */
export async function measurePrefill(
  ctx: GpuContext,
  model: VlmModel,
  options: BenchmarkOptions,
  spec: BenchmarkPolicySpec,
  promptLen: number,
  seed: number,
): Promise<number> {
  const { config } = options;
  const text = config.text;
  const { inputIds, imageTokens } = syntheticPrompt(config, promptLen, seed + 7);
  const features = imageTokens > 0 ? ctx.allocator.create('activations', imageTokens * text.hiddenSize * bytesPerF32, storageUsage(), 'benchmark image features') : null;
  if (features) ctx.upload(features, randomF32(imageTokens * text.hiddenSize, seed + 8, 1));
  const compressor = spec.policy === 'full' ? null : KvCompressor.plan(text, promptLen, kvPolicyFor(spec, options));
  const keptPerHead = compressor?.keptPerHead.map((row) => [...row]) ?? fullCacheKept(text.numLayers, text.numKvHeads, promptLen);
  const cache = RaggedKvCache.create(ctx, {
    numLayers: text.numLayers, numKvHeads: text.numKvHeads, headDim: text.headDim, promptLength: promptLen, keptPerHead, maxNewTokens: 1,
  });
  const tokenOut = ctx.allocator.create('scratch', sampledWords * 4, storageUsage(), 'benchmark prefill token');
  try {
    await ctx.finish();
    const started = performance.now();
    const logits = await model.prefill(inputIds, features, cache, {
      selectKept: compressor ? (layer, q, k) => compressor.selectLayer(ctx, cache, layer, q, k) : undefined,
    });
    argmax(ctx, logits, tokenOut, text.vocabSize);
    await ctx.readU32(tokenOut, 1);
    return performance.now() - started;
  } finally {
    ctx.submit();
    cache.destroy();
    ctx.allocator.destroy(tokenOut);
    ctx.allocator.destroy(features);
  }
}
