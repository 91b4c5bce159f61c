import { beforeAll, describe, expect, it } from 'vitest';
import { type LoadedModel } from '../../src/model-io/loader';
import type { VlmProcessor } from '../../src/model-io/processor';
import { VlmModel } from '../../src/engine/model';
import { AttentionMapRecorder } from '../../src/engine/attention-map';
import { findVisualHeads, probeChunkPositions, type ProbeSampleResult } from '../../src/engine/visual-heads';
import { accumulateSamples, ocrProbePrompt, readingOrderText, scoreSample, type HeadScoringMode } from '../../src/sparsemm/head-scoring';
import { scoreFileShape } from '../../src/sparsemm/score-file';
import { planProbeSample } from '../../src/sparsemm/probe-set';
import { nodeProbeRenderer } from '../../src/cli/probe-canvas';
import { cpuProbeRun } from '../reference/cpu-probe';
import { attention } from '../reference/cpu-ops';
import { cpuDecodeStep, cpuEncodeImage, cpuPrefill, CpuWeights } from '../reference/cpu-model';
import { gpuContext, maxAbsDiff } from '../helpers/gpu';
import { loadTinyFixture } from '../helpers/tiny-fixture';
import { roundToF16 } from '../reference/f16';

// Small probes keep the processor and the CPU reference quick; the tiny model sees them as 2 x 2 or 2 x 1 tiles + global.
const probeOptions = { width: [160, 240] as [number, number], height: [110, 170] as [number, number], chunks: [3, 5] as [number, number], fontSizePx: [14, 22] as [number, number] };

