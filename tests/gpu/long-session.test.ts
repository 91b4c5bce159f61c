/**
 * Long sessions on the engine (issue: reliability): many generations, policy switches, Stop during the prefill and
 * during decoding, and unloading must leave no GPU memory behind and the model usable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VlmModel } from '../../src/engine/model';
import type { GpuContext } from '../../src/engine/gpu';
import type { KvPolicy } from '../../src/engine/kv-policy';
import { defaultBudgetParams, type BudgetPolicy } from '../../src/sparsemm/budgets';
import { randomHeadScores } from '../../src/sparsemm/random';
import { gpuContext, randomArray } from '../helpers/gpu';
import { tinyModel, tinyPrompt } from '../helpers/tiny-model';

const { config, file } = tinyModel();
const numTiles = 2;
const pixelValues = randomArray(numTiles * config.vision.numChannels * config.vision.imageSize ** 2, 5, 1);
const inputIds = tinyPrompt(config, numTiles);
const policies: (BudgetPolicy | 'none')[] = ['none', 'full', 'sparsemm', 'snapkv', 'pyramidkv', 'adakv', 'streamingllm', 'random'];

function kvPolicy(name: BudgetPolicy | 'none'): KvPolicy | undefined {
  if (name === 'none') return undefined;
  return {
    policy: name,
    params: { ...defaultBudgetParams, budget: 10, window: 4 },
    headScores: name === 'sparsemm' ? randomHeadScores(config.text.numLayers, config.text.numHeads, 1) : undefined,
  };
}

describe('long sessions', () => {
  let ctx: GpuContext;
  let model: VlmModel;
  let weightsBefore: number;
  let reference: number[];

  beforeAll(async () => {
    ctx = await gpuContext();
    weightsBefore = ctx.allocator.bytesByCategory().weights;
    model = await VlmModel.load(ctx, file, config);
    reference = (await model.generate({ inputIds, pixelValues, numTiles, maxNewTokens: 4, eosTokenIds: [] })).tokenIds;
  });

  afterAll(() => model?.destroy());

  it('50 generations across every policy leave the live buffers and bytes where they were after the first round', async () => {
    // One round first: the scratch buffers (window scores, kept positions, split-K partials) reach their size.
    for (const name of policies) await model.generate({ inputIds, pixelValues, numTiles, maxNewTokens: 3, eosTokenIds: [], kvPolicy: kvPolicy(name) });
    const bytesAfterFirstRound = ctx.allocator.bytesByCategory();
    const buffersAfterFirstRound = ctx.allocator.liveBufferCount();
    for (let i = 0; i < 50; i++) {
      const name = policies[i % policies.length];
      const result = await model.generate({ inputIds, pixelValues, numTiles, maxNewTokens: 3, eosTokenIds: [], kvPolicy: kvPolicy(name) });
      expect(result.tokenIds.length).toBe(3);
    }
    expect(ctx.allocator.bytesByCategory()).toEqual(bytesAfterFirstRound);
    expect(ctx.allocator.liveBufferCount()).toBe(buffersAfterFirstRound);
    expect(ctx.allocator.bytesByCategory().kv).toBe(0);
  }, 300_000);

  it('Stop during the prefill returns at once with no tokens, frees everything, and the next question works', async () => {
    const before = ctx.allocator.bytesByCategory();
    const controller = new AbortController();
    let layersSeen = 0;
    const result = await model.generate({
      inputIds, pixelValues, numTiles, maxNewTokens: 4, eosTokenIds: [], signal: controller.signal,
      attentionHooks: {
        // Called inside the prefill's first layer: the Stop arrives while the prefill runs.
        onLayerQuery: () => {
          layersSeen += 1;
          controller.abort();
        },
      },
    });
    expect(result.stoppedBy).toBe('cancel');
    expect(result.tokenIds).toEqual([]);
    expect(layersSeen).toBe(1);
    expect(ctx.allocator.bytesByCategory().kv).toBe(before.kv);
    expect(ctx.allocator.bytesByCategory().activations).toBe(before.activations);
    const again = await model.generate({ inputIds, pixelValues, numTiles, maxNewTokens: 4, eosTokenIds: [] });
    expect(again.tokenIds).toEqual(reference);
  });

  it('Stop during decoding keeps the tokens so far, and the next question works', async () => {
    const controller = new AbortController();
    const result = await model.generate({
      inputIds, pixelValues, numTiles, maxNewTokens: 4, eosTokenIds: [], signal: controller.signal, kvPolicy: kvPolicy('sparsemm'),
      onToken: (_id, index) => {
        if (index === 1) controller.abort();
      },
    });
    expect(result.stoppedBy).toBe('cancel');
    expect(result.tokenIds.length).toBe(2);
    const again = await model.generate({ inputIds, pixelValues, numTiles, maxNewTokens: 4, eosTokenIds: [] });
    expect(again.tokenIds).toEqual(reference);
  });

  it('unloading the model frees its weights; loading another works', async () => {
    const withOne = ctx.allocator.bytesByCategory().weights;
    const buffersWithOne = ctx.allocator.liveBufferCount();
    expect(withOne).toBeGreaterThanOrEqual(weightsBefore + model.weightBytes);
    const other = await VlmModel.load(ctx, file, config);
    expect(ctx.allocator.bytesByCategory().weights).toBe(withOne + other.weightBytes);
    const result = await other.generate({ inputIds, pixelValues, numTiles, maxNewTokens: 4, eosTokenIds: [] });
    expect(result.tokenIds).toEqual(reference);
    other.destroy();
    expect(ctx.allocator.bytesByCategory().weights).toBe(withOne);
    expect(ctx.allocator.liveBufferCount()).toBe(buffersWithOne);
  });
});
