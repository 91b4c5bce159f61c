/**
 * The pipelined decode (src/engine/decode-stream.ts, generate's default look-ahead): the sampled token stays on the GPU
 * and steps are submitted ahead of the readback. Its answers must equal the step-by-step loop's token for token —
 * decodeStep with the token read back, then selectToken, as generate did before — for greedy and seeded top-p, with
 * and without a picture; a stop token read late must drop the surplus steps and leave the cache as a step-by-step
 * decode would (checked by a follow-up step's logits).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecodeStream } from '../../src/engine/decode-stream';
import type { GpuContext } from '../../src/engine/gpu';
import { RaggedKvCache } from '../../src/engine/kv-cache';
import { fullCacheKept, VlmModel, type TokenSampling } from '../../src/engine/model';
import { SeededRng } from '../../src/engine/ops/sampling';
import { gpuContext, randomArray } from '../helpers/gpu';
import { tinyModel, tinyPrompt } from '../helpers/tiny-model';

interface Question {
  inputIds: Uint32Array;
  pixelValues: Float32Array;
  numTiles: number;
}

describe('pipelined decode (DecodeStream)', () => {
  const { config, file } = tinyModel();
  const { text } = config;
  const tileValues = config.vision.numChannels * config.vision.imageSize ** 2;
  const withImage: Question = { inputIds: tinyPrompt(config, 2), pixelValues: randomArray(2 * tileValues, 77, 1), numTiles: 2 };
  const textOnly: Question = { inputIds: tinyPrompt(config, 0), pixelValues: new Float32Array(0), numTiles: 0 };
  const topP = { temperature: 1.5, topP: 0.9, seed: 11 };
  let ctx: GpuContext;
  let model: VlmModel;

  beforeAll(async () => {
    ctx = await gpuContext();
    model = await VlmModel.load(ctx, file, config);
  });
  afterAll(() => model?.destroy());

  const newCache = (promptLength: number, maxNewTokens: number): RaggedKvCache =>
    RaggedKvCache.create(ctx, {
      numLayers: text.numLayers, numKvHeads: text.numKvHeads, headDim: text.headDim, promptLength,
      keptPerHead: fullCacheKept(text.numLayers, text.numKvHeads, promptLength), maxNewTokens,
    });

  /** Prefill into a fresh cache; the caller destroys it. */
  async function prefilled(question: Question, maxNewTokens: number): Promise<{ cache: RaggedKvCache; logits: GPUBuffer }> {
    const features = question.numTiles > 0 ? model.encodeImage(question.pixelValues, question.numTiles) : null;
    const cache = newCache(question.inputIds.length, maxNewTokens);
    const logits = await model.prefill(question.inputIds, features, cache);
    ctx.submit();
    ctx.allocator.destroy(features);
    return { cache, logits };
  }

  /** The step-by-step loop: read each token back, then feed it (generate's loop before the pipeline). */
  async function stepByStep(question: Question, maxNewTokens: number, sampling?: typeof topP): Promise<{ tokens: number[]; cache: RaggedKvCache }> {
    const rng = sampling ? new SeededRng(sampling.seed) : null;
    const draw = (): TokenSampling | undefined => (rng && sampling ? { temperature: sampling.temperature, topP: sampling.topP, uniform: rng.next() } : undefined);
    const { cache, logits } = await prefilled(question, maxNewTokens);
    const tokens = [await model.selectToken(logits, draw())];
    while (tokens.length < maxNewTokens) {
      const next = model.decodeStep(tokens[tokens.length - 1], question.inputIds.length + tokens.length - 1, cache);
      tokens.push(await model.selectToken(next, draw()));
    }
    return { tokens, cache };
  }

  const cases: [string, Question, typeof topP | undefined][] = [
    ['greedy, with a picture', withImage, undefined],
    ['greedy, text only', textOnly, undefined],
    ['seeded top-p, with a picture', withImage, topP],
    ['seeded top-p, text only', textOnly, topP],
  ];
  for (const [name, question, sampling] of cases) {
    it(`${name}: look-ahead 0, 1 and 2 answer what the step-by-step loop answers`, async () => {
      const steps = 9;
      const reference = await stepByStep(question, steps, sampling);
      reference.cache.destroy();
      expect(new Set(reference.tokens).size).toBeGreaterThan(1);
      for (const lookahead of [0, 1, 2]) {
        const result = await model.generate({ ...question, maxNewTokens: steps, eosTokenIds: [], sampling, lookahead });
        expect(result.tokenIds, `look-ahead ${lookahead}`).toEqual(reference.tokens);
        expect(result.stoppedBy).toBe('max');
        expect(result.discardedSteps).toBe(0);
        expect(result.decodeStepMs).toHaveLength(steps - 1);
      }
    });
  }

  it('a stop token in the middle: the same answer, the surplus steps discarded', async () => {
    const reference = await stepByStep(withImage, 12);
    reference.cache.destroy();
    // A token of the reference answer that first occurs at index >= 3 plays the stop token.
    const stopAt = reference.tokens.findIndex((token, i) => i >= 3 && reference.tokens.indexOf(token) === i);
    expect(stopAt).toBeGreaterThanOrEqual(3);
    const eos = reference.tokens[stopAt];
    for (const lookahead of [0, 2]) {
      const result = await model.generate({ ...withImage, maxNewTokens: 12, eosTokenIds: [eos], lookahead });
      expect(result.tokenIds).toEqual(reference.tokens.slice(0, stopAt + 1));
      expect(result.stoppedBy).toBe('eos');
      expect(result.discardedSteps).toBe(lookahead);
    }
  });

  it('max-new-tokens edges: 1 (the prefill token only), 2, and a stop token on the last allowed step', async () => {
    const reference = await stepByStep(textOnly, 6);
    reference.cache.destroy();
    for (const maxNewTokens of [1, 2, 3]) {
      const result = await model.generate({ ...textOnly, maxNewTokens, eosTokenIds: [] });
      expect(result.tokenIds).toEqual(reference.tokens.slice(0, maxNewTokens));
      expect(result.stoppedBy).toBe('max');
      expect(result.discardedSteps).toBe(0);
    }
    const last = reference.tokens[5];
    const stopsLast = reference.tokens.indexOf(last) === 5;
    const result = await model.generate({ ...textOnly, maxNewTokens: 6, eosTokenIds: [last] });
    expect(result.tokenIds).toEqual(reference.tokens.slice(0, reference.tokens.indexOf(last) + 1));
    expect(result.stoppedBy).toBe('eos');
    if (stopsLast) expect(result.discardedSteps).toBe(0);
  });

  it('Stop (the abort signal) during streaming ends the answer after the token being shown', async () => {
    const reference = await stepByStep(withImage, 10);
    reference.cache.destroy();
    const controller = new AbortController();
    const streamed: number[] = [];
    const result = await model.generate({
      ...withImage, maxNewTokens: 10, eosTokenIds: [], signal: controller.signal,
      onToken: (token) => {
        streamed.push(token);
        if (streamed.length === 3) controller.abort();
      },
    });
    expect(result.stoppedBy).toBe('cancel');
    expect(result.tokenIds).toEqual(reference.tokens.slice(0, 3));
    expect(streamed).toEqual(result.tokenIds);
  });

  it('after the surplus steps are discarded, the cache lengths are right and a follow-up step gives the step-by-step logits', async () => {
    const steps = 5;
    const reference = await stepByStep(withImage, steps + 4);
    const { cache, logits } = await prefilled(withImage, steps + 4);
    const stream = new DecodeStream(model, cache, { promptLength: withImage.inputIds.length, maxPending: 4 });
    try {
      stream.selectFirst(logits);
      const read: number[] = [];
      for (let step = 1; step <= steps + 2; step++) {
        if (stream.pendingCount >= 3) read.push((await stream.next()).tokenId);
        stream.submitStep();
      }
      while (read.length < steps) read.push((await stream.next()).tokenId);
      // Tokens 0..steps-1 are read; the steps that made the rest are in flight and go.
      expect(read).toEqual(reference.tokens.slice(0, steps));
      expect(await stream.discardPending()).toBe(3);
      expect(cache.decodeSteps).toBe(steps - 1);
      for (let layer = 0; layer < text.numLayers; layer++) {
        expect(cache.lengths(layer)).toEqual(new Array(text.numKvHeads).fill(withImage.inputIds.length + steps - 1));
      }
      // The follow-up: feed the last token read, on both caches; the reference cache is rewound to the same point.
      reference.cache.rewind(reference.cache.decodeSteps - (steps - 1));
      const position = withImage.inputIds.length + steps - 1;
      const want = await ctx.readF32(model.decodeStep(read[steps - 1], position, reference.cache), text.vocabSize);
      const got = await ctx.readF32(model.decodeStep(read[steps - 1], position, cache), text.vocabSize);
      expect(got).toEqual(want);
    } finally {
      stream.destroy();
      cache.destroy();
      reference.cache.destroy();
      model.releaseWorkspace();
    }
  });

  it('times each step with timestamp queries where the adapter has them', async () => {
    if (!ctx.hasTimestampQuery) return;
    const { cache, logits } = await prefilled(textOnly, 4);
    const stream = new DecodeStream(model, cache, { promptLength: textOnly.inputIds.length, maxPending: 4, timestamps: true });
    try {
      stream.selectFirst(logits);
      stream.submitStep();
      stream.submitStep();
      const first = await stream.next();
      expect(first.gpuStartMs).toBeNull();
      const a = await stream.next();
      const b = await stream.next();
      for (const t of [a, b]) {
        expect(t.gpuStartMs).not.toBeNull();
        expect(t.gpuEndMs as number).toBeGreaterThanOrEqual(t.gpuStartMs as number);
        expect(t.recordMs).toBeGreaterThan(0);
      }
      expect(b.gpuStartMs as number).toBeGreaterThanOrEqual(a.gpuEndMs as number);
    } finally {
      stream.destroy();
      cache.destroy();
      model.releaseWorkspace();
    }
  });
});
