/**
 * The app's video reader in Chromium (src/worker/video-input.ts: mediabunny reads the container, WebCodecs decodes),
 * on the real sample clips: the facts agree with ffprobe (what the CLI reads), only the sampled frames are decoded
 * (progress counts them), and each 512 x 512 tile is the frame the sampler chose — its picture is nearer to ffmpeg's
 * decode of that frame than to the frames beside it (every clip shows a moving square and its frame number). Then the
 * files it must refuse, each named with the reason: not a video, cut short or corrupt (found while decoding), a codec
 * this browser cannot decode (H.265, named with its codec string), no video track, a video track without frames. No
 * model is loaded: this is the decoding alone, quick; tests/e2e/video.test.ts drives the same reader through the app.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleVideoFrames } from '../../src/model-io/video-sampling';
import { startServer, type RunningServer } from '../../scripts/serve.mjs';
import { launchBrowser, projectRoot, type BrowserSession } from '../helpers/browser';
import { ffprobeFacts } from '../helpers/ffprobe';
import { probeGrid, type ProbeResult } from '../helpers/video-input-page';

const tileSize = 512;
const samples = join(projectRoot, 'public', 'samples');
const testVideos = join(projectRoot, 'tests', 'data', 'video');

let pageDir: string;
let server: RunningServer;
let browser: BrowserSession;
let page: Page;

beforeAll(async () => {
  pageDir = mkdtempSync(join(tmpdir(), 'sparsemm-video-decode-'));
  await build({
    entryPoints: [join(projectRoot, 'tests', 'helpers', 'video-input-page.ts')],
    bundle: true,
    format: 'iife',
    globalName: 'videoInputPage',
    target: 'es2022',
    platform: 'browser',
    outfile: join(pageDir, 'video-input-page.js'),
    logLevel: 'error',
  });
  writeFileSync(join(pageDir, 'index.html'), '<!doctype html><meta charset="utf-8"><title>video reader</title><script src="video-input-page.js"></script>\n');
  server = await startServer({ root: pageDir, mounts: { '/samples/': samples, '/video/': testVideos } });
  browser = await launchBrowser();
  page = browser.page;
  // 127.0.0.1 is a secure context: WebCodecs is there.
  await page.goto(server.url);
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (pageDir) rmSync(pageDir, { recursive: true, force: true });
});

/** Runs the reader in the page on the served file `urlPath`. */
function probe(urlPath: string, frameIndices: number[] | null): Promise<ProbeResult> {
  return page.evaluate(
    async ({ urlPath, frameIndices, tileSize }) => {
      const module = (window as unknown as { videoInputPage: typeof import('../helpers/video-input-page') }).videoInputPage;
      return module.probeVideo(urlPath, urlPath.split('/').pop() ?? '', frameIndices, tileSize);
    },
    { urlPath, frameIndices, tileSize },
  );
}

/** ffmpeg's decode of frames `indices` (presentation order) of `path`, scaled to the tile and block-averaged as in the page. */
function ffmpegBlocks(path: string, indices: number[]): Uint8Array[] {
  const select = indices.map((i) => `eq(n\\,${i})`).join('+');
  const run = spawnSync(
    'ffmpeg',
    ['-v', 'error', '-i', path, '-vf', `select='${select}',scale=${tileSize}:${tileSize}:flags=bilinear`, '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'],
    { maxBuffer: 1 << 30 },
  );
  if (run.error || run.status !== 0) throw new Error(`ffmpeg failed on ${path}: ${run.error?.message ?? run.stderr.toString()}`);
  const frameBytes = tileSize * tileSize * 3;
  expect(run.stdout.length).toBe(frameBytes * indices.length);
  const block = tileSize / probeGrid;
  return indices.map((_, f) => {
    const data = run.stdout.subarray(f * frameBytes, (f + 1) * frameBytes);
    const out = new Uint8Array(probeGrid * probeGrid * 3);
    for (let by = 0; by < probeGrid; by++) {
      for (let bx = 0; bx < probeGrid; bx++) {
        for (let c = 0; c < 3; c++) {
          let sum = 0;
          for (let y = 0; y < block; y++) for (let x = 0; x < block; x++) sum += data[((by * block + y) * tileSize + bx * block + x) * 3 + c];
          out[(by * probeGrid + bx) * 3 + c] = Math.round(sum / (block * block));
        }
      }
    }
    return out;
  });
}

