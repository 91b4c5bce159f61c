/**
 * The CLI's video path without a GPU: real videos made by Debian's ffmpeg, read by ffprobe / ffmpeg (src/cli/video-file.ts)
 * and `generate --video ... --dry-run` (the processor alone, on a model folder that has no weights file at all). The
 * issue's check: a 300-frame 30 fps MP4 gives frames 0, 33, ..., 299 and the prompt transformers writes; the frame
 * indices equal the app's container reader's (mediabunny) for the same files; ffmpeg hands over the chosen frames
 * (each frame of the test clip carries its own index in its red channel); bad files and settings exit with code 2.
 */
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGenerateArgs, readConversation } from '../../src/cli/generate';
import type { DryRunReport } from '../../src/cli/generate-video';
import { decodeVideoFrames, probeVideoFile } from '../../src/cli/video-file';
import { writeFixture } from '../../src/model-io/fixture';
import { sampleVideoFrames } from '../../src/model-io/video-sampling';
import { openVideo } from '../../src/worker/video-input';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const tsx = join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');

/** An H.264 clip (B-frames, a key frame a second) whose frame n has red = round(0.8 n): which frame ffmpeg gave is readable. */
function countingClip(path: string, rate: string, seconds: number): void {
  execFileSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `nullsrc=s=64x48:r=${rate}:d=${seconds}`,
    '-vf', "geq=r='0.8*N':g=128:b=64", '-c:v', 'libx264', '-bf', '2', '-g', '30', '-qp', '4', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', path,
  ]);
}

let dir: string;
let model: string;
let clip: string;

function generate(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [tsx, join(root, 'src', 'cli', 'main.ts'), 'generate', '--model', model, ...args], { cwd: root, maxBuffer: 1 << 26 });
}

async function dryRun(args: string[]): Promise<DryRunReport> {
  const { stdout } = await generate([...args, '--dry-run', '--json']);
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as DryRunReport;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'generate-video-'));
  // The smolvlm2-tiny model without its weights file: a dry run must not need it.
  const full = join(dir, 'full');
  await writeFixture(full, { preset: 'smolvlm2-tiny' });
  model = join(dir, 'no-weights');
  execFileSync('mkdir', [model]);
  for (const name of readdirSync(full)) if (!name.endsWith('.safetensors')) copyFileSync(join(full, name), join(model, name));
  clip = join(dir, 'clip300.mp4');
  countingClip(clip, '30', 10);
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('generate --video --dry-run', () => {
  it('a 300-frame 30 fps MP4: frames 0, 33, ..., 299 and transformers\' prompt, without reading weights', async () => {
    const report = await dryRun(['--video', clip, '--prompt', 'Describe this video.']);
    expect(report.videos).toEqual([{
      file: clip, nativeFps: 30, totalFrames: 300, durationSeconds: 10,
      frameIndices: [0, 33, 66, 99, 132, 166, 199, 232, 265, 299],
      timestamps: [0, 33, 66, 99, 132, 166, 199, 232, 265, 299].map((i) => i / 30),
      imageTokens: 10 * 16,
    }]);
    const block = `<fake_token_around_image><global-img>${'<image>'.repeat(16)}<fake_token_around_image>`;
    const stamps = ['00:00', '00:01', '00:02', '00:03', '00:04', '00:05', '00:06', '00:07', '00:08', '00:09'];
    expect(report.promptText).toBe(
      '<|im_start|>User: You are provided the following series of ten frames from a 0:00:10 [H:MM:SS] video.\n' +
        stamps.map((stamp) => `\nFrame from ${stamp}:${block}`).join('') +
        '\n\nDescribe this video.<end_of_utterance>\nAssistant:',
    );
    expect(report.imageTokens).toBe(160);
    expect(report.promptTokens).toBeGreaterThan(160);
    expect(report.images).toEqual([]);
  }, 120_000);

  it('--fps and --max-frames override video_sampling; two videos are expanded in order', async () => {
    const five = await dryRun(['--video', clip, '--fps', '2', '--max-frames', '5', '--prompt', 'What changes?']);
    expect(five.videos[0].frameIndices).toEqual([0, 74, 149, 224, 299]);
    expect(five.promptText).toContain('series of five frames from a 0:00:10 [H:MM:SS] video.');
    const two = await dryRun(['--video', clip, '--video', clip, '--max-frames', '3', '--prompt', 'Compare them.']);
    expect(two.videos).toHaveLength(2);
    expect(two.promptText.split('series of three frames')).toHaveLength(3);
    expect(two.imageTokens).toBe(2 * 3 * 16);
  }, 120_000);

  it('samples the frames the app\'s container reader (mediabunny) samples, for the sample clips', async () => {
    const clips = [join(root, 'public', 'samples', 'clock-h264.mp4'), join(root, 'public', 'samples', 'clock-vp9.webm'), join(root, 'tests', 'data', 'video', 'clock-ntsc.mp4')];
    const settings = { fps: 3.5, maxFrames: 9 };
    const report = await dryRun([...clips.flatMap((path) => ['--video', path]), '--fps', String(settings.fps), '--max-frames', String(settings.maxFrames), '--prompt', 'Which frames?']);
    for (const [i, path] of clips.entries()) {
      const opened = await openVideo(new Blob([readFileSync(path)]), basename(path), false);
      opened.close();
      expect(report.videos[i].frameIndices, path).toEqual(sampleVideoFrames(opened.facts, settings).frameIndices);
      expect(report.videos[i].totalFrames, path).toBe(opened.facts.totalFrames);
    }
  }, 180_000);

  it('refuses a file that is not a video, a missing one, bad settings and pictures with a video, with exit code 2', async () => {
    const text = join(dir, 'not-a-video.mp4');
    writeFileSync(text, 'This is not a video.\n');
    await expect(generate(['--video', text, '--prompt', 'x', '--dry-run'])).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/not-a-video\.mp4: not a video file ffprobe can read/) });
    await expect(probeVideoFile(join(dir, 'nowhere.mp4'))).rejects.toThrow(/the video .*nowhere\.mp4 does not exist/);
    // Refused while parsing (before anything is read), as UsageErrors: exit code 2.
    const parse = (args: string[]) => () => parseGenerateArgs(['--model', model, '--prompt', 'x', ...args]);
    expect(parse(['--video', clip, '--fps', '0'])).toThrow(/--fps must be a positive number/);
    expect(parse(['--video', clip, '--max-frames', '2.5'])).toThrow(/--max-frames must be an integer/);
    expect(parse(['--fps', '2'])).toThrow(/--fps and --max-frames sample videos: add --video FILE/);
    expect(parse(['--video', clip, '--image', join(root, 'public', 'samples', 'shapes.png')])).toThrow(/pictures or videos, not both/);
    expect(parse(['--video', clip, '--dry-run', '--dump', dir])).toThrow(/--dry-run reads no weights/);
    // A conversation file's turns may carry "videos" (paths relative to the file), never beside "images".
    const conversation = join(dir, 'chat.json');
    writeFileSync(conversation, JSON.stringify([{ text: 'What happens?', videos: [basename(clip)] }, { text: 'And then?' }]));
    expect(readConversation(conversation)).toEqual([{ text: 'What happens?', images: [], videos: [clip] }, { text: 'And then?', images: [], videos: [] }]);
    writeFileSync(conversation, JSON.stringify([{ text: 'Both?', videos: [basename(clip)], images: [basename(clip)] }]));
    expect(() => readConversation(conversation)).toThrow(/turn 1 of .*chat\.json: a question holds pictures or videos, not both/);
  }, 120_000);

  it('a model without a video path (SmolVLM) says what to load instead', async () => {
    const smolvlm = join(dir, 'smolvlm');
    await writeFixture(smolvlm, { preset: 'tiny' });
    rmSync(join(smolvlm, 'model.safetensors'));
    await expect(run(process.execPath, [tsx, join(root, 'src', 'cli', 'main.ts'), 'generate', '--model', smolvlm, '--video', clip, '--prompt', 'x', '--dry-run'], { cwd: root }))
      .rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/no video path .*SmolVLM2/) });
  }, 60_000);
});

