/**
 * Video questions through the ChatSession on the tiny SmolVLM2 fixture (smolvlm2-tiny: real loader, real processor,
 * dawn.node): the prompt holds the video expansion, each frame is one tile whose features are computed once and
 * reused, frames are listed per picture for the overlay, the context meter counts a video before it is sent, a video
 * over the context says how many frames fit, and the KV policies and Compare run on a video prompt.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu';
import { VlmModel } from '../../src/engine/model';
import { MemoryModelCache } from '../../src/model-io/cache';
import { writeFixture } from '../../src/model-io/fixture';
import { loadModelFromPathOrUrl } from '../../src/model-io/node-loader';
import { createProcessor, type PreparedInputs, type RawImageLike, type VideoInput, type VlmProcessor } from '../../src/model-io/processor';
import { sampleVideoFrames } from '../../src/model-io/video-sampling';
import { ChatSession, ContextOverflowError, type SessionModel } from '../../src/session/chat-session';
import type { AskOptions } from '../../src/session/types';
import { gpuContext } from '../helpers/gpu';

const ask: AskOptions = { policy: 'full', budget: 48, window: 8, ratio: 0.1, maxNewTokens: 3 };

/** A frame that differs from frame to frame (a bar moving with the index), RGBA as WebCodecs gives it. */
function frame(index: number, width: number, height: number): RawImageLike {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 4;
      const bar = Math.abs(x - ((index * 7) % width)) < 4;
      data.set([bar ? 250 : 20, (y * 4) & 0xff, (index * 13) & 0xff, 255], p);
    }
  }
  return { data, width, height, channels: 4 };
}

function video(file: string, nativeFps: number, totalFrames: number, settings = { fps: 1, maxFrames: 64 }, size = 64): VideoInput {
  const sampled = sampleVideoFrames({ nativeFps, totalFrames }, settings);
  return { file, nativeFps, totalFrames, ...sampled, frames: sampled.frameIndices.map((i) => frame(i, size, i % 2 === 0 ? size : (size * 3) / 4)) };
}

