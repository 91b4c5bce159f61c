/**
 * Kernels are compiled at model load (issue 14): VlmModel.load prepares every pipeline asynchronously, and no question
 * after it compiles anything, whatever path it takes (image or not, prompts short enough for the GEMV, greedy or top-p,
 * every KV policy, attention probes and maps, fidelity sweeps). The same generations check that the time to first token is reported
 * split into the vision tower and the text prefill.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VlmModel, type ModelLoadStep } from '../../src/engine/model';
import type { GpuContext } from '../../src/engine/gpu';
import { runFidelity } from '../../src/engine/fidelity-run';
import { AttentionMapRecorder, combineAttentionHooks } from '../../src/engine/attention-map';
import { attentionProbe } from '../../src/engine/ops/attention-probe';
import { defaultBudgetParams, budgetPolicies } from '../../src/sparsemm/budgets';
import { randomHeadScores } from '../../src/sparsemm/random';
import { PipelineCache } from '../../src/engine/pipelines';
import { nodeShaderSource } from '../../src/engine/shaders-node';
import { gpuContext, empty, randomArray } from '../helpers/gpu';
import { tinyModel, tinyPrompt } from '../helpers/tiny-model';

const { config, file } = tinyModel();
const numTiles = 2;
const pixelValues = randomArray(numTiles * config.vision.numChannels * config.vision.imageSize ** 2, 9, 1);
const inputIds = tinyPrompt(config, numTiles);

describe('kernels compiled at model load', () => {
  let ctx: GpuContext;
  let model: VlmModel;
  const steps: ModelLoadStep[] = [];

  beforeAll(async () => {
    // This file's own device: nothing was compiled on it before the load.
    ctx = await gpuContext();
    model = await VlmModel.load(ctx, file, config, { onStep: (step) => steps.push(step) });
  });

  afterAll(() => model?.destroy());

  it('load uploads the weights, then compiles every kernel asynchronously and reports it as a step', () => {
    expect(steps[0]).toEqual({ step: 'uploading weights' });
    const compiling = steps.filter((s) => s.step === 'compiling kernels');
    const last = compiling[compiling.length - 1];
    expect(last.step === 'compiling kernels' && last.done === last.total).toBe(true);
    expect(last.step === 'compiling kernels' ? last.total : 0).toBeGreaterThan(20);
    expect(ctx.pipelines.compilations).toEqual({ prepared: last.step === 'compiling kernels' ? last.total : -1, onFirstUse: 0 });
  });

  it('no question compiles a kernel: image prompts, short text prompts, sampling, every KV policy, probes', async () => {
    const before = ctx.pipelines.compilations;
    const withImage = await model.generate({ inputIds, pixelValues, numTiles, maxNewTokens: 3, eosTokenIds: [] });
    expect(ctx.pipelines.compilations).toEqual(before);
    // The time to first token splits into the vision tower and the text prefill.
    expect(withImage.visionMs).toBeGreaterThan(0);
    expect(withImage.textPrefillMs).toBeGreaterThan(0);
    expect(withImage.visionMs + withImage.textPrefillMs).toBeCloseTo(withImage.prefillMs, 6);
    // 1..5 tokens: the prefill's projections run the GEMV for up to 4 rows, the GEMM above.
    for (let length = 1; length <= 5; length++) {
      const textOnly = await model.generate({ inputIds: Uint32Array.from({ length }, (_, i) => 10 + i), pixelValues: new Float32Array(0), numTiles: 0, maxNewTokens: 2, eosTokenIds: [] });
      expect(textOnly.visionMs).toBe(0);
      expect(textOnly.textPrefillMs).toBe(textOnly.prefillMs);
    }
    await model.generate({ inputIds, pixelValues, numTiles, maxNewTokens: 3, eosTokenIds: [], sampling: { temperature: 0.8, topP: 0.9, seed: 3 } });
    for (const policy of budgetPolicies) {
      await model.generate({
        inputIds, pixelValues, numTiles, maxNewTokens: 3, eosTokenIds: [],
        kvPolicy: {
          policy,
          params: { ...defaultBudgetParams, budget: 10, window: 4 },
          headScores: policy === 'sparsemm' ? randomHeadScores(config.text.numLayers, config.text.numHeads, 1) : undefined,
        },
      });
    }
    const imagePositions = [...inputIds.keys()].filter((i) => inputIds[i] === config.imageTokenId);
    const map = new AttentionMapRecorder(ctx, config.text.numLayers, config.text.numHeads, imagePositions);
    const top1 = empty(ctx, config.text.numHeads);
    try {
      const topOnly = { onLayerQuery: (layer: number, q: GPUBuffer, cache: Parameters<typeof attentionProbe>[2]) => attentionProbe(ctx, q, cache, layer, config.text.numHeads, { top1 }) };
      await model.generate({ inputIds, pixelValues, numTiles, maxNewTokens: 3, eosTokenIds: [], attentionHooks: combineAttentionHooks(map, topOnly) });
    } finally {
      map.destroy();
      ctx.allocator.destroy(top1);
    }
    expect(ctx.pipelines.compilations).toEqual(before);
  }, 120_000);

  it('a fidelity sweep (every policy, teacher-forced and free-running) compiles no kernel either', async () => {
    const before = ctx.pipelines.compilations;
    const headScores = randomHeadScores(config.text.numLayers, config.text.numHeads, 1);
    const policies = budgetPolicies.map((policy) => ({ policy, params: { ...defaultBudgetParams, budget: 10, window: 4 }, headScores: policy === 'sparsemm' ? headScores : undefined }));
    const sweep = await runFidelity(model, { inputIds, pixelValues, numTiles, maxNewTokens: 3, eosTokenIds: [], policies });
    // Every case measured its steps with shaders/fidelity.wgsl: the kernel ran, and it had been compiled at load.
    expect(sweep.cases.map((c) => c.steps.length)).toEqual(policies.map(() => sweep.reference.tokenIds.length));
    expect(sweep.reference.tokenIds.length).toBeGreaterThan(0);
    expect(ctx.pipelines.compilations).toEqual(before);
  }, 120_000);

  it('prepare compiles with createComputePipelineAsync by default (the browser path), once per pipeline', async () => {
    const cache = new PipelineCache(ctx.device, nodeShaderSource);
    expect(cache.preparation).toBe('async');
    const progress: [number, number][] = [];
    await cache.prepare([{ shader: 'add' }, { shader: 'norm', entryPoint: 'rms_norm' }, { shader: 'add', entryPoint: 'main' }], (done, total) => progress.push([done, total]));
    expect(progress).toEqual([[0, 2], [1, 2], [2, 2]]);
    expect(cache.compilations).toEqual({ prepared: 2, onFirstUse: 0 });
    cache.get('add');
    cache.get('norm', 'rms_norm');
    expect(cache.compilations).toEqual({ prepared: 2, onFirstUse: 0 });
    await expect(cache.prepare([{ shader: 'add', entryPoint: 'no_such_entry_point' }])).rejects.toThrow(/add:no_such_entry_point/);
  });
});
