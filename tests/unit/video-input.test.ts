// The app's container reader (src/worker/video-input.ts, mediabunny) against ffprobe, which the CLI uses: the same
// frame count and average frame rate for every sample video, so the browser and the CLI sample the same frames. Also
// the messages for files that are not videos. Decoding needs WebCodecs (tests/e2e/video-decode.test.ts does it in Chromium).
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sampleVideoFrames } from '../../src/model-io/video-sampling';
import { openVideo } from '../../src/worker/video-input';
import { projectRoot } from '../helpers/browser';
import { ffprobeFacts } from '../helpers/ffprobe';

const samples = join(projectRoot, 'public', 'samples');
const testVideos = join(projectRoot, 'tests', 'data', 'video');

function fileBlob(path: string): Blob {
  return new Blob([readFileSync(path)]);
}

describe('video container facts', () => {
  const clips = [join(samples, 'clock-h264.mp4'), join(samples, 'clock-vp9.webm'), join(testVideos, 'clock-vp8.webm'), join(testVideos, 'clock-ntsc.mp4')];

  it.each(clips.map((path) => [basename(path), path]))('%s: frame count and average frame rate as ffprobe reports them', async (_name, path) => {
    const video = await openVideo(fileBlob(path), basename(path), false);
    try {
      const expected = ffprobeFacts(path);
      expect(video.facts.totalFrames).toBe(expected.totalFrames);
      expect(video.facts.nativeFps).toBeCloseTo(expected.nativeFps, 9);
      expect(video.frameTimes).toHaveLength(expected.totalFrames);
      // Presentation order: ascending, one per frame.
      expect(video.frameTimes.every((t, i) => i === 0 || t > video.frameTimes[i - 1])).toBe(true);
      // So the sampler picks the same frames from both readers' facts, at the defaults and at settings that stress it.
      for (const settings of [{ fps: 1, maxFrames: 64 }, { fps: 2.5, maxFrames: 7 }, { fps: 24, maxFrames: 1000 }, { fps: 1, maxFrames: 1 }]) {
        expect(sampleVideoFrames(video.facts, settings)).toEqual(sampleVideoFrames(expected, settings));
      }
    } finally {
      video.close();
    }
  });

  it('names the codec, the container and the frame size', async () => {
    const mp4 = await openVideo(fileBlob(join(samples, 'clock-h264.mp4')), 'clock-h264.mp4', false);
    expect(mp4.facts).toMatchObject({ codec: 'H.264 (AVC)', container: 'MP4', width: 256, height: 192, totalFrames: 96, nativeFps: 24, durationSeconds: 4 });
    expect(mp4.facts.codecString).toMatch(/^avc1\./);
    mp4.close();
    const webm = await openVideo(fileBlob(join(samples, 'clock-vp9.webm')), 'clock-vp9.webm', false);
    expect(webm.facts).toMatchObject({ codec: 'VP9', container: 'WebM', totalFrames: 90, nativeFps: 30, durationSeconds: 3 });
    webm.close();
  });
});

describe('files that are not usable videos', () => {
  const open = (file: string) => openVideo(fileBlob(join(testVideos, file)), file, false);

  it('a text file named .mp4 is not a video', async () => {
    await expect(open('not-a-video.mp4')).rejects.toThrow(/"not-a-video\.mp4" is not a video file this app can read/);
  });

  it('an audio-only file has no video track', async () => {
    await expect(open('audio-only.webm')).rejects.toThrow(/"audio-only\.webm" has no video track \(it holds audio only\)/);
  });

  it('a video track without frames', async () => {
    await expect(open('zero-frames.webm')).rejects.toThrow(/"zero-frames\.webm" has a video track \(VP9\) but no frames/);
  });

  it('an empty file', async () => {
    await expect(openVideo(new Blob([]), 'empty.mp4', false)).rejects.toThrow(/"empty\.mp4" is empty \(0 bytes\)/);
  });

  it('a truncated MP4 still lists its frames (the index is at the front); decoding finds the damage', async () => {
    const video = await open('truncated.mp4');
    expect(video.facts.totalFrames).toBe(96);
    video.close();
  });
});
