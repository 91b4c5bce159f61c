/**
 * Several pictures in one conversation through the ChatSession on the tiny fixture files (real processor, dawn.node):
 * the feature cache (one vision-tower pass per picture, reused by later turns, counted as 'imageFeatures' and freed
 * with the conversation or the model), the context check before any GPU work, and the KV policies on the long prompt.
 */
import { fileURLToPath } from 'node:url';
import { RawImage } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu';
import { VlmModel } from '../../src/engine/model';
import type { LoadedModel } from '../../src/model-io/loader';
import type { PreparedInputs, VlmProcessor } from '../../src/model-io/processor';
import { ChatSession, ContextOverflowError, type SessionModel } from '../../src/session/chat-session';
import type { AskOptions } from '../../src/session/types';
import { gpuContext } from '../helpers/gpu';
import { loadTinyFixture } from '../helpers/tiny-fixture';

const sample = (name: string): string => fileURLToPath(new URL(`../../public/samples/${name}`, import.meta.url));
const ask: AskOptions = { policy: 'full', budget: 48, window: 8, ratio: 0.1, maxNewTokens: 4 };

describe('a conversation with several pictures', () => {
  let loaded: LoadedModel;
  let processor: VlmProcessor;
  let ctx: GpuContext;
  let model: VlmModel;
  let ready: SessionModel;
  let pictures: { name: string; image: RawImage }[];

  beforeAll(async () => {
    ({ loaded, processor } = await loadTinyFixture());
    ctx = await gpuContext();
    model = await VlmModel.load(ctx, loaded.weights, loaded.config);
    ready = { sourceId: loaded.sourceId, model, processor, processorLongestEdge: Infinity };
    pictures = await Promise.all(['shapes.png', 'bar-chart.png', 'table.png'].map(async (name) => ({ name, image: await RawImage.read(sample(name)) })));
  });

  afterAll(() => model?.destroy());

  /** SwiftShader is slow: one 64 px tile (16 image tokens) per picture keeps the prompts short. */
  function newSession(longestEdge: number | null = 64): ChatSession {
    const session = new ChatSession({ noScoresHint: '', recordAttention: false });
    session.attachModel(ready, null);
    session.setLongestImageEdge(longestEdge);
    return session;
  }

  it('computes each picture once, reuses it on follow-ups (same tokens as a fresh prefill), frees it on New chat and model switch', async () => {
    const session = newSession();
    // Warm the engine's own buffers (decode workspace, scratch) with a text-only question first.
    await session.answer('Hello.', { ...ask, maxNewTokens: 1 }, () => {});
    session.newChat();
    const bytesBefore = ctx.allocator.bytesByCategory();
    const prepared: PreparedInputs[] = [];
    const onPrepared = (inputs: PreparedInputs): void => void prepared.push(inputs);

    session.addImage(pictures[0].image, pictures[0].name);
    session.addImage(pictures[1].image, pictures[1].name);
    const first = await session.answer('Compare the two images.', { ...ask, onPrepared }, () => {});
    expect(first.result.images.map((i) => [i.name, i.tiles, i.imageTokens])).toEqual([
      ['shapes.png', 1, 16],
      ['bar-chart.png', 1, 16],
    ]);
    expect([first.result.metrics.imagesEncoded, first.result.metrics.imagesReused, session.visionPasses]).toEqual([2, 0, 2]);
    expect([first.result.metrics.framesEncoded, first.result.metrics.framesReused]).toEqual([0, 0]);

    session.addImage(pictures[2].image, pictures[2].name);
    const second = await session.answer('And this table?', { ...ask, onPrepared }, () => {});
    expect(second.result.images.map((i) => i.name)).toEqual(['shapes.png', 'bar-chart.png', 'table.png']);
    expect([second.result.metrics.imagesEncoded, second.result.metrics.imagesReused, session.visionPasses]).toEqual([1, 2, 3]);
    const third = await session.answer('Which one has the most colours?', { ...ask, onPrepared }, () => {});
    // No second vision pass for any picture: counted.
    expect([third.result.metrics.imagesEncoded, third.result.metrics.imagesReused, session.visionPasses]).toEqual([0, 3, 3]);
    expect(third.result.metrics.imageTokens).toBe(3 * 16);

    // The cached features give the tokens a fresh vision pass + prefill of the same three-picture prompt gives.
    const fresh = await model.generate({
      inputIds: prepared[2].inputIds, pixelValues: prepared[2].pixelValues, numTiles: prepared[2].numTiles, maxNewTokens: ask.maxNewTokens, eosTokenIds: [],
    });
    expect(third.generation.tokenIds).toEqual(fresh.tokenIds);

    const hidden = loaded.config.text.hiddenSize;
    const featureBytes = third.result.images.reduce((n, image) => n + image.imageTokens * hidden * 4, 0);
    expect(ctx.allocator.bytesByCategory().imageFeatures).toBe(bytesBefore.imageFeatures + featureBytes);
    expect(session.images().every((image) => image.sent && image.featuresCached)).toBe(true);

    // Everything but the engine's reusable scratch (sized by the longest prompt so far) is back where it was.
    const withoutScratch = ({ scratch: _scratch, ...rest }: ReturnType<typeof ctx.allocator.bytesByCategory>) => rest;
    session.newChat();
    expect(withoutScratch(ctx.allocator.bytesByCategory())).toEqual(withoutScratch(bytesBefore));
    expect(session.images()).toEqual([]);

    // Model switch (detach): the features go with the model.
    session.addImage(pictures[0].image, pictures[0].name);
    await session.answer('Describe.', ask, () => {});
    expect(ctx.allocator.bytesByCategory().imageFeatures).toBe(16 * hidden * 4);
    session.detachModel();
    expect(withoutScratch(ctx.allocator.bytesByCategory())).toEqual(withoutScratch(bytesBefore));
  }, 400_000);

  it('refuses a prompt over the context before any GPU work, saying by how much and what to do', async () => {
    const session = newSession(null);
    session.addImage(pictures[0].image, pictures[0].name);
    const usage = session.contextUsage();
    expect(usage).toMatchObject({ conversationTokens: 0, pendingImageTokens: 80, contextTokens: 2048, longestImageEdge: 128, defaultLongestImageEdge: 128, tileSize: 64 });
    const live = ctx.allocator.liveBufferCount();
    const total = ctx.allocator.totalBytes();
    const refusal = session.answer('Describe.', { ...ask, maxNewTokens: 2040 }, () => {});
    await expect(refusal).rejects.toThrow(ContextOverflowError);
    await expect(session.answer('Describe.', { ...ask, maxNewTokens: 2040 }, () => {})).rejects.toThrow(
      /needs \d+ tokens \(\d+ text, 80 image\) plus 2040 for the answer: \d+ more than the model's context of 2048 tokens\. Remove an image, start a new chat, set "longest image edge" lower/,
    );
    expect([ctx.allocator.liveBufferCount(), ctx.allocator.totalBytes(), session.visionPasses]).toEqual([live, total, 0]);

    // Many pictures: over the context; a lower longest edge (one tile each) makes it fit.
    for (let i = 0; i < 25; i++) session.addImage(pictures[i % 3].image, `picture ${i}`);
    await expect(session.answer('Compare them all.', ask, () => {})).rejects.toThrow(/more than the model's context of 2048 tokens/);
    expect(session.visionPasses).toBe(0);
    session.setLongestImageEdge(64);
    expect(session.contextUsage()?.pendingImageTokens).toBe(26 * 16);
    expect(() => session.setLongestImageEdge(32)).toThrow(/at least one tile \(64 px\)/);
    expect([ctx.allocator.liveBufferCount(), ctx.allocator.totalBytes(), session.visionPasses]).toEqual([live, total, 0]);
    session.newChat();
  }, 120_000);

  it('the KV policies run on a three-picture prompt (follow-ups of one conversation, features computed once)', async () => {
    const featuresBefore = ctx.allocator.bytesByCategory().imageFeatures;
    const session = newSession();
    for (const { name, image } of pictures) session.addImage(image, name);
    let fullKv = 0;
    for (const policy of ['full', 'sparsemm', 'snapkv', 'pyramidkv', 'adakv'] as const) {
      const { result } = await session.answer(`Compare the three images (${policy}).`, { ...ask, maxNewTokens: 2, policy }, () => {});
      expect(result.images).toHaveLength(3);
      expect(result.tokenIds).toHaveLength(2);
      if (policy === 'full') fullKv = result.metrics.kvBytes;
      else {
        expect(result.compressed).toBe(true);
        expect(result.metrics.kvBytes).toBeLessThan(fullKv);
      }
    }
    expect(session.visionPasses).toBe(3);
    session.newChat();
    expect(ctx.allocator.bytesByCategory().imageFeatures).toBe(featuresBefore);
  }, 400_000);
});