describe('ffprobe and ffmpeg (src/cli/video-file.ts)', () => {
  it('reads the track facts and decodes exactly the chosen frames, in presentation order (B-frames), at the tile size', async () => {
    const facts = await probeVideoFile(clip);
    expect(facts).toMatchObject({ nativeFps: 30, totalFrames: 300, durationSeconds: 10, codec: 'h264', width: 64, height: 48 });
    const indices = [0, 1, 33, 150, 298, 299];
    const frames = await decodeVideoFrames(clip, indices, 32);
    expect(frames.map((f) => [f.width, f.height, f.channels, f.data.length])).toEqual(indices.map(() => [32, 32, 3, 32 * 32 * 3]));
    frames.forEach((frame, i) => {
      let red = 0;
      for (let p = 0; p < 32 * 32; p++) red += frame.data[p * 3];
      expect(red / (32 * 32), `frame ${indices[i]}`).toBeCloseTo(0.8 * indices[i], -0.7); // within ~2.5 of its own value
    });
  }, 60_000);

  it('refuses the bad inputs of the app\'s tests: cut short, corrupt, no frames, no video track, not a video', async () => {
    const bad = join(root, 'tests', 'data', 'video');
    await expect(probeVideoFile(join(bad, 'truncated.mp4'))).rejects.toThrow(/truncated\.mp4 is damaged or cut short: its index lists 96 frames but only 45 are in the file/);
    await expect(probeVideoFile(join(bad, 'zero-frames.webm'))).rejects.toThrow(/zero-frames\.webm: not a video file ffprobe can read/);
    await expect(probeVideoFile(join(bad, 'audio-only.webm'))).rejects.toThrow(/audio-only\.webm has no video track/);
    await expect(probeVideoFile(join(bad, 'not-a-video.mp4'))).rejects.toThrow(/not-a-video\.mp4: not a video file ffprobe can read/);
    // Its frame data overwritten: the container reads, the H.264 decoder fails (ffmpeg exits non-zero).
    const corrupt = join(bad, 'corrupt.mp4');
    const facts = await probeVideoFile(corrupt);
    await expect(decodeVideoFrames(corrupt, sampleVideoFrames(facts, { fps: 1, maxFrames: 64 }).frameIndices, 32)).rejects.toThrow(/corrupt\.mp4: its frames could not be decoded \(ffmpeg: /);
    // A frame past the end is not silently dropped.
    await expect(decodeVideoFrames(clip, [0, 300], 32)).rejects.toThrow(/only 1 of the 2 chosen frames could be decoded/);
  }, 60_000);
});