describe('visual-head search on the tiny fixture', () => {
  let loaded: LoadedModel;
  let processor: VlmProcessor;
  let model: VlmModel;
  let cpu: CpuWeights;

  beforeAll(async () => {
    ({ loaded, processor } = await loadTinyFixture());
    model = await VlmModel.load(await gpuContext(), loaded.weights, loaded.config);
    cpu = new CpuWeights(loaded.weights);
  });

  for (const mode of ['greedy', 'teacher-forcing'] as HeadScoringMode[]) {
    it(`${mode}: the score file has the model's shape and equals a CPU recomputation`, async () => {
      const renderer = nodeProbeRenderer();
      const samples: ProbeSampleResult[] = [];
      const progress: [number, number][] = [];
      const maxNewTokens = 8;
      const file = await findVisualHeads(model, processor, {
        samples: 2, seed: 3, mode, maxNewTokens, probeOptions, ...renderer,
        onSample: (sample) => samples.push(sample),
        onProgress: (done, total) => progress.push([done, total]),
      });
      const { text } = loaded.config;
      expect(scoreFileShape(file)).toEqual({ layers: text.numLayers, heads: text.numHeads });
      expect(Object.values(file).every((list) => list.length === 2)).toBe(true);
      expect(progress).toEqual([[0, 2], [1, 2], [2, 2]]);

      // CPU: same plans re-rendered, same processor, CPU forward with the top-1 key of every (layer, head) per step.
      const cpuScores = [];
      for (const sample of samples) {
        const image = renderer.renderProbe(sample.plan);
        const inputs = await processor.prepare(image, [{ role: 'user', text: ocrProbePrompt, hasImage: true }]);
        const forced = mode === 'teacher-forcing' ? processor.tokenize(` ${readingOrderText(sample.plan.chunks)}`).slice(0, maxNewTokens) : undefined;
        const run = cpuProbeRun(cpu, loaded.config, inputs.inputIds, inputs.pixelValues, inputs.numTiles, { maxNewTokens, eosTokenIds: processor.eosTokenIds, forced });
        expect(sample.tokenIds).toEqual(run.tokenIds);
        expect(sample.steps.map((step) => Array.from(step.top1))).toEqual(run.top1PerStep.map((top1) => Array.from(top1)));
        // Every chunk covers some image tokens, in the local tiles and in the global image.
        const chunks = probeChunkPositions(model, sample.plan, inputs);
        for (const chunk of chunks) expect(chunk.positions.length).toBeGreaterThanOrEqual(2);
        const steps = run.tokenIds.map((tokenId, i) => ({ tokenId, text: processor.decode([tokenId]), top1: run.top1PerStep[i] }));
        cpuScores.push(scoreSample(steps, chunks, text.numLayers, text.numHeads, mode === 'greedy' ? processor.eosTokenIds : []));
      }
      expect(file).toEqual(accumulateSamples(text.numLayers, text.numHeads, cpuScores));
      // Not a vacuous comparison: with this seed (and Debian's DejaVu/Liberation fonts) some head scores in both modes.
      expect(Object.values(file).flat().some((score) => score > 0)).toBe(true);
      if (mode === 'teacher-forcing') {
        // Fed probe text matches chunks, so the rule has steps to score on (the scores may still be zero).
        expect(samples.some((sample) => sample.result.matchedChunk.some((chunk) => chunk >= 0))).toBe(true);
      }
    });
  }

  it('the attention map holds the last step\'s attention over the image tokens, equal to the CPU softmax', async () => {
    const renderer = nodeProbeRenderer();
    const probe = planProbeSample(9, 0, renderer.measureText, probeOptions);
    const image = renderer.renderProbe(probe);
    const inputs = await processor.prepare(image, [{ role: 'user', text: ocrProbePrompt, hasImage: true }]);
    const { text } = loaded.config;
    const recorder = new AttentionMapRecorder(model.ctx, text.numLayers, text.numHeads, inputs.imageTokenPositions);
    try {
      const result = await model.generate({
        inputIds: inputs.inputIds, pixelValues: inputs.pixelValues, numTiles: inputs.numTiles, maxNewTokens: 3, eosTokenIds: [], attentionHooks: recorder,
      });
      expect(recorder.recordedStep).toBe(2);
      const maps = await recorder.read();
      expect(maps).toHaveLength(text.numLayers);
      expect(maps[0]).toHaveLength(text.numHeads);
      expect(maps[0][0]).toHaveLength(inputs.imageTokenCount);

      // CPU: the query of the last step (the second generated token fed back) over all keys, softmax per head. The
      // prompt is prefilled and the two tokens decoded as the engine does, over a cache that holds f16 K/V like it.
      const features = cpuEncodeImage(cpu, loaded.config, inputs.pixelValues, inputs.numTiles);
      const want: Float32Array[][] = [];
      const { cache } = cpuPrefill(cpu, loaded.config, inputs.inputIds, features);
      const promptLength = inputs.inputIds.length;
      cpuDecodeStep(cpu, loaded.config, result.tokenIds[0], promptLength, cache);
      const tokens = promptLength + 2;
      cpuDecodeStep(cpu, loaded.config, result.tokenIds[1], promptLength + 1, cache, (layer, q, k) => {
        // Called before this token's K/V join the cache: the keys attended are the cached rows plus its own.
        const keys = new Float32Array(tokens * k.length);
        cache.keys[layer].forEach((row, i) => keys.set(row, i * k.length));
        keys.set(roundToF16(k), (tokens - 1) * k.length);
        const { probs } = attention(q, keys, new Float32Array(keys.length), {
          queries: 1, keys: tokens, numHeads: text.numHeads, numKvHeads: text.numKvHeads, headDim: text.headDim, causal: true, queryOffset: tokens - 1,
        });
        want.push(Array.from({ length: text.numHeads }, (_, h) => Float32Array.from(inputs.imageTokenPositions, (p) => probs[h * tokens + p])));
      });
      for (let layer = 0; layer < text.numLayers; layer++) {
        for (let head = 0; head < text.numHeads; head++) expect(maxAbsDiff(maps[layer][head], want[layer][head])).toBeLessThan(1e-4);
      }
    } finally {
      recorder.destroy();
    }
  });
});
