import { describe, expect, it } from 'vitest';
import { RaggedKvCache } from '../../src/engine/kv-cache';
import { fullCacheKept, VlmModel, type AttentionHooks } from '../../src/engine/model';
import { gpuContext } from '../helpers/gpu';
import { tinyModel, tinyPrompt } from '../helpers/tiny-model';

// Decode steps are recorded once per cache and replayed (src/engine/decode-step.ts); steps with attention hooks are
// recorded directly, dispatch by dispatch. Both must give the same logits, bit for bit, step after step, also when two
// caches decode in turn and a larger one replaces the split-K scratch the first one's plan bound.
describe('replayed decode steps (DispatchPlan)', () => {
  it('equal directly recorded steps, with caches interleaved and the attention scratch regrown', async () => {
    const ctx = await gpuContext();
    const { config, file } = tinyModel();
    const { text } = config;
    const model = await VlmModel.load(ctx, file, config);
    const noHooks: AttentionHooks = { onLayerQuery: () => undefined };
    const makeCache = (promptLength: number, maxNewTokens: number) =>
      RaggedKvCache.create(ctx, {
        numLayers: text.numLayers, numKvHeads: text.numKvHeads, headDim: text.headDim, promptLength,
        keptPerHead: fullCacheKept(text.numLayers, text.numKvHeads, promptLength), maxNewTokens,
      });
    const short = tinyPrompt(config, 0);
    const long = Uint32Array.from({ length: 150 }, (_, i) => (i * 13 + 7) % 240);
    const caches = { replayed: makeCache(short.length, 6), direct: makeCache(short.length, 6) };
    try {
      await model.prefill(short, null, caches.replayed);
      await model.prefill(short, null, caches.direct);
      const tokens = [3, 77, 140, 9, 201, 55];
      for (const [step, token] of tokens.entries()) {
        if (step === 2) {
          // A cache with longer slices grows the shared split-K scratch: the first plan must not keep the old one.
          const bigger = makeCache(long.length, 2);
          await model.prefill(long, null, bigger);
          await ctx.readF32(model.decodeStep(11, long.length, bigger), text.vocabSize);
          bigger.destroy();
        }
        const position = short.length + step;
        const replayed = await ctx.readF32(model.decodeStep(token, position, caches.replayed), text.vocabSize);
        const direct = await ctx.readF32(model.decodeStep(token, position, caches.direct, { attentionHooks: noHooks, stepIndex: step + 1 }), text.vocabSize);
        expect(replayed.some((x) => x !== 0)).toBe(true);
        expect(replayed, `step ${step}`).toEqual(direct);
      }
    } finally {
      caches.replayed.destroy();
      caches.direct.destroy();
      model.destroy();
    }
  });
});
