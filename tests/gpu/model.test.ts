import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fullCacheKept, VlmModel } from '../../src/engine/model';
import { RaggedKvCache } from '../../src/engine/kv-cache';
import { GpuWeights, WeightTooLargeError } from '../../src/engine/weights';
import type { GpuContext } from '../../src/engine/gpu';
import { parseModelConfig, type ModelConfig } from '../../src/model-io/config';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../../src/model-io/safetensors';
import { f32ArrayToBf16 } from '../../src/model-io/bf16';
import { argmax } from '../reference/cpu-ops';
import { cpuDecodeStep, cpuEncodeImage, cpuGenerate, cpuPrefill, CpuWeights } from '../reference/cpu-model';
import { gpuContext, maxAbsDiff, randomArray } from '../helpers/gpu';

/**
 * A tiny Idefics3 model in the real formats (config.json fields, bf16 safetensors with the real tensor names), built in
 * memory: 16 px tiles of 4 px patches (16 patches, pixel shuffle 2 -> 4 image tokens per tile), 2 vision and 2 text
 * layers, GQA 3 query heads over 1 KV head. Weight scales keep activations O(1) so that logits are well spread.
 */
function tinyModel(): { config: ModelConfig; file: SafetensorsFile } {
  const raw = {
    model_type: 'idefics3',
    image_token_id: 250,
    scale_factor: 2,
    tie_word_embeddings: false,
    vision_config: {
      hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2, patch_size: 4, image_size: 16,
      num_channels: 3, layer_norm_eps: 1e-6, hidden_act: 'gelu_pytorch_tanh',
    },
    text_config: {
      hidden_size: 48, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 3, num_key_value_heads: 1, head_dim: 16,
      rms_norm_eps: 1e-5, rope_theta: 100000, vocab_size: 256, max_position_embeddings: 512, hidden_act: 'silu', eos_token_id: 2,
    },
  };
  const config = parseModelConfig(raw);
  const tensors: TensorToWrite[] = [];
  let seed = 1000;
  const add = (name: string, shape: number[], scale: number, offset = 0): void => {
    const count = shape.reduce((a, b) => a * b, 1);
    const values = randomArray(count, seed++, scale).map((x) => x + offset);
    tensors.push({ name, dtype: 'BF16', shape, data: new Uint8Array(f32ArrayToBf16(values).buffer) });
  };
  const v = config.vision;
  const t = config.text;
  const linearScale = (inFeatures: number): number => 1.7 / Math.sqrt(inFeatures);
  add('model.vision_model.embeddings.patch_embedding.weight', [v.hiddenSize, v.numChannels, v.patchSize, v.patchSize], linearScale(48));
  add('model.vision_model.embeddings.patch_embedding.bias', [v.hiddenSize], 0.1);
  add('model.vision_model.embeddings.position_embedding.weight', [v.numPatches, v.hiddenSize], 0.5);
  for (let l = 0; l < v.numLayers; l++) {
    const p = `model.vision_model.encoder.layers.${l}.`;
    add(`${p}layer_norm1.weight`, [v.hiddenSize], 0.2, 1);
    add(`${p}layer_norm1.bias`, [v.hiddenSize], 0.1);
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
      add(`${p}self_attn.${proj}.weight`, [v.hiddenSize, v.hiddenSize], linearScale(v.hiddenSize));
      add(`${p}self_attn.${proj}.bias`, [v.hiddenSize], 0.1);
    }
    add(`${p}layer_norm2.weight`, [v.hiddenSize], 0.2, 1);
    add(`${p}layer_norm2.bias`, [v.hiddenSize], 0.1);
    add(`${p}mlp.fc1.weight`, [v.intermediateSize, v.hiddenSize], linearScale(v.hiddenSize));
    add(`${p}mlp.fc1.bias`, [v.intermediateSize], 0.1);
    add(`${p}mlp.fc2.weight`, [v.hiddenSize, v.intermediateSize], linearScale(v.intermediateSize));
    add(`${p}mlp.fc2.bias`, [v.hiddenSize], 0.1);
  }
  add('model.vision_model.post_layernorm.weight', [v.hiddenSize], 0.2, 1);
  add('model.vision_model.post_layernorm.bias', [v.hiddenSize], 0.1);
  const shuffled = v.hiddenSize * config.scaleFactor ** 2;
  add('model.connector.modality_projection.proj.weight', [t.hiddenSize, shuffled], linearScale(shuffled));
  add('model.text_model.embed_tokens.weight', [t.vocabSize, t.hiddenSize], 1);
  for (let l = 0; l < t.numLayers; l++) {
    const p = `model.text_model.layers.${l}.`;
    add(`${p}input_layernorm.weight`, [t.hiddenSize], 0.2, 1);
    add(`${p}self_attn.q_proj.weight`, [t.numHeads * t.headDim, t.hiddenSize], 2 * linearScale(t.hiddenSize));
    add(`${p}self_attn.k_proj.weight`, [t.numKvHeads * t.headDim, t.hiddenSize], 2 * linearScale(t.hiddenSize));
    add(`${p}self_attn.v_proj.weight`, [t.numKvHeads * t.headDim, t.hiddenSize], linearScale(t.hiddenSize));
    add(`${p}self_attn.o_proj.weight`, [t.hiddenSize, t.numHeads * t.headDim], linearScale(t.numHeads * t.headDim));
    add(`${p}post_attention_layernorm.weight`, [t.hiddenSize], 0.2, 1);
    add(`${p}mlp.gate_proj.weight`, [t.intermediateSize, t.hiddenSize], linearScale(t.hiddenSize));
    add(`${p}mlp.up_proj.weight`, [t.intermediateSize, t.hiddenSize], linearScale(t.hiddenSize));
    add(`${p}mlp.down_proj.weight`, [t.hiddenSize, t.intermediateSize], linearScale(t.intermediateSize));
  }
  add('model.text_model.norm.weight', [t.hiddenSize], 0.2, 1);
  add('lm_head.weight', [t.vocabSize, t.hiddenSize], 3 * linearScale(t.hiddenSize));
  const bytes = writeSafetensors(tensors);
  return { config, file: SafetensorsFile.parse(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer) };
}

