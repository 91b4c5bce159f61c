import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NonFiniteLogitsError, VlmModel } from '../../src/engine/model';
import type { GpuContext } from '../../src/engine/gpu';
import { idefics3Names } from '../../src/model-io/idefics3';
import { cpuGenerate, CpuWeights } from '../reference/cpu-model';
import { gpuContext, randomArray } from '../helpers/gpu';
import { tinyModel, tinyPrompt } from '../helpers/tiny-model';

/** A corrupt model file (NaN weights) stops the answer with a message naming the step; the device stays usable. */
describe('non-finite logits', () => {
  const good = tinyModel();
  const { config } = good;
  const numTiles = 1;
  const pixelValues = randomArray(numTiles * config.vision.numChannels * config.vision.imageSize ** 2, 5, 1);
  const inputIds = tinyPrompt(config, numTiles);
  const steps = 6;
  const reference = cpuGenerate(new CpuWeights(good.file), config, inputIds, pixelValues, numTiles, steps).tokenIds;
  let ctx: GpuContext;
  const models: VlmModel[] = [];
  const load = async (file: typeof good.file): Promise<VlmModel> => {
    const model = await VlmModel.load(ctx, file, config);
    models.push(model);
    return model;
  };
  const generate = (model: VlmModel) => model.generate({ inputIds, pixelValues, numTiles, maxNewTokens: steps, eosTokenIds: [] });

  beforeAll(async () => {
    ctx = await gpuContext();
  });

  afterAll(() => {
    for (const model of models) model.destroy();
  });

  it('NaN in model.text_model.norm.weight: generate rejects at step 0 (the prefill), frees its buffers, and a good model then answers on the same device', async () => {
    const corrupt = await load(tinyModel((name, values) => {
      if (name === idefics3Names.finalNorm) values[3] = Number.NaN;
    }).file);
    const kvBefore = ctx.allocator.bytesByCategory().kv;
    const rejected = generate(corrupt);
    await expect(rejected).rejects.toThrow(NonFiniteLogitsError);
    await expect(rejected).rejects.toThrow(/non-finite values .* at step 0 \(the prefill\)/);
    expect(ctx.allocator.bytesByCategory().kv).toBe(kvBefore);
    // The same corrupt model is refused again the same way (nothing was left half-done).
    await expect(generate(corrupt)).rejects.toThrow(/at step 0/);

    const healthy = await load(good.file);
    expect((await generate(healthy)).tokenIds).toEqual(reference);
  });

  it('NaN in the embedding of a generated token: rejects at the decode step that feeds it', async () => {
    // The first generated token that is not in the prompt (and not generated before) is fed at decode step n + 1.
    const n = reference.findIndex((id, i) => !inputIds.includes(id) && !reference.slice(0, i).includes(id));
    expect(n).toBeGreaterThanOrEqual(0);
    expect(n + 1).toBeLessThan(steps);
    const corrupt = await load(tinyModel((name, values) => {
      if (name === idefics3Names.embedTokens) values[reference[n] * config.text.hiddenSize] = Number.POSITIVE_INFINITY;
    }).file);
    const tokens: number[] = [];
    const rejected = corrupt.generate({ inputIds, pixelValues, numTiles, maxNewTokens: steps, eosTokenIds: [], onToken: (id) => tokens.push(id) });
    await expect(rejected).rejects.toThrow(new RegExp(`at decode step ${n + 1}:`));
    expect(tokens).toEqual(reference.slice(0, n + 1));
  });
});
