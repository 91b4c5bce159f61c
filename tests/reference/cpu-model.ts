/**
 * Plain-TypeScript f32 forward of the whole Idefics3 / SmolVLM model, written for clarity on top of cpu-ops.ts
 * (f64 accumulation inside the ops, f32 storage between them). Test-only: the GPU forward is checked against it on the
 * tiny fixture. Weights are the file's values converted to f32 (bf16 -> f32 is exact), i.e. what the GPU sees.
 * The architecture notes (with what was checked against transformers) are at the top of src/engine/model.ts.
 */
import type { ModelConfig } from '../../src/model-io/config';
import type { SafetensorsFile } from '../../src/model-io/safetensors';
import { imageTokenRuns } from '../../src/engine/model';
import { idefics3Names, lmHeadName } from '../../src/model-io/idefics3';
import {
  addArrays, argmax, attention, embedding, geluTanh, layerNorm, linear, patchifyReference, pixelShuffleReference, rmsNorm, ropeTorchF32, swiglu,
} from './cpu-ops';
import { gatherHeadRows, raggedDecodeAttention } from './cpu-attention';
import { roundToF16 } from './f16';
import { dequantizeTensor, quantizeTensor, type WeightFormat } from '../../src/model-io/quantize';
import { planWeights, type PlannedTensor } from '../../src/model-io/weight-plan';
import { bf16ArrayToF32 } from '../../src/model-io/bf16';

/**
 * f32 views of the tensors, converted once. With a quantized `weightFormat`, the tensors the engine quantizes
 * (src/model-io/weight-plan.ts) are the CPU quantizer's dequantized weights, i.e. again exactly what the GPU computes with.
 */
export class CpuWeights {
  private readonly cache = new Map<string, Float32Array>();
  private readonly planned: Map<string, PlannedTensor> | null;
  private readonly plannedLmHead: string | null;

  constructor(
    readonly file: SafetensorsFile,
    config?: ModelConfig,
    weightFormat: WeightFormat = 'bf16',
  ) {
    const plan = config && weightFormat !== 'bf16' ? planWeights(config, (name) => (file.has(name) ? file.get(name).shape : undefined), weightFormat) : null;
    this.planned = plan ? new Map(plan.tensors.map((t) => [t.name, t])) : null;
    this.plannedLmHead = plan?.lmHead ?? null;
  }

  get(name: string): Float32Array {
    let values = this.cache.get(name);
    if (!values) {
      const tensor = this.planned?.get(name);
      if (tensor && tensor.format !== 'bf16') {
        const bf16 = bf16ArrayToF32(this.file.toBf16(tensor.source));
        values = dequantizeTensor(quantizeTensor(tensor.format, bf16, tensor.shape[0], tensor.shape[1]));
      } else {
        values = this.file.toF32(name);
      }
      this.cache.set(name, values);
    }
    return values;
  }

  /** The lm_head weight's name (a quantized copy of tied embeddings has its own). */
  lmHead(config: ModelConfig): string {
    return this.plannedLmHead ?? lmHeadName(config, (name) => this.file.has(name));
  }
}

/** Per layer, the K and V rows ([numKvHeads * headDim] each, post-RoPE K) of every position so far. */
export interface CpuKvCache {
  keys: Float32Array[][];
  values: Float32Array[][];
  /**
   * A compressed (head-wise) cache: per [layer][kvHead] the prompt positions that head kept. Decode steps then attend,
   * per KV head, to exactly those positions plus every decoded token (the GPU's RaggedKvCache semantics).
   */
  kept?: { promptLength: number; positions: Int32Array[][] };
}

/** Post-RoPE q [tokens, numHeads, headDim] and k [tokens, numKvHeads, headDim] of one layer's prefill. */
export type CpuLayerQk = (layer: number, q: Float32Array, k: Float32Array) => void;

