/**
 * Whole-model parity on the real fixture FILES: the tiny model is written to disk, loaded through the real loader
 * (node-loader's path resolution and folder source), its tokenizer and Idefics3 image processor built by createProcessor,
 * the sample PNG prepared with a chat prompt, and VlmModel's greedy tokens on dawn.node compared with the CPU reference.
 */
import { fileURLToPath } from 'node:url';
import { RawImage } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu';
import { VlmModel } from '../../src/engine/model';
import type { LoadedModel } from '../../src/model-io/loader';
import type { PreparedInputs, VlmProcessor } from '../../src/model-io/processor';
import { CpuWeights, cpuGenerate } from '../reference/cpu-model';
import { gpuContext } from '../helpers/gpu';
import { loadTinyFixture } from '../helpers/tiny-fixture';

const samplePng = fileURLToPath(new URL('../../public/samples/shapes.png', import.meta.url));
const steps = 8;

describe('the tiny fixture model from its files, end to end on dawn.node', () => {
  let loaded: LoadedModel;
  let processor: VlmProcessor;
  let inputs: PreparedInputs;
  let ctx: GpuContext;
  let model: VlmModel;

  beforeAll(async () => {
    ({ loaded, processor } = await loadTinyFixture());
    const image = await RawImage.read(samplePng);
    inputs = await processor.prepare(image, [{ role: 'user', text: 'Describe the image.', hasImage: true }]);
    ctx = await gpuContext();
    model = await VlmModel.load(ctx, loaded.weights, loaded.config);
  });

  afterAll(() => model?.destroy());

  it('prepares the sample image into 2x2 tiles + global of 16 image tokens each', () => {
    expect(inputs.numTiles).toBe(5);
    expect(inputs.imageTokenCount).toBe(inputs.numTiles * loaded.config.imageSeqLen);
    expect(inputs.pixelValues.length).toBe(inputs.numTiles * 3 * loaded.config.vision.imageSize ** 2);
  });

  it('greedy generate gives the CPU reference tokens for 8 steps', async () => {
    const reference = cpuGenerate(new CpuWeights(loaded.weights), loaded.config, inputs.inputIds, inputs.pixelValues, inputs.numTiles, steps);
    // The fixture is meant to produce varied text, not one token over and over.
    expect(new Set(reference.tokenIds).size).toBeGreaterThan(3);
    const result = await model.generate({
      inputIds: inputs.inputIds,
      pixelValues: inputs.pixelValues,
      numTiles: inputs.numTiles,
      maxNewTokens: steps,
      eosTokenIds: [],
    });
    expect(result.tokenIds).toEqual(reference.tokenIds);
    expect(result.promptTokens).toBe(inputs.inputIds.length);
    expect(result.imageTokens).toBe(inputs.imageTokenCount);
    expect(result.stoppedBy).toBe('max');
    // The tokens decode through the fixture's tokenizer.
    expect(typeof processor.decode(result.tokenIds)).toBe('string');
  });

  it('the image matters: a different picture changes the CPU and GPU answer alike', async () => {
    const flipped = new Float32Array(inputs.pixelValues.length);
    for (let i = 0; i < flipped.length; i++) flipped[i] = -inputs.pixelValues[i];
    const reference = cpuGenerate(new CpuWeights(loaded.weights), loaded.config, inputs.inputIds, flipped, inputs.numTiles, 3);
    const original = cpuGenerate(new CpuWeights(loaded.weights), loaded.config, inputs.inputIds, inputs.pixelValues, inputs.numTiles, 1);
    expect(Array.from(reference.logitsPerStep[0])).not.toEqual(Array.from(original.logitsPerStep[0]));
    const result = await model.generate({ inputIds: inputs.inputIds, pixelValues: flipped, numTiles: inputs.numTiles, maxNewTokens: 3, eosTokenIds: [] });
    expect(result.tokenIds).toEqual(reference.tokenIds);
  });
});

// q8 / q4: the text projections and lm_head quantized while loading; the CPU reference then computes with the CPU
// quantizer's dequantized weights (tests/reference/cpu-model.ts CpuWeights), so the greedy tokens must agree exactly.
for (const weightFormat of ['q8', 'q4'] as const) {
  describe(`the tiny fixture in ${weightFormat}: greedy tokens equal the CPU reference on the dequantized weights`, () => {
    let loaded: LoadedModel;
    let processor: VlmProcessor;
    let ctx: GpuContext;
    let model: VlmModel;

    beforeAll(async () => {
      ({ loaded, processor } = await loadTinyFixture());
      ctx = await gpuContext();
      model = await VlmModel.load(ctx, loaded.weights, loaded.config, { weightFormat });
    });

    afterAll(() => model?.destroy());

    it('quantizes every projection and lm_head of the fixture (dims are whole blocks), in fewer bytes than bf16', () => {
      expect(model.weightFormat).toBe(weightFormat);
      expect(model.loadedWeights.note).toBeNull();
      expect(model.weightBytes).toBe(model.loadedWeights.bytesByFormat[weightFormat]);
      expect(model.weightBytes).toBeLessThan(model.loadedWeights.bytesByFormat.bf16);
    });

    for (const withImage of [true, false]) {
      it(`${withImage ? 'image' : 'text-only'} prompt, 6 steps`, async () => {
        const image = withImage ? await RawImage.read(samplePng) : null;
        const inputs = await processor.prepare(image, [{ role: 'user', text: withImage ? 'Describe the image.' : 'Write a short poem.', hasImage: withImage }]);
        const cpuWeights = new CpuWeights(loaded.weights, loaded.config, weightFormat);
        const reference = cpuGenerate(cpuWeights, loaded.config, inputs.inputIds, inputs.pixelValues, inputs.numTiles, 6);
        expect(new Set(reference.tokenIds).size).toBeGreaterThan(2);
        const result = await model.generate({ inputIds: inputs.inputIds, pixelValues: inputs.pixelValues, numTiles: inputs.numTiles, maxNewTokens: 6, eosTokenIds: [] });
        expect(result.tokenIds).toEqual(reference.tokenIds);
      });
    }
  });
}
