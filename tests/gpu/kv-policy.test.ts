/**
 * The SparseMM head-wise cache inside the real engine, on the in-memory tiny model: budget policies -> GPU selection ->
 * ragged cache -> decode. Checked against the CPU reference forward with the CPU selection rule (src/sparsemm/selection.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fullCacheKept, VlmModel } from '../../src/engine/model';
import { RaggedKvCache } from '../../src/engine/kv-cache';
import { KvCompressor, type KvPolicy } from '../../src/engine/kv-policy';
import type { GpuContext } from '../../src/engine/gpu';
import { defaultBudgetParams, headCapacities, streamingKeptPositions, type BudgetParams, type BudgetPolicy } from '../../src/sparsemm/budgets';
import { selectLayerPositions } from '../../src/sparsemm/selection';
import { randomHeadScores } from '../../src/sparsemm/random';
import { argmax } from '../reference/cpu-ops';
import { cpuDecodeStep, cpuEncodeImage, cpuPrefill, CpuWeights } from '../reference/cpu-model';
import { gpuContext, maxAbsDiff, randomArray } from '../helpers/gpu';
import { tinyModel, tinyPrompt } from '../helpers/tiny-model';

const { config, file } = tinyModel();
const text = config.text;
const numTiles = 3;
const pixelValues = randomArray(numTiles * config.vision.numChannels * config.vision.imageSize ** 2, 91, 1);
const inputIds = tinyPrompt(config, numTiles); // 27 tokens
const promptLength = inputIds.length;
const steps = 5;
const headScores = randomHeadScores(text.numLayers, text.numHeads, 5);
const compressingPolicies: BudgetPolicy[] = ['snapkv', 'pyramidkv', 'adakv', 'sparsemm', 'random', 'streamingllm'];
/** GPU and CPU differ in f32 summation order only (same bf16 weights): tolerance relative to the logit scale. */
const relativeTolerance = 2e-3;

function policy(name: BudgetPolicy, overrides: Partial<BudgetParams>): KvPolicy {
  return { policy: name, params: { ...defaultBudgetParams, ...overrides }, headScores: name === 'sparsemm' ? headScores : undefined };
}

interface PolicyRun {
  logitsPerStep: Float32Array[];
  tokens: number[];
  /** [layer][kvHead] the kept prompt positions the GPU selected (null: the full cache, nothing selected). */
  kept: Int32Array[][] | null;
  keptPerHead: number[][];
  kvBytes: number;
}

let ctx: GpuContext;
let model: VlmModel;
const cpuWeights = new CpuWeights(file);
const cpuFeatures = cpuEncodeImage(cpuWeights, config, pixelValues, numTiles);

/** Prefill + greedy decode on the GPU with a policy, reading back each layer's kept positions and every step's logits. */
async function runOnGpu(kvPolicy: KvPolicy | null): Promise<PolicyRun> {
  const compressor = kvPolicy ? KvCompressor.plan(text, promptLength, kvPolicy) : null;
  const keptPerHead = compressor?.keptPerHead ?? fullCacheKept(text.numLayers, text.numKvHeads, promptLength);
  const cache = RaggedKvCache.create(ctx, {
    numLayers: text.numLayers, numKvHeads: text.numKvHeads, headDim: text.headDim, promptLength, keptPerHead, maxNewTokens: steps,
  });
  const features = model.encodeImage(pixelValues, numTiles);
  const kept: Int32Array[][] = [];
  try {
    const selectKept = compressor
      ? async (layer: number, q: GPUBuffer, k: GPUBuffer): Promise<GPUBuffer | null> => {
        const positions = await compressor.selectLayer(ctx, cache, layer, q, k);
        if (positions) {
          const perHead = cache.layout.keptPerHead[layer];
          const all = await ctx.readU32(positions, perHead.reduce((a, b) => a + b, 0));
          let start = 0;
          kept[layer] = perHead.map((n) => {
            const list = Int32Array.from(all.subarray(start, start + n));
            start += n;
            return list;
          });
        }
        return positions;
      }
      : undefined;
    const logitsPerStep = [await ctx.readF32(await model.prefill(inputIds, features, cache, { selectKept }), text.vocabSize)];
    const tokens = [argmax(logitsPerStep[0])];
    while (tokens.length < steps) {
      const logits = await ctx.readF32(model.decodeStep(tokens[tokens.length - 1], promptLength + tokens.length - 1, cache), text.vocabSize);
      logitsPerStep.push(logits);
      tokens.push(argmax(logits));
    }
    return {
      logitsPerStep, tokens, kept: kept.length > 0 ? kept : null, keptPerHead: cache.layout.keptPerHead.map((r) => [...r]), kvBytes: cache.kvBytes,
    };
  } finally {
    ctx.allocator.destroy(features);
    cache.destroy();
    model.releaseWorkspace();
  }
}