/** Vision tower + connector: pixelValues [numTiles, C, S, S] -> image features [numTiles * imageSeqLen, textHidden]. */
export function cpuEncodeImage(weights: CpuWeights, config: ModelConfig, pixelValues: Float32Array, numTiles: number): Float32Array {
  const { vision, text, scaleFactor, imageSeqLen } = config;
  const dim = vision.hiddenSize;
  const patches = vision.numPatches;
  const tileValues = vision.numChannels * vision.imageSize * vision.imageSize;
  const w = (name: string): Float32Array => weights.get(name);
  const out = new Float32Array(numTiles * imageSeqLen * text.hiddenSize);
  for (let tile = 0; tile < numTiles; tile++) {
    const pixels = pixelValues.subarray(tile * tileValues, (tile + 1) * tileValues);
    // Conv2d(kernel = stride = patch) as a matmul over (c, ky, kx) patch rows, + bias.
    const patchRows = patchifyReference(pixels, 1, vision.numChannels, vision.imageSize, vision.imageSize, vision.patchSize);
    const patchLen = vision.numChannels * vision.patchSize * vision.patchSize;
    let hidden = linear(patchRows, w(idefics3Names.patchEmbedWeight), patches, patchLen, dim, w(idefics3Names.patchEmbedBias));
    // Full tiles: position ids 0..numPatches-1.
    hidden = addArrays(hidden, embedding(w(idefics3Names.positionEmbedding), dim, Array.from({ length: patches }, (_, i) => i)));
    for (let layer = 0; layer < vision.numLayers; layer++) {
      const lw = (part: string): Float32Array => w(idefics3Names.visionLayer(layer, part));
      const normed = layerNorm(hidden, lw('layer_norm1.weight'), lw('layer_norm1.bias'), patches, dim, vision.layerNormEps);
      const q = linear(normed, lw('self_attn.q_proj.weight'), patches, dim, dim, lw('self_attn.q_proj.bias'));
      const k = linear(normed, lw('self_attn.k_proj.weight'), patches, dim, dim, lw('self_attn.k_proj.bias'));
      const v = linear(normed, lw('self_attn.v_proj.weight'), patches, dim, dim, lw('self_attn.v_proj.bias'));
      const attended = attention(q, k, v, {
        queries: patches, keys: patches, numHeads: vision.numHeads, numKvHeads: vision.numHeads, headDim: vision.headDim, causal: false,
      }).out;
      hidden = addArrays(hidden, linear(attended, lw('self_attn.out_proj.weight'), patches, dim, dim, lw('self_attn.out_proj.bias')));
      const normed2 = layerNorm(hidden, lw('layer_norm2.weight'), lw('layer_norm2.bias'), patches, dim, vision.layerNormEps);
      const inner = geluTanh(linear(normed2, lw('mlp.fc1.weight'), patches, dim, vision.intermediateSize, lw('mlp.fc1.bias')));
      hidden = addArrays(hidden, linear(inner, lw('mlp.fc2.weight'), patches, vision.intermediateSize, dim, lw('mlp.fc2.bias')));
    }
    const post = layerNorm(hidden, w(idefics3Names.postLayerNormWeight), w(idefics3Names.postLayerNormBias), patches, dim, vision.layerNormEps);
    const shuffled = pixelShuffleReference(post, 1, patches, dim, scaleFactor);
    const shuffledDim = dim * scaleFactor * scaleFactor;
    out.set(linear(shuffled, w(idefics3Names.connectorProj), imageSeqLen, shuffledDim, text.hiddenSize), tile * imageSeqLen * text.hiddenSize);
  }
  return out;
}