describe('video questions (tiny SmolVLM2)', () => {
  let dir: string;
  let processor: VlmProcessor;
  let ctx: GpuContext;
  let model: VlmModel;
  let ready: SessionModel;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'smolvlm2-tiny-'));
    await writeFixture(dir, { preset: 'smolvlm2-tiny' });
    const loaded = await loadModelFromPathOrUrl(dir, { cache: new MemoryModelCache() });
    expect(loaded.config.modelType).toBe('smolvlm');
    processor = await createProcessor(loaded);
    ctx = await gpuContext();
    model = await VlmModel.load(ctx, loaded.weights, loaded.config);
    ready = { sourceId: loaded.sourceId, model, processor, processorLongestEdge: processor.defaultLongestEdge };
  }, 120_000);

  afterAll(() => {
    model?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function newSession(): ChatSession {
    const session = new ChatSession({ noScoresHint: '', recordAttention: true });
    session.attachModel(ready, null);
    return session;
  }

  it('answers about a video: the prompt has the expansion, each frame is a picture whose features are reused', async () => {
    const session = newSession();
    const clip = video('clip.mp4', 30, 300);
    expect(clip.frameIndices).toEqual([0, 33, 66, 99, 132, 166, 199, 232, 265, 299]);
    const info = session.addVideo(clip);
    expect(info).toMatchObject({ name: 'clip.mp4', sent: false, imageTokens: 160, featuresCached: false });
    expect(info.frames.map((f) => f.name).slice(0, 3)).toEqual(['clip.mp4 frame 00:00', 'clip.mp4 frame 00:01', 'clip.mp4 frame 00:02']);

    // The meter counts the video before it is sent, exactly as the prompt will be tokenized.
    const usage = session.contextUsage('Describe this video.');
    expect(usage?.pendingImageTokens).toBe(160);
    const estimate = session.videoTokens({ nativeFps: 30, totalFrames: 300 });
    expect(estimate).toMatchObject({ frameIndices: clip.frameIndices, imageTokens: 160, promptTokens: info.promptTokens });

    const prepared: PreparedInputs[] = [];
    const first = await session.answer('Describe this video.', { ...ask, onPrepared: (p) => void prepared.push(p) }, () => {});
    expect(prepared[0].promptText.startsWith(
      '<|im_start|>User: You are provided the following series of ten frames from a 0:00:10 [H:MM:SS] video.\n\nFrame from 00:00:<fake_token_around_image><global-img>',
    )).toBe(true);
    expect(prepared[0].inputIds.length).toBe(usage?.usedTokens);
    expect(first.result.tokenIds).toHaveLength(3);
    expect(first.result.metrics.imageTokens).toBe(160);
    expect([first.result.metrics.imagesEncoded, first.result.metrics.imagesReused]).toEqual([10, 0]);
    expect([first.result.metrics.framesEncoded, first.result.metrics.framesReused]).toEqual([10, 0]);
    // Frames are listed like pictures (for the overlay and the heatmap), with where they came from.
    expect(first.result.images.map((i) => [i.name, i.tiles, i.imageTokens, i.firstImageToken, i.video?.frameIndex])).toEqual(
      clip.frameIndices.map((index, i) => [info.frames[i].name, 1, 16, 16 * i, index]),
    );
    expect(first.result.images.every((i) => i.video?.id === info.id && i.video.file === 'clip.mp4')).toBe(true);
    const attention = session.lastAttention();
    expect(attention?.images).toHaveLength(10);
    expect(attention?.weights[0][0]).toHaveLength(160);

    // A follow-up: the frames' features come from the cache, and give what a fresh vision pass + prefill gives.
    const second = await session.answer('What moves?', { ...ask, onPrepared: (p) => void prepared.push(p) }, () => {});
    expect([second.result.metrics.imagesEncoded, second.result.metrics.imagesReused, session.visionPasses]).toEqual([0, 10, 10]);
    expect([second.result.metrics.framesEncoded, second.result.metrics.framesReused]).toEqual([0, 10]);
    expect(session.videos()[0]).toMatchObject({ sent: true, featuresCached: true });
    const fresh = await model.generate({ inputIds: prepared[1].inputIds, pixelValues: prepared[1].pixelValues, numTiles: prepared[1].numTiles, maxNewTokens: 3, eosTokenIds: [] });
    expect(second.generation.tokenIds).toEqual(fresh.tokenIds);
    session.newChat();
    expect(session.videos()).toEqual([]);
  }, 400_000);

  it('refuses pictures and a video in one question, and keeps what was there', () => {
    const session = newSession();
    session.addImage(frame(0, 64, 64), 'still.png');
    expect(() => session.addVideo(video('clip.mp4', 30, 300))).toThrow(/pictures or videos, not both/);
    expect(session.images()).toHaveLength(1);
    const [still] = session.images();
    session.removeImage(still.id);
    const added = session.addVideo(video('clip.mp4', 30, 300));
    expect(() => session.addImage(frame(0, 64, 64), 'still.png')).toThrow(/pictures or videos, not both/);
    session.removeVideo(added.id);
    expect(session.videos()).toEqual([]);
  });

  it('a video over the context says how many frames fit, and that many do', async () => {
    const session = newSession();
    const long = video('long.mp4', 24, 2400); // 100 s: 64 frames
    session.addVideo(long);
    const maxNewTokens = 1200;
    let refusal: unknown = null;
    try {
      await session.answer('Describe this video.', { ...ask, maxNewTokens }, () => {});
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(ContextOverflowError);
    const fit = (refusal as ContextOverflowError).framesThatFit;
    expect(fit).toBeGreaterThan(0);
    expect(fit).toBeLessThan(64);
    expect((refusal as Error).message).toContain(`${fit} of the 64 frames of long.mp4 fit: set "max frames" to ${fit}`);
    expect(session.visionPasses).toBe(0);
    // That many frames (sampled with max frames = fit) do fit with the answer.
    const shorter = video('long.mp4', 24, 2400, { fps: 1, maxFrames: fit ?? 0 });
    const prepared = await processor.prepare([shorter], [{ role: 'user', text: 'Describe this video.', videoCount: 1 }]);
    expect(prepared.inputIds.length + maxNewTokens).toBeLessThanOrEqual(2048);
    // And one more does not: the count is the most that fit.
    const more = video('long.mp4', 24, 2400, { fps: 1, maxFrames: (fit ?? 0) + 1 });
    const over = await processor.prepare([more], [{ role: 'user', text: 'Describe this video.', videoCount: 1 }]);
    expect(over.inputIds.length + maxNewTokens).toBeGreaterThan(2048);
  }, 120_000);

  it('SparseMM keeps a smaller cache on a video prompt; Compare runs on it unchanged', async () => {
    const session = newSession();
    session.addVideo(video('clip.webm', 25, 250));
    const full = await session.answer('Describe this video.', { ...ask, maxNewTokens: 2 }, () => {});
    const sparse = await session.answer('Describe it again.', { ...ask, maxNewTokens: 2, policy: 'sparsemm', budget: 64 }, () => {});
    expect(sparse.result.compressed).toBe(true);
    expect(sparse.result.metrics.kvBytes).toBeLessThan(sparse.result.metrics.fullCacheKvBytes);
    expect(full.result.metrics.imageTokens).toBe(sparse.result.metrics.imageTokens);
    const compared = await session.compare('And now?', { ...ask, maxNewTokens: 2, policy: 'sparsemm', budget: 64 }, () => {});
    expect(compared.full.images).toHaveLength(10);
    expect(compared.policy?.metrics.kvBytes).toBeLessThan(compared.full.metrics.kvBytes);
    expect(session.visionPasses).toBe(10);
  }, 400_000);
});
