// The app's container reader (src/worker/video-input.ts, mediabunny) against ffprobe, which the CLI uses: the same
// frame count and average frame rate for every sample video, so the browser and the CLI sample the same frames. Also
// the messages for files that are not videos. Decoding needs WebCodecs (tests/e2e/video.test.ts does it in Chromium).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openVideo } from '../../src/worker/video-input';
import { projectRoot } from '../helpers/browser';

const samples = join(projectRoot, 'public', 'samples');
const testVideos = join(projectRoot, 'tests', 'data', 'video');

/** ffprobe's avg_frame_rate and packet count of the first video stream (the CLI's facts). */
function ffprobeFacts(path: string): { nativeFps: number; totalFrames: number } {
  const run = spawnSync(
    'ffprobe',
    ['-v', 'error', '-select_streams', 'v:0', '-count_packets', '-show_entries', 'stream=avg_frame_rate,nb_read_packets', '-of', 'json', path],
    { encoding: 'utf8' },
  );
  if (run.error || run.status !== 0) {
    throw new Error(`ffprobe failed on ${path} (${run.error?.message ?? run.stderr}). Install it with: apt-get install -y ffmpeg (npm test's system check does).`);
  }
  const stream = (JSON.parse(run.stdout) as { streams: { avg_frame_rate: string; nb_read_packets: string }[] }).streams[0];
  const [num, den] = stream.avg_frame_rate.split('/').map(Number);
  return { nativeFps: num / den, totalFrames: Number(stream.nb_read_packets) };
}

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