/** An Idefics3-style prompt: text, then per tile <fake><image>x imageSeqLen, then <fake> and text (ids are arbitrary). */
function tinyPrompt(config: ModelConfig, numTiles: number): Uint32Array {
  const ids = [1, 17, 33, 49];
  for (let tile = 0; tile < numTiles; tile++) {
    ids.push(249, 100 + tile);
    for (let i = 0; i < config.imageSeqLen; i++) ids.push(config.imageTokenId);
  }
  ids.push(249, 60, 61, 62, 63);
  return Uint32Array.from(ids);
}

function maxAbs(values: Float32Array): number {
  return values.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
}

/** GPU and CPU differ only in f32 summation order (weights are the same bf16 values): relative to the logit scale. */
const relativeTolerance = 2e-3;

describe('VlmModel on a tiny random Idefics3 model', () => {
  const { config, file } = tinyModel();
  const cpuWeights = new CpuWeights(file);
  const numTiles = 2;
  const tileValues = config.vision.numChannels * config.vision.imageSize ** 2;
  const pixelValues = randomArray(numTiles * tileValues, 77, 1);
  const inputIds = tinyPrompt(config, numTiles);
  const steps = 8;
  const reference = cpuGenerate(cpuWeights, config, inputIds, pixelValues, numTiles, steps);
  let ctx: GpuContext;
  let model: VlmModel;

  beforeAll(async () => {
    ctx = await gpuContext();
    model = await VlmModel.load(ctx, file, config);
  });

  afterAll(() => model?.destroy());

  it('uploads every tensor as packed bf16 under "weights"', () => {
    expect(model.weightBytes).toBeGreaterThan(0);
    expect(ctx.allocator.bytesByCategory().weights).toBeGreaterThanOrEqual(model.weightBytes);
  });

  it('image features match the CPU reference (vision tower + pixel shuffle + projection)', async () => {
    const features = model.encodeImage(pixelValues, numTiles);
    const got = await ctx.readF32(features, numTiles * config.imageSeqLen * config.text.hiddenSize);
    ctx.allocator.destroy(features);
    const want = cpuEncodeImage(cpuWeights, config, pixelValues, numTiles);
    expect(maxAbs(want)).toBeGreaterThan(0.1);
    expect(maxAbsDiff(got, want)).toBeLessThan(relativeTolerance * Math.max(1, maxAbs(want)));
  });

  it('prefill and every decode step give the CPU logits, and greedy tokens are identical for 8 steps', async () => {
    const features = model.encodeImage(pixelValues, numTiles);
    const cache = RaggedKvCache.create(ctx, {
      numLayers: config.text.numLayers, numKvHeads: config.text.numKvHeads, headDim: config.text.headDim,
      promptLength: inputIds.length, keptPerHead: fullCacheKept(config.text.numLayers, config.text.numKvHeads, inputIds.length), maxNewTokens: steps,
    });
    try {
      let logits = await ctx.readF32(await model.prefill(inputIds, features, cache), config.text.vocabSize);
      const tokens: number[] = [];
      for (let step = 0; step < steps; step++) {
        const want = reference.logitsPerStep[step];
        const scale = Math.max(1, maxAbs(want));
        expect(maxAbs(want)).toBeGreaterThan(1);
        expect(maxAbsDiff(logits, want), `step ${step}`).toBeLessThan(relativeTolerance * scale);
        tokens.push(argmax(logits));
        if (step + 1 < steps) logits = await ctx.readF32(model.decodeStep(tokens[step], inputIds.length + step, cache), config.text.vocabSize);
      }
      expect(tokens).toEqual(reference.tokenIds);
    } finally {
      cache.destroy();
      ctx.allocator.destroy(features);
      model.releaseWorkspace();
    }
  });

  it('the image changes the answer: image features really reach the text model', () => {
    const other = cpuPrefill(cpuWeights, config, inputIds, new Float32Array(reference.imageFeatures?.length ?? 0)).logits;
    expect(maxAbsDiff(other, reference.logitsPerStep[0])).toBeGreaterThan(1e-3);
  });

  it('text-only prompts (no image tokens) work through prefill and decode', async () => {
    const ids = Uint32Array.from([1, 5, 9, 13, 200, 7]);
    const cpu = cpuPrefill(cpuWeights, config, ids, null);
    const cache = RaggedKvCache.create(ctx, {
      numLayers: config.text.numLayers, numKvHeads: config.text.numKvHeads, headDim: config.text.headDim,
      promptLength: ids.length, keptPerHead: fullCacheKept(config.text.numLayers, config.text.numKvHeads, ids.length), maxNewTokens: 2,
    });
    try {
      const got = await ctx.readF32(await model.prefill(ids, null, cache), config.text.vocabSize);
      expect(maxAbsDiff(got, cpu.logits)).toBeLessThan(relativeTolerance * Math.max(1, maxAbs(cpu.logits)));
      const next = argmax(cpu.logits);
      const gotNext = await ctx.readF32(model.decodeStep(next, ids.length, cache), config.text.vocabSize);
      const wantNext = cpuDecodeStep(cpuWeights, config, next, ids.length, cpu.cache);
      expect(maxAbsDiff(gotNext, wantNext)).toBeLessThan(relativeTolerance * Math.max(1, maxAbs(wantNext)));
    } finally {
      cache.destroy();
      model.releaseWorkspace();
    }
  });

  it('generate (greedy) returns the CPU tokens, streams them, reports sizes and frees its buffers', async () => {
    const before = ctx.allocator.bytesByCategory();
    const streamed: [number, number][] = [];
    const result = await model.generate({
      inputIds, pixelValues, numTiles, maxNewTokens: steps, eosTokenIds: [], onToken: (id, index) => streamed.push([id, index]),
    });
    expect(result.tokenIds).toEqual(reference.tokenIds);
    expect(streamed).toEqual(reference.tokenIds.map((id, i) => [id, i]));
    expect(result.stoppedBy).toBe('max');
    expect(result.promptTokens).toBe(inputIds.length);
    expect(result.imageTokens).toBe(numTiles * config.imageSeqLen);
    const t = config.text;
    // Full cache: K and V, f32, every layer, (prompt + maxNewTokens) rows per KV head.
    expect(result.kvBytes).toBe(2 * t.numLayers * t.numKvHeads * (inputIds.length + steps) * t.headDim * 4);
    expect(result.weightBytes).toBe(model.weightBytes);
    expect(result.prefillMs).toBeGreaterThan(0);
    expect(result.decodeMsPerToken).toBeGreaterThan(0);
    const after = ctx.allocator.bytesByCategory();
    expect(after.kv).toBe(before.kv);
    expect(after.activations).toBe(before.activations);
  });

  it('stops at an EOS token (included in the output)', async () => {
    const eos = reference.tokenIds[3];
    const firstIndex = reference.tokenIds.indexOf(eos);
    const result = await model.generate({ inputIds, pixelValues, numTiles, maxNewTokens: steps, eosTokenIds: [eos] });
    expect(result.stoppedBy).toBe('eos');
    expect(result.tokenIds).toEqual(reference.tokenIds.slice(0, firstIndex + 1));
  });

  it('cancel mid-generation frees the cache and leaves the model usable', async () => {
    const before = ctx.allocator.bytesByCategory();
    const controller = new AbortController();
    const cancelled = await model.generate({
      inputIds, pixelValues, numTiles, maxNewTokens: steps, eosTokenIds: [], signal: controller.signal,
      onToken: (_id, index) => {
        if (index === 2) controller.abort();
      },
    });
    expect(cancelled.stoppedBy).toBe('cancel');
    expect(cancelled.tokenIds).toEqual(reference.tokenIds.slice(0, 3));
    const after = ctx.allocator.bytesByCategory();
    expect(after.kv).toBe(before.kv);
    expect(after.activations).toBe(before.activations);
    const again = await model.generate({ inputIds, pixelValues, numTiles, maxNewTokens: steps, eosTokenIds: [] });
    expect(again.tokenIds).toEqual(reference.tokenIds);
  });

  it('top-p sampling is reproducible from the seed, and a tiny top-p keeps only the greedy token', async () => {
    const run = (seed: number, topP: number): Promise<number[]> =>
      model.generate({ inputIds, pixelValues, numTiles, maxNewTokens: 5, eosTokenIds: [], sampling: { temperature: 1, topP, seed } }).then((r) => r.tokenIds);
    expect(await run(3, 1e-6)).toEqual(reference.tokenIds.slice(0, 5));
    const first = await run(11, 0.95);
    expect(await run(11, 0.95)).toEqual(first);
  });

  it('refuses a tensor above maxStorageBufferBindingSize before allocating anything, naming the limit', async () => {
    const smallLimit = 4096; // the tiny embedding table is 256 x 48 bf16 = 24 KiB
    const limitedDevice = { limits: { maxStorageBufferBindingSize: smallLimit, maxBufferSize: ctx.device.limits.maxBufferSize } };
    const limitedCtx = { device: limitedDevice, allocator: ctx.allocator } as unknown as GpuContext;
    const liveBefore = ctx.allocator.liveBufferCount();
    const upload = GpuWeights.upload(limitedCtx, file, ['model.text_model.norm.weight', 'model.text_model.embed_tokens.weight']);
    await expect(upload).rejects.toThrow(WeightTooLargeError);
    await expect(upload).rejects.toThrow(/maxStorageBufferBindingSize \(4096 bytes\)/);
    expect(ctx.allocator.liveBufferCount()).toBe(liveBefore);
  });
});