/** One Llama decoder layer over `tokens` rows starting at `firstPosition`, appending K/V to the cache. */
function textLayer(
  weights: CpuWeights,
  config: ModelConfig,
  layer: number,
  hidden: Float32Array,
  tokens: number,
  firstPosition: number,
  cache: CpuKvCache,
  onLayerQk?: CpuLayerQk,
): Float32Array {
  const { text } = config;
  const dim = text.hiddenSize;
  const qDim = text.numHeads * text.headDim;
  const kvDim = text.numKvHeads * text.headDim;
  const lw = (part: string): Float32Array => weights.get(idefics3Names.textLayer(layer, part));
  const positions = Array.from({ length: tokens }, (_, i) => firstPosition + i);
  const normed = rmsNorm(hidden, lw('input_layernorm.weight'), tokens, dim, text.rmsNormEps);
  const q = ropeTorchF32(linear(normed, lw('self_attn.q_proj.weight'), tokens, dim, qDim), tokens, text.numHeads, text.headDim, positions, text.ropeTheta);
  const k = ropeTorchF32(linear(normed, lw('self_attn.k_proj.weight'), tokens, dim, kvDim), tokens, text.numKvHeads, text.headDim, positions, text.ropeTheta);
  const v = linear(normed, lw('self_attn.v_proj.weight'), tokens, dim, kvDim);
  onLayerQk?.(layer, q, k);
  // The engine's cache holds K and V in f16 (kv_cache.wgsl): store them rounded like it. Its prefill attention reads
  // the fresh f32 K/V of the prompt, not the cache, so a prefill into an empty cache attends over the f32 values.
  const fromEmpty = cache.keys[layer].length === 0;
  for (let t = 0; t < tokens; t++) {
    cache.keys[layer].push(roundToF16(k.subarray(t * kvDim, (t + 1) * kvDim)));
    cache.values[layer].push(roundToF16(v.subarray(t * kvDim, (t + 1) * kvDim)));
  }
  const keys = cache.keys[layer].length;
  let allK: Float32Array = new Float32Array(keys * kvDim);
  let allV: Float32Array = new Float32Array(keys * kvDim);
  cache.keys[layer].forEach((row, i) => allK.set(row, i * kvDim));
  cache.values[layer].forEach((row, i) => allV.set(row, i * kvDim));
  if (fromEmpty && tokens > 1) {
    allK = k;
    allV = v;
  }
  // Causal: query i (position firstPosition + i) sees keys 0..firstPosition + i.
  const attended = cache.kept && tokens === 1
    ? raggedAttention(q, allK, allV, cache.kept.positions[layer], cache.kept.promptLength, keys, text.numHeads, text.numKvHeads, text.headDim)
    : attention(q, allK, allV, {
      queries: tokens, keys, numHeads: text.numHeads, numKvHeads: text.numKvHeads, headDim: text.headDim, causal: true, queryOffset: firstPosition,
    }).out;
  let out = addArrays(hidden, linear(attended, lw('self_attn.o_proj.weight'), tokens, qDim, dim));
  const normed2 = rmsNorm(out, lw('post_attention_layernorm.weight'), tokens, dim, text.rmsNormEps);
  const gate = linear(normed2, lw('mlp.gate_proj.weight'), tokens, dim, text.intermediateSize);
  const up = linear(normed2, lw('mlp.up_proj.weight'), tokens, dim, text.intermediateSize);
  out = addArrays(out, linear(swiglu(gate, up), lw('mlp.down_proj.weight'), tokens, text.intermediateSize, dim));
  return out;
}

/** One query per head over a compressed cache: KV head g sees its kept prompt positions, then every decoded token. */
function raggedAttention(
  q: Float32Array, allK: Float32Array, allV: Float32Array, keptPerHead: Int32Array[], promptLength: number, keys: number,
  numHeads: number, numKvHeads: number, headDim: number,
): Float32Array {
  const headKeys: Float32Array[] = [];
  const headValues: Float32Array[] = [];
  for (let g = 0; g < numKvHeads; g++) {
    const positions = [...keptPerHead[g]];
    for (let p = promptLength; p < keys; p++) positions.push(p);
    headKeys.push(gatherHeadRows(allK, numKvHeads, headDim, g, positions));
    headValues.push(gatherHeadRows(allV, numKvHeads, headDim, g, positions));
  }
  return raggedDecodeAttention(q, headKeys, headValues, numHeads, headDim).out;
}

