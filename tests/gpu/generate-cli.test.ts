/**
 * `npm run cli -- generate` end to end on the tiny fixture through dawn.node: the real loader, processor, engine and
 * KV policies, as a user runs them.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCanvas } from '@napi-rs/canvas';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureTinyFixture } from '../../src/model-io/fixture';
import type { GenerateReport } from '../../src/cli/generate';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const tsx = join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const sample = join(root, 'public', 'samples', 'shapes.png');
let fixture: string;

async function generate(extra: string[]): Promise<GenerateReport> {
  const { stdout } = await run(process.execPath, [
    tsx, join(root, 'src', 'cli', 'main.ts'), 'generate', '--model', fixture, '--image', sample, '--prompt', 'Describe the image.',
    '--max-new-tokens', '6', '--json', ...extra,
  ], { cwd: root, maxBuffer: 1 << 24 });
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as GenerateReport;
}

/** Runs the CLI with exactly `args` after the model (no default image or prompt). */
function cli(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [tsx, join(root, 'src', 'cli', 'main.ts'), 'generate', '--model', fixture, ...args], { cwd: root, maxBuffer: 1 << 24 });
}

function lastJson<T>(stdout: string): T {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}

describe('generate CLI on the tiny fixture', () => {
  beforeAll(async () => {
    fixture = await ensureTinyFixture();
  });

  it('prints the JSON report with non-zero measurements; sparsemm 64 uses less KV memory; a budget above the prompt gives the full tokens', async () => {
    const full = await generate([]);
    expect(full.tokenIds.length).toBe(6);
    expect(typeof full.text).toBe('string');
    expect(full.promptTokens).toBeGreaterThan(full.imageTokens);
    expect(full.imageTokens).toBeGreaterThan(0);
    expect(full.imageTokens % 16).toBe(0); // 16 image tokens per 64 px tile
    for (const key of ['prefillMs', 'decodeMsPerToken', 'kvBytes', 'weightBytes'] as const) expect(full[key]).toBeGreaterThan(0);
    expect(full.kvBytes).toBe(full.fullCacheKvBytes);

    const sparse = await generate(['--policy', 'sparsemm', '--budget', '64', '--window', '8']);
    expect(sparse.compressed).toBe(true);
    expect(sparse.kvBytes).toBeLessThan(0.75 * full.kvBytes);
    expect(sparse.warnings.join(' ')).toMatch(/SparseMM uses uniform scores/);

    const roomy = await generate(['--policy', 'sparsemm', '--budget', String(full.promptTokens + 1)]);
    expect(roomy.compressed).toBe(false);
    expect(roomy.tokenIds).toEqual(full.tokenIds);
    expect(roomy.kvBytes).toBe(full.kvBytes);

    // --weights q4: the text projections and lm_head in 4-bit blocks; it answers, in fewer weight bytes.
    const q4 = await generate(['--weights', 'q4']);
    expect(full.weightFormat).toBe('bf16');
    expect(q4.weightFormat).toBe('q4');
    expect(q4.tokenIds.length).toBe(6);
    expect(q4.weightBytes).toBeLessThan(full.weightBytes);
  }, 800_000); // four model loads and runs: 90 s each on a loaded 2-core machine (load average 20)

  it('--image twice: both pictures in order with their tiles and tokens; a 2000x6 PNG is processed like any other', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sparsemm-wide-'));
    const wide = join(dir, 'wide.png');
    const canvas = createCanvas(2000, 6);
    const g = canvas.getContext('2d');
    g.fillStyle = '#1b65b5';
    g.fillRect(0, 0, 2000, 6);
    writeFileSync(wide, canvas.toBuffer('image/png'));
    const { stdout } = await cli(['--image', sample, '--image', wide, '--prompt', 'Compare the two images.', '--max-new-tokens', '2', '--json']);
    const report = lastJson<GenerateReport>(stdout);
    // shapes.png: 2 x 2 tiles + global; 2000x6 -> 128x1 (kept 1 px) -> 128x64: 1 x 2 tiles + global; 16 tokens a tile.
    expect(report.images).toEqual([
      { file: sample, tiles: 5, imageTokens: 80 },
      { file: wide, tiles: 3, imageTokens: 48 },
    ]);
    expect(report.imageTokens).toBe(128);
    expect(report.imagesEncoded).toBe(2);
    expect(report.tokenIds).toHaveLength(2);
  }, 180_000);

  it('--conversation runs the turns in one process; later turns reuse the image features', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sparsemm-conversation-'));
    const file = join(dir, 'chat.json');
    writeFileSync(file, JSON.stringify([
      { text: 'What is in these images?', images: [sample, join(root, 'public', 'samples', 'table.png')] },
      { text: 'And this chart?', images: [join(root, 'public', 'samples', 'bar-chart.png')] },
      { text: 'Which has the most colours?' },
    ]));
    const { stdout } = await cli(['--conversation', file, '--longest-edge', '64', '--max-new-tokens', '2', '--json']);
    const { turns } = lastJson<{ turns: GenerateReport[] }>(stdout);
    expect(turns.map((t) => [t.prompt, t.images.length, t.imagesEncoded, t.imagesReused, t.imageTokens])).toEqual([
      ['What is in these images?', 2, 2, 0, 32],
      ['And this chart?', 3, 1, 2, 48],
      ['Which has the most colours?', 3, 0, 3, 48],
    ]);
    // Each turn's prompt holds the earlier turns and their answers.
    expect(turns[1].promptTokens).toBeGreaterThan(turns[0].promptTokens + 16);
    expect(turns[2].timeToFirstTokenMs).toBeGreaterThan(0);
  }, 180_000);

  it('among several images, one that does not decode is named and left out; the others are kept', async () => {
    const { stdout, stderr } = await cli(['--image', join(root, 'package.json'), '--image', sample, '--prompt', 'Describe.', '--longest-edge', '64', '--max-new-tokens', '1', '--json']);
    expect(stderr).toMatch(/package\.json is not an image this tool can decode.*left out, the other images are used/);
    expect(lastJson<GenerateReport>(stdout).images.map((i) => i.file)).toEqual([sample]);
  }, 120_000);

  it('a conversation file that is not JSON, or names a missing image, exits with code 2 before the model loads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sparsemm-bad-conversation-'));
    const notJson = join(dir, 'bad.json');
    writeFileSync(notJson, '[{"text": "hi",]');
    await expect(cli(['--conversation', notJson])).rejects.toMatchObject({
      code: 2, stderr: expect.stringMatching(/^generate: the conversation file .*bad\.json is not valid JSON/),
    });
    const missing = join(dir, 'missing.json');
    writeFileSync(missing, JSON.stringify([{ text: 'hi', images: ['nowhere.png'] }]));
    const failure = cli(['--conversation', missing]);
    await expect(failure).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/turn 1 of .*missing\.json names the image "nowhere\.png", but .*nowhere\.png does not exist/) });
    // Nothing was loaded: the model line never printed.
    await expect(failure).rejects.toMatchObject({ stderr: expect.not.stringMatching(/model: /) });
    await expect(cli(['--conversation', missing, '--prompt', 'x'])).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/leave out --prompt, --image and --video/) });
  }, 60_000);

  it('exits with code 2 and a clear message for a non-image file', async () => {
    const failure = run(process.execPath, [
      tsx, join(root, 'src', 'cli', 'main.ts'), 'generate', '--model', fixture, '--image', join(root, 'package.json'), '--prompt', 'hi',
    ], { cwd: root });
    await expect(failure).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/not an image/) });
    // An unknown weight format is refused before anything loads, with the known ones named.
    const unknownFormat = cli(['--prompt', 'hi', '--weights', 'int4']);
    await expect(unknownFormat).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/--weights: Unknown weight format "int4": use one of bf16, q8, q4/) });
    await expect(unknownFormat).rejects.toMatchObject({ stderr: expect.not.stringMatching(/model: /) });
  }, 60_000);
});
