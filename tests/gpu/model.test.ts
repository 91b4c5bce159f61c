import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fullCacheKept, VlmModel } from '../../src/engine/model';
import { RaggedKvCache } from '../../src/engine/kv-cache';
import { GpuWeights, WeightTooLargeError } from '../../src/engine/weights';
import type { GpuContext } from '../../src/engine/gpu';
import { argmax } from '../reference/cpu-ops';
import { cpuDecodeStep, cpuEncodeImage, cpuGenerate, cpuPrefill, CpuWeights } from '../reference/cpu-model';
import { gpuContext, maxAbsDiff, randomArray } from '../helpers/gpu';
import { tinyModel, tinyPrompt } from '../helpers/tiny-model';

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
    // Full cache: K and V, f16 (two per u32), every layer, (prompt + maxNewTokens) rows per KV head.
    expect(result.kvBytes).toBe(2 * t.numLayers * t.numKvHeads * (inputIds.length + steps) * t.headDim * 2);
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