/** Final norm + lm_head of the last row. */
function lastLogits(weights: CpuWeights, config: ModelConfig, hidden: Float32Array, tokens: number): Float32Array {
  const { text } = config;
  const last = hidden.slice((tokens - 1) * text.hiddenSize, tokens * text.hiddenSize);
  const normed = rmsNorm(last, weights.get(idefics3Names.finalNorm), 1, text.hiddenSize, text.rmsNormEps);
  return linear(normed, weights.get(weights.lmHead(config)), 1, text.hiddenSize, text.vocabSize);
}

/**
 * Text prefill: embeddings with the image features at the image-token positions (in order), all layers, logits of the
 * last position. imageFeatures: [imageTokens, textHidden] or null for a text-only prompt.
 */
export function cpuPrefill(
  weights: CpuWeights,
  config: ModelConfig,
  inputIds: Uint32Array,
  imageFeatures: Float32Array | null,
  onLayerQk?: CpuLayerQk,
): { logits: Float32Array; cache: CpuKvCache } {
  const { text } = config;
  const dim = text.hiddenSize;
  const tokens = inputIds.length;
  let hidden = embedding(weights.get(idefics3Names.embedTokens), dim, inputIds);
  let featureRow = 0;
  for (const run of imageTokenRuns(inputIds, config.imageTokenId)) {
    if (!imageFeatures) throw new Error('cpuPrefill: image tokens without image features');
    hidden.set(imageFeatures.subarray(featureRow * dim, (featureRow + run.length) * dim), run.start * dim);
    featureRow += run.length;
  }
  const cache: CpuKvCache = {
    keys: Array.from({ length: text.numLayers }, () => []),
    values: Array.from({ length: text.numLayers }, () => []),
  };
  for (let layer = 0; layer < text.numLayers; layer++) hidden = textLayer(weights, config, layer, hidden, tokens, 0, cache, onLayerQk);
  return { logits: lastLogits(weights, config, hidden, tokens), cache };
}

/** One decode step: token at `position` (= tokens already in the cache); appends to the cache, returns next logits. */
export function cpuDecodeStep(weights: CpuWeights, config: ModelConfig, tokenId: number, position: number, cache: CpuKvCache, onLayerQk?: CpuLayerQk): Float32Array {
  let hidden = embedding(weights.get(idefics3Names.embedTokens), config.text.hiddenSize, [tokenId]);
  for (let layer = 0; layer < config.text.numLayers; layer++) hidden = textLayer(weights, config, layer, hidden, 1, position, cache, onLayerQk);
  return lastLogits(weights, config, hidden, 1);
}

/** Greedy generation (no EOS stop): maxNewTokens tokens and the logits each was chosen from. */
export function cpuGenerate(
  weights: CpuWeights,
  config: ModelConfig,
  inputIds: Uint32Array,
  pixelValues: Float32Array,
  numTiles: number,
  maxNewTokens: number,
): { tokenIds: number[]; logitsPerStep: Float32Array[]; imageFeatures: Float32Array | null } {
  const imageFeatures = numTiles > 0 ? cpuEncodeImage(weights, config, pixelValues, numTiles) : null;
  const { logits, cache } = cpuPrefill(weights, config, inputIds, imageFeatures);
  const logitsPerStep = [logits];
  const tokenIds = [argmax(logits)];
  while (tokenIds.length < maxNewTokens) {
    const next = cpuDecodeStep(weights, config, tokenIds[tokenIds.length - 1], inputIds.length + tokenIds.length - 1, cache);
    logitsPerStep.push(next);
    tokenIds.push(argmax(next));
  }
  return { tokenIds, logitsPerStep, imageFeatures };
}
