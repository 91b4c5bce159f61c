// The worker's video flow (src/worker/conversation-videos.ts) without a browser: the container facts come from a fake
// reader, the frames from a fake decoder (the real ones are tested in tests/unit/video-input.test.ts and in Chromium by
// tests/e2e/video.test.ts). What is checked here: only the sampler's frames are decoded, a video that would overflow
// the context is refused before decoding with how many frames fit, a bad file is named and the others still added,
// removal, and the frame labels.
import { describe, expect, it } from 'vitest';
import { sampleVideoFrames } from '../../src/model-io/video-sampling';
import type { ContextUsage } from '../../src/session/types';
import type { VideoInput } from '../../src/model-io/processor';
import { createConversationVideos, framesThatFit, type VideoDecoder, type VideoSession } from '../../src/worker/conversation-videos';
import { VideoInputError, type OpenedVideo, type VideoTrackFacts } from '../../src/worker/video-input';

/** Files are JSON track facts ({nativeFps, totalFrames}); anything else is "not a video". */
function fakeDecoder(decoded: number[][]): VideoDecoder {
  return {
    async open(file, name) {
      let facts: Pick<VideoTrackFacts, 'nativeFps' | 'totalFrames'>;
      try {
        facts = JSON.parse(await file.text()) as typeof facts;
      } catch {
        throw new VideoInputError(`"${name}" is not a video file this app can read.`);
      }
      const full: VideoTrackFacts = { ...facts, durationSeconds: facts.totalFrames / facts.nativeFps, codec: 'VP9', codecString: 'vp09', container: 'WebM', width: 320, height: 240 };
      return { name, facts: full, track: null as never, frameTimes: [], close: () => undefined } satisfies OpenedVideo;
    },
    async decode(video, frameIndices, tileSize, onProgress) {
      decoded.push([...frameIndices]);
      return frameIndices.map((index, i) => {
        onProgress?.({ name: video.name, decoded: i + 1, total: frameIndices.length });
        return { index, timestamp: index / video.facts.nativeFps, pixels: { data: new Uint8ClampedArray(tileSize * tileSize * 3), width: tileSize, height: tileSize, channels: 3 }, thumbnail: new Blob(['t']) };
      });
    },
  };
}

/** A session whose prompt is `used` tokens of a `context`, where a video costs 10 tokens of text plus 20 per frame. */
function fakeSession(used: number, context: number) {
  const videos: (VideoInput & { id: number })[] = [];
  let nextId = 1;
  const tokensOf = (frames: number) => 10 + 20 * frames;
  const session: VideoSession = {
    checkIdle: () => undefined,
    videoSampling: () => ({ fps: 1, maxFrames: 64, frameSize: 8 }),
    videoPromptTokens: (sample) => tokensOf(sample.frameIndices.length),
    contextUsage: () => {
      const usedTokens = used + videos.reduce((n, v) => n + tokensOf(v.frames.length), 0);
      return { usedTokens, contextTokens: context } as ContextUsage;
    },
    addVideo: (video) => {
      videos.push({ ...video, id: nextId });
      return nextId++;
    },
    removeVideo: (id) => {
      const index = videos.findIndex((v) => v.id === id);
      if (index < 0) throw new Error(`No video ${id} waits for the next question.`);
      videos.splice(index, 1);
    },
    videos: () => videos.map((v) => ({ id: v.id, name: v.file, sent: false, nativeFps: v.nativeFps, totalFrames: v.totalFrames, durationSeconds: v.durationSeconds, promptTokens: tokensOf(v.frames.length), frames: v.frames.map((_, i) => ({ id: v.id * 1000 + i })) })),
  };
  return { session, videos };
}

const file = (facts: object | string, name: string) => ({ file: new Blob([typeof facts === 'string' ? facts : JSON.stringify(facts)]), name });

