/**
 * `npm run cli -- generate` end to end on the tiny fixture through dawn.node: the real loader, processor, engine and
 * KV policies, as a user runs them.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
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
  }, 180_000);

  it('exits with code 2 and a clear message for a non-image file', async () => {
    const failure = run(process.execPath, [
      tsx, join(root, 'src', 'cli', 'main.ts'), 'generate', '--model', fixture, '--image', join(root, 'package.json'), '--prompt', 'hi',
    ], { cwd: root });
    await expect(failure).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/not an image/) });
  }, 60_000);
});