function meanAbsoluteDifference(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

describe('decoding the sample clips in Chromium', () => {
  const clips: [string, string, string, { fps: number; maxFrames: number }][] = [
    ['clock-h264.mp4', '/samples/clock-h264.mp4', join(samples, 'clock-h264.mp4'), { fps: 1, maxFrames: 64 }],
    ['clock-vp9.webm', '/samples/clock-vp9.webm', join(samples, 'clock-vp9.webm'), { fps: 1, maxFrames: 64 }],
    // 2.5 fps over 2 s of VP8: frames between key frames; at 29.97 fps the timestamps are not whole frames per second.
    ['clock-vp8.webm', '/video/clock-vp8.webm', join(testVideos, 'clock-vp8.webm'), { fps: 2.5, maxFrames: 64 }],
    ['clock-ntsc.mp4', '/video/clock-ntsc.mp4', join(testVideos, 'clock-ntsc.mp4'), { fps: 3, maxFrames: 5 }],
  ];

  it.each(clips)('%s: the sampled frames, and each tile is that frame', async (name, urlPath, path, settings) => {
    const expected = sampleVideoFrames(ffprobeFacts(path), settings);
    const result = await probe(urlPath, expected.frameIndices);
    if (!result.ok) throw new Error(`${name} failed in Chromium (${result.stage}): ${result.message}`);
    // The browser's facts sample the same frames as ffprobe's (the CLI's).
    expect(sampleVideoFrames(result.facts, settings)).toEqual(expected);
    const total = expected.frameIndices.length;
    expect(result.progress).toEqual(Array.from({ length: total + 1 }, (_, i) => [i, total]));
    expect(result.frames.map((f) => f.index)).toEqual(expected.frameIndices);
    for (const [i, frame] of result.frames.entries()) {
      expect(frame.timestamp).toBeCloseTo(frame.index / result.facts.nativeFps, 12);
      expect(frame.timestamp).toBeCloseTo(expected.timestamps[i], 12);
      expect([frame.tileWidth, frame.tileHeight]).toEqual([tileSize, tileSize]);
      // The strip's thumbnail: a JPEG at the video's own height (192 px, under the 240 px cap), its aspect kept.
      expect(frame.thumbnailType).toBe('image/jpeg');
      expect([frame.thumbnailWidth, frame.thumbnailHeight]).toEqual([256, 192]);
    }
    // Each tile against ffmpeg's decode of the same frame and of its neighbours.
    const neighbours = [...new Set(expected.frameIndices.flatMap((k) => [k - 1, k, k + 1]).filter((k) => k >= 0 && k < result.frameCount))].sort((a, b) => a - b);
    const reference = new Map(ffmpegBlocks(path, neighbours).map((blocks, i) => [neighbours[i], blocks]));
    for (const frame of result.frames) {
      const tile = new Uint8Array(Buffer.from(frame.blocksBase64, 'base64'));
      const own = meanAbsoluteDifference(tile, reference.get(frame.index) as Uint8Array);
      // Scaling filters and the YUV -> RGB conversion differ a little between Chromium and ffmpeg (about 1.2 levels of
      // 255 here); a neighbouring frame (the square moved ~7 px, another frame number) differs by 2 or more.
      expect(own, `${name} frame ${frame.index}`).toBeLessThan(1.6);
      for (const other of [frame.index - 1, frame.index + 1]) {
        const blocks = reference.get(other);
        if (blocks) expect(meanAbsoluteDifference(tile, blocks), `${name} frame ${frame.index} vs ${other}`).toBeGreaterThan(own + 0.5);
      }
    }
  });
});

describe('files the reader refuses, each named with the reason', () => {
  it('a text file named .mp4', async () => {
    const result = await probe('/video/not-a-video.mp4', null);
    expect(result).toMatchObject({ ok: false, stage: 'open', name: 'VideoInputError' });
    expect(!result.ok && result.message).toMatch(/^"not-a-video\.mp4" is not a video file this app can read \(not MP4, MOV, WebM, MKV, Ogg or MPEG-TS\)\. Choose an MP4/);
  });

  it('a video cut short: its index lists every frame, decoding finds the damage', async () => {
    const opened = await probe('/video/truncated.mp4', null);
    if (!opened.ok) throw new Error(opened.message);
    expect(opened.facts.totalFrames).toBe(96);
    const result = await probe('/video/truncated.mp4', sampleVideoFrames(opened.facts, { fps: 1, maxFrames: 64 }).frameIndices);
    expect(result).toMatchObject({ ok: false, stage: 'decode', name: 'VideoInputError' });
    expect(!result.ok && result.message).toMatch(/^"truncated\.mp4" is damaged or cut short: .*Choose a complete MP4 or WebM file\.$/);
  });

  it('a corrupt video: it opens (its index is intact), the decoder fails, named with the codec and the frame', async () => {
    const opened = await probe('/video/corrupt.mp4', null);
    if (!opened.ok) throw new Error(opened.message);
    const result = await probe('/video/corrupt.mp4', sampleVideoFrames(opened.facts, { fps: 1, maxFrames: 64 }).frameIndices);
    expect(result).toMatchObject({ ok: false, stage: 'decode', name: 'VideoInputError' });
    expect(!result.ok && result.message).toMatch(/^"corrupt\.mp4" is damaged or cut short: the H\.264 \(AVC\) decoder failed at frame 0 \(.+\)\. Choose a complete MP4 or WebM file\.$/);
  });

  it('H.265, which this Chromium cannot decode: named with its codec string, before any decoding', async () => {
    const result = await probe('/video/hevc.mp4', null);
    expect(result).toMatchObject({ ok: false, stage: 'open', name: 'VideoInputError' });
    expect(!result.ok && result.message).toMatch(/^"hevc\.mp4" is H\.265 \(HEVC\) video \((hev1|hvc1)\.[^)]+\), which this browser cannot decode\. Convert it to H\.264 \(MP4\) or VP9 \(WebM\), e\.g\. ffmpeg -i "hevc\.mp4"/);
  });

  it('audio only: no video track', async () => {
    const result = await probe('/video/audio-only.webm', null);
    expect(!result.ok && result.message).toMatch(/^"audio-only\.webm" has no video track \(it holds audio only\)\. Choose a file with video in it\.$/);
  });

  it('a video track without frames', async () => {
    const result = await probe('/video/zero-frames.webm', null);
    expect(!result.ok && result.message).toMatch(/^"zero-frames\.webm" has a video track \(VP9\) but no frames/);
  });
});
