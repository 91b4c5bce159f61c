/**
 * Compare's lockstep decoding (engine/lockstep-decode.ts) on the tiny fixture: the full cache and SparseMM at a
 * compressing budget, prefilled A B B A and decoded one step each in turn, give each cache's tokens bit for bit as
 * separate generate() runs do (greedy, and seeded top-p), with one timing per decode step and the bytes each step read.
 */
import { fileURLToPath } from 'node:url';
import { RawImage } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kvBytesRead } from '../../src/engine/benchmark-bytes';
import type { GpuContext } from '../../src/engine/gpu';
import { kvPolicyFromOptions, type KvPolicy } from '../../src/engine/kv-policy';
import { alternatingOrder, decodeInLockstep } from '../../src/engine/lockstep-decode';
import { VlmModel } from '../../src/engine/model';
import type { LoadedModel } from '../../src/model-io/loader';
import type { PreparedInputs } from '../../src/model-io/processor';
import { gpuContext } from '../helpers/gpu';
import { loadTinyFixture } from '../helpers/tiny-fixture';

const samplePng = fileURLToPath(new URL('../../public/samples/shapes.png', import.meta.url));
const maxNewTokens = 10;

describe('lockstep decoding of two caches', { timeout: 180_000 }, () => {
  let loaded: LoadedModel;
  let inputs: PreparedInputs;
  let ctx: GpuContext;
  let model: VlmModel;
  let sparsemm: KvPolicy;
  /** The picture's features, encoded once for the tests that do not check the encoding path. */
  let features: GPUBuffer;

  beforeAll(async () => {
    const fixture = await loadTinyFixture();
    loaded = fixture.loaded;
    const image = await RawImage.read(samplePng);
    inputs = await fixture.processor.prepare(image, [{ role: 'user', text: 'Describe the image.', hasImage: true }]);
    ctx = await gpuContext();
    model = await VlmModel.load(ctx, loaded.weights, loaded.config);
    const { numLayers, numHeads } = loaded.config.text;
    // Uneven scores, so SparseMM's heads keep different counts (a real head-wise split).
    const scores = Array.from({ length: numLayers }, (_, l) => Array.from({ length: numHeads }, (_, h) => 1 + ((l * numHeads + h) % 5)));
    const policy = kvPolicyFromOptions({ policy: 'sparsemm', budget: 40, window: 8, ratio: 0.1 }, scores);
    if (!policy) throw new Error('no policy');
    sparsemm = policy;
    features = model.encodeImage(inputs.pixelValues, inputs.numTiles);
  }, 120_000);

  afterAll(() => {
    if (features) ctx.allocator.destroy(features);
    model?.destroy();
  });

  const prompt = () => ({ inputIds: inputs.inputIds, pixelValues: inputs.pixelValues, numTiles: inputs.numTiles, maxNewTokens, eosTokenIds: [] });
  /** The same prompt with the features given (the vision tower does not run). */
  const encoded = () => ({ ...prompt(), imageFeatures: [features] });

  it('alternates the order of the runs on every repeat and step', () => {
    expect([0, 1, 2, 3].map((i) => alternatingOrder(2, i))).toEqual([[0, 1], [1, 0], [0, 1], [1, 0]]);
  });

  it('gives each cache the tokens of a separate greedy run, bit for bit', async () => {
    const aloneFull = await model.generate(prompt());
    const alonePolicy = await model.generate({ ...prompt(), kvPolicy: sparsemm });
    expect(alonePolicy.compressed).toBe(true);
    const streamed: string[] = [];
    const together = await decodeInLockstep(model, { ...prompt(), policies: [undefined, sparsemm], prefillRepeats: 2, onToken: (run, _id, index) => streamed.push(`${run}:${index}`) });
    const [full, policy] = together.runs;
    expect(full.tokenIds).toEqual(aloneFull.tokenIds);
    expect(policy.tokenIds).toEqual(alonePolicy.tokenIds);
    // The two caches really differ: the policy kept fewer prompt tokens and its answer is its own.
    expect(policy.compressed).toBe(true);
    expect(policy.kvBytes).toBeLessThan(full.kvBytes);
    expect(policy.keptPerHead).toEqual(alonePolicy.keptPerHead);
    expect(full.kvBytes).toBe(aloneFull.kvBytes);
    // Both streamed, interleaved, each pair of steps in the reverse order of the one before.
    expect(streamed.slice(0, 6)).toEqual(['0:0', '1:0', '0:1', '1:1', '1:2', '0:2']);
    // Prefills A B B A, one timing each; one timing and one bytes figure per decode step.
    expect(together.prefillOrder).toEqual([0, 1, 1, 0]);
    for (const run of together.runs) {
      expect(run.stoppedBy).toBe('max');
      expect(run.prefillMs).toHaveLength(2);
      expect(run.decodeStepMs).toHaveLength(maxNewTokens - 1);
      expect(run.decodeWallMs).toHaveLength(maxNewTokens - 1);
      expect(run.decodeStepMs.every((ms) => ms > 0 && Number.isFinite(ms))).toBe(true);
    }
    expect(together.timing).toBe(ctx.hasTimestampQuery ? 'gpu-timestamps' : 'wall-clock');
    // The picture went through the vision tower once, before both runs.
    expect(together.visionMs).toBeGreaterThan(0);
    // Step 1 attends the kept prompt tokens plus the one it appended.
    const head = loaded.config.text.headDim;
    expect(full.kvReadPerStep[0]).toBe(kvBytesRead(full.keptPerHead.map((row) => row.map((n) => n + 1)), head));
    expect(policy.kvReadPerStep[0]).toBe(kvBytesRead(policy.keptPerHead.map((row) => row.map((n) => n + 1)), head));
    expect(policy.kvReadPerStep[0]).toBeLessThan(full.kvReadPerStep[0]);
    // Nothing is left allocated: caches, features and decode buffers are freed.
    expect(ctx.allocator.bytesByCategory().kv).toBe(0);
  });

  it('gives each cache the tokens of a separate seeded top-p run', async () => {
    const sampling = { temperature: 1.5, topP: 0.95, seed: 7 };
    const aloneFull = await model.generate({ ...encoded(), sampling });
    const alonePolicy = await model.generate({ ...encoded(), sampling, kvPolicy: sparsemm });
    const together = await decodeInLockstep(model, { ...encoded(), sampling, policies: [undefined, sparsemm], prefillBudgetMs: Infinity });
    expect(together.runs.map((run) => run.tokenIds)).toEqual([aloneFull.tokenIds, alonePolicy.tokenIds]);
    // Four prefills each when time allows, the order reversed on every repeat.
    expect(together.prefillOrder).toEqual([0, 1, 1, 0, 0, 1, 1, 0]);
    // Features given: no vision figure.
    expect(together.visionMs).toBe(0);
  });

  it('stops every run at once when asked', async () => {
    const controller = new AbortController();
    const together = await decodeInLockstep(model, {
      ...encoded(),
      policies: [undefined, sparsemm],
      // No time for more than the two repeats every run gets.
      prefillBudgetMs: 0,
      signal: controller.signal,
      onToken: (_run, _id, index) => {
        if (index === 2) controller.abort();
      },
    });
    expect(together.prefillOrder).toEqual([0, 1, 1, 0]);
    expect(together.runs.map((run) => run.stoppedBy)).toEqual(['cancel', 'cancel']);
    expect(together.runs.every((run) => run.tokenIds.length < maxNewTokens)).toBe(true);
    expect(ctx.allocator.bytesByCategory().kv).toBe(0);
  });
});