/** The CPU reference: full prefill, the CPU selection rule per layer, then decode over exactly the kept positions. */
function runOnCpu(kvPolicy: KvPolicy, forcedTokens: number[]): { kept: Int32Array[][]; logitsPerStep: Float32Array[] } {
  const { params } = kvPolicy;
  const capacities = headCapacities(kvPolicy.policy, {
    layers: text.numLayers, qHeads: text.numHeads, kvHeads: text.numKvHeads, promptLength, params, headScores: kvPolicy.headScores,
  });
  const kept: Int32Array[][] = [];
  const { logits, cache } = cpuPrefill(cpuWeights, config, inputIds, cpuFeatures, (layer, q, k) => {
    if (kvPolicy.policy === 'streamingllm') {
      const positions = streamingKeptPositions(promptLength, params);
      kept[layer] = Array.from({ length: text.numKvHeads }, () => positions.slice());
      return;
    }
    const shape = { promptLength, qHeads: text.numHeads, kvHeads: text.numKvHeads, headDim: text.headDim, window: params.window };
    const row = capacities.attentionDependent ? 'adakv' : capacities.capacity[layer];
    kept[layer] = selectLayerPositions(q, k, shape, row, params).kept;
  });
  cache.kept = { promptLength, positions: kept };
  const logitsPerStep = [logits];
  // Teacher-forced with the GPU's tokens so one near-tie cannot make every later step incomparable.
  for (let i = 1; i < forcedTokens.length; i++) {
    logitsPerStep.push(cpuDecodeStep(cpuWeights, config, forcedTokens[i - 1], promptLength + i - 1, cache));
  }
  return { kept, logitsPerStep };
}

function maxAbs(values: Float32Array): number {
  return values.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
}

describe('KV policies in the engine (tiny model, 27-token prompt)', () => {
  let full: PolicyRun;

  beforeAll(async () => {
    ctx = await gpuContext();
    model = await VlmModel.load(ctx, file, config);
    full = await runOnGpu(null);
  });

  afterAll(() => model?.destroy());

  it.each(compressingPolicies)('%s with budget >= prompt length gives exactly the full-cache logits and layout', async (name) => {
    const run = await runOnGpu(policy(name, { budget: promptLength + 1, window: 4 }));
    expect(run.kept).toBeNull();
    expect(run.keptPerHead).toEqual(full.keptPerHead);
    expect(run.kvBytes).toBe(full.kvBytes);
    expect(run.tokens).toEqual(full.tokens);
    run.logitsPerStep.forEach((logits, step) => expect(maxAbsDiff(logits, full.logitsPerStep[step]), `step ${step}`).toBe(0));
  });

  it.each(compressingPolicies)('%s with a small budget keeps the CPU rule\'s positions and decodes like a CPU attention over exactly them', async (name) => {
    const kvPolicy = policy(name, { budget: 10, window: 4, kernel: 3 });
    const run = await runOnGpu(kvPolicy);
    expect(run.kept).not.toBeNull();
    const cpu = runOnCpu(kvPolicy, run.tokens);
    for (let layer = 0; layer < text.numLayers; layer++) {
      expect(run.kept?.[layer].map((list) => [...list]), `layer ${layer}`).toEqual(cpu.kept[layer].map((list) => [...list]));
    }
    // The prefill itself attends over the whole prompt: its logits are the full cache's.
    expect(maxAbsDiff(run.logitsPerStep[0], full.logitsPerStep[0])).toBe(0);
    run.logitsPerStep.forEach((logits, step) => {
      const want = cpu.logitsPerStep[step];
      expect(maxAbsDiff(logits, want), `step ${step}`).toBeLessThan(relativeTolerance * Math.max(1, maxAbs(want)));
    });
    // Compression changes what decode sees: some later step's logits differ from the full cache.
    const changed = run.logitsPerStep.slice(1).some((logits, i) => maxAbsDiff(logits, full.logitsPerStep[i + 1]) > 1e-4);
    expect(changed).toBe(true);
  });

  it('kvBytes and the allocator\'s kv bytes equal (sum of capacities + window + decode room) x headDim x 2 (K, V) x 2 (f16)', async () => {
    const kvPolicy = policy('sparsemm', { budget: 12, window: 4 });
    const capacities = headCapacities('sparsemm', {
      layers: text.numLayers, qHeads: text.numHeads, kvHeads: text.numKvHeads, promptLength, params: kvPolicy.params, headScores,
    });
    const prefix = promptLength - kvPolicy.params.window;
    const rows = capacities.capacity.flat().reduce((sum, cap) => sum + Math.min(cap, prefix) + kvPolicy.params.window + steps, 0);
    const expected = rows * text.headDim * 2 * 2; // K and V, f16
    const kvBefore = ctx.allocator.bytesByCategory().kv;
    let kvDuring = 0;
    const result = await model.generate({
      inputIds, pixelValues, numTiles, maxNewTokens: steps, eosTokenIds: [], kvPolicy,
      onToken: () => {
        kvDuring = ctx.allocator.bytesByCategory().kv - kvBefore;
      },
    });
    expect(result.compressed).toBe(true);
    expect(result.kvBytes).toBe(expected);
    expect(kvDuring).toBe(expected);
    expect(result.kvBytes).toBeLessThan(result.fullCacheKvBytes);
    expect(result.fullCacheKvBytes).toBe(full.kvBytes);
    expect(ctx.allocator.bytesByCategory().kv).toBe(kvBefore);
  });

  it('generate with a policy but budget >= prompt gives the full-cache tokens', async () => {
    const result = await model.generate({
      inputIds, pixelValues, numTiles, maxNewTokens: steps, eosTokenIds: [], kvPolicy: policy('sparsemm', { budget: 64 }),
    });
    expect(result.compressed).toBe(false);
    expect(result.tokenIds).toEqual(full.tokens);
    expect(result.kvBytes).toBe(full.kvBytes);
  });
});
