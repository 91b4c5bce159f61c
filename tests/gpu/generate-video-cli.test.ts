/**
 * `npm run cli -- generate --video` end to end on the tiny SmolVLM2 fixture through dawn.node: a real MP4 made by
 * ffmpeg, its sampled frames decoded by ffmpeg, the processor's video prompt, the engine's answer, and SparseMM's
 * smaller cache on the video prompt. (The dry run and the reader are tested without a GPU in
 * tests/unit/generate-video-cli.test.ts.)
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerateReport } from '../../src/cli/generate';
import { writeFixture } from '../../src/model-io/fixture';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const tsx = join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');
let dir: string;
let model: string;
let clip: string;

async function generate(args: string[]): Promise<GenerateReport> {
  const { stdout } = await run(process.execPath, [tsx, join(root, 'src', 'cli', 'main.ts'), 'generate', '--model', model, ...args, '--json'], { cwd: root, maxBuffer: 1 << 26 });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as GenerateReport;
}

describe('generate --video on the tiny SmolVLM2', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'generate-video-gpu-'));
    model = join(dir, 'smolvlm2-tiny');
    await writeFixture(model, { preset: 'smolvlm2-tiny' });
    clip = join(dir, 'clip300.mp4');
    // 300 frames at 30 fps, H.264 with B-frames: ffmpeg's test pattern with a moving bar and a frame counter.
    execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=30:duration=10', '-c:v', 'libx264', '-bf', '2', '-pix_fmt', 'yuv420p', clip]);
  }, 120_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers about a real MP4; the report gives the sampled frames and the prompt; sparsemm --budget 64 keeps a smaller cache', async () => {
    // Four frames keep SwiftShader's vision tower short; the full ten are the dry run's (unit) test. With 4 frames at
    // 1 fps the 10 s clip is "long" (10 - 2 s > 4 x 1): its first and last second are skipped, linspace(30, 270, 4).
    const question = ['--video', clip, '--max-frames', '4', '--prompt', 'Describe this video.', '--max-new-tokens', '3'];
    const full = await generate(question);
    expect(full.videos).toEqual([{
      file: clip, nativeFps: 30, totalFrames: 300, durationSeconds: 10, frameIndices: [30, 110, 190, 270], timestamps: [1, 110 / 30, 190 / 30, 9], imageTokens: 4 * 16,
    }]);
    expect(full.images).toEqual([]);
    expect(full.promptText.startsWith('<|im_start|>User: You are provided the following series of four frames from a 0:00:10 [H:MM:SS] video.\n\nFrame from 00:01:')).toBe(true);
    expect(full.promptText).toContain('\nFrame from 00:09:');
    expect(full.tokenIds).toHaveLength(3);
    expect(full.imageTokens).toBe(64);
    expect(full.imagesEncoded).toBe(4);
    expect(full.kvBytes).toBe(full.fullCacheKvBytes);

    const sparse = await generate([...question, '--policy', 'sparsemm', '--budget', '64']);
    expect(sparse.promptTokens).toBe(full.promptTokens);
    expect(sparse.compressed).toBe(true);
    expect(sparse.kvBytes).toBeLessThan(full.kvBytes);
    expect(sparse.tokenIds).toHaveLength(3);
  }, 600_000);
});