describe('adding videos in the worker', () => {
  it('decodes only the sampled frames, labels them as the prompt does, and names a bad file while adding the others', async () => {
    const decoded: number[][] = [];
    const { session, videos } = fakeSession(100, 2048);
    const api = createConversationVideos(session, fakeDecoder(decoded));
    const progress: string[] = [];
    const result = await api.addVideos(
      [file({ nativeFps: 30, totalFrames: 300 }, 'ten.webm'), file('text', 'notes.mp4'), file({ nativeFps: 24, totalFrames: 96 }, 'four.webm')],
      { fps: 1, maxFrames: 64, answerTokens: 32 },
      (p) => progress.push(`${p.name} ${p.stage} ${p.decoded}/${p.total}`),
    );
    expect(result.rejected).toEqual([{ name: 'notes.mp4', message: '"notes.mp4" is not a video file this app can read.' }]);
    expect(result.added.map((v) => v.name)).toEqual(['ten.webm', 'four.webm']);
    // VIDEO.md's worked example: 300 frames at 30 fps.
    expect(decoded[0]).toEqual([0, 33, 66, 99, 132, 166, 199, 232, 265, 299]);
    expect(decoded[1]).toEqual(sampleVideoFrames({ nativeFps: 24, totalFrames: 96 }, { fps: 1, maxFrames: 64 }).frameIndices);
    expect(result.added[0].frames.map((f) => f.label)).toEqual(['00:00', '00:01', '00:02', '00:03', '00:04', '00:05', '00:06', '00:07', '00:08', '00:09']);
    // Each frame carries the session's id for it (what an attention snapshot names), in order.
    expect(result.added[1].frames.map((f) => f.id)).toEqual(videos[1].frames.map((_, i) => videos[1].id * 1000 + i));
    expect(result.added[0]).toMatchObject({ codec: 'VP9', container: 'WebM', sampling: { fps: 1, maxFrames: 64 }, promptTokens: 210, totalFrames: 300 });
    expect(progress).toContain('ten.webm decoding 10/10');
    expect(videos.map((v) => v.frameIndices.length)).toEqual([10, 4]);
    // Each frame is decoded into one tile of the model's frame size.
    expect(videos[0].frames.every((frame) => frame.width === 8 && frame.height === 8)).toBe(true);

    api.removeVideo(result.added[0].id);
    expect(api.listVideos().map((v) => v.name)).toEqual(['four.webm']);
  });

  it('refuses a video that would overflow the context before decoding, saying how many frames fit', async () => {
    const decoded: number[][] = [];
    // Room: 1000 - 500 - 100 = 400 tokens; 10 + 20 n <= 400 -> 19 frames.
    const { session } = fakeSession(500, 1000);
    const api = createConversationVideos(session, fakeDecoder(decoded));
    const result = await api.addVideos([file({ nativeFps: 30, totalFrames: 1800 }, 'minute.mp4')], { fps: 1, maxFrames: 64, answerTokens: 100 }, () => undefined);
    expect(decoded).toEqual([]);
    expect(result.added).toEqual([]);
    expect(result.rejected).toHaveLength(1);
    expect(result.rejected[0].framesThatFit).toBe(19);
    expect(result.rejected[0].message).toBe(
      '"minute.mp4" would need 1210 prompt tokens for its 60 frames, but the context has room for 400 (500 used of 1000, 100 kept for the answer): 19 frames fit (set max frames to 19 for this video).',
    );
    // Taking the offer adds it with that many frames.
    const again = await api.addVideos([file({ nativeFps: 30, totalFrames: 1800 }, 'minute.mp4')], { fps: 1, maxFrames: 19, answerTokens: 100 }, () => undefined);
    expect(again.added[0].frames).toHaveLength(19);
  });

  it('framesThatFit: the largest count whose tokens fit, 0 when none does', () => {
    expect(framesThatFit(63, 400, (n) => 10 + 20 * n)).toBe(19);
    expect(framesThatFit(63, 5, (n) => 10 + 20 * n)).toBe(0);
    expect(framesThatFit(5, 10_000, (n) => n)).toBe(5);
  });

  it('refuses every video while the model has no video path', async () => {
    const { session } = fakeSession(0, 2048);
    const api = createConversationVideos({ ...session, videoSampling: () => null }, fakeDecoder([]));
    await expect(api.addVideos([file({ nativeFps: 1, totalFrames: 1 }, 'a.mp4')], { fps: 1, maxFrames: 64, answerTokens: 8 }, () => undefined)).rejects.toThrow(/no video path/);
  });
});
