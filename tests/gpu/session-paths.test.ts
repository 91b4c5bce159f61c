/**
 * The CLI and the app answer through the same ChatSession, so the same inputs give the same tokens: `generate --json`
 * (a child process, as a user runs it) against the worker's EngineApi (createEngineApi, the code the UI talks to
 * through comlink) on dawn.node, with the same picture, question and policies on the tiny fixture.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerateReport } from '../../src/cli/generate';
import type { GpuContext } from '../../src/engine/gpu';
import { ensureTinyFixture } from '../../src/model-io/fixture';
import type { AskOptions, EngineApi, RunResult } from '../../src/worker/api';
import { createNodeEngine, modelFolderFiles } from '../helpers/node-engine';

const execute = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const tsx = join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const sample = join(root, 'public', 'samples', 'shapes.png');
const question = 'Describe the image.';
const maxNewTokens = 6;

let fixture: string;
let engine: EngineApi;
const contexts: GpuContext[] = [];

async function cliTokens(extra: string[]): Promise<GenerateReport> {
  const { stdout } = await execute(process.execPath, [
    tsx, join(root, 'src', 'cli', 'main.ts'), 'generate', '--model', fixture, '--image', sample, '--prompt', question,
    '--max-new-tokens', String(maxNewTokens), '--json', ...extra,
  ], { cwd: root, maxBuffer: 1 << 24 });
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as GenerateReport;
}

async function appAnswer(options: Partial<AskOptions>): Promise<RunResult> {
  engine.newChat(); // one question each, as each CLI run is
  const { added, rejected } = await engine.addImages([{ file: new Blob([new Uint8Array(await readFile(sample))]), name: 'shapes.png' }]);
  expect([added.length, rejected]).toEqual([1, []]);
  return engine.ask(question, { policy: 'full', budget: 256, window: 32, ratio: 0.1, maxNewTokens, ...options }, () => {});
}

describe('CLI and app paths', () => {
  beforeAll(async () => {
    fixture = await ensureTinyFixture();
    // The same decoder as the CLI, so both paths hand the processor the same pixels.
    engine = await createNodeEngine(sample, (ctx) => contexts.push(ctx));
    await engine.loadModel({ kind: 'files', files: await modelFolderFiles(fixture) }, () => {});
  }, 120_000);

  afterAll(() => {
    for (const ctx of contexts) ctx.destroy();
  });

  it('full cache and SparseMM (uniform scores, compressed) give the same tokens and prompt from both', async () => {
    const fullCli = await cliTokens([]);
    const fullApp = await appAnswer({});
    expect(fullApp.tokenIds).toHaveLength(maxNewTokens);
    expect(fullApp.tokenIds).toEqual(fullCli.tokenIds);
    expect(fullApp.metrics.promptTokens).toBe(fullCli.promptTokens);
    expect(fullApp.metrics.imageTokens).toBe(fullCli.imageTokens);
    expect(fullApp.answer).toBe(fullCli.text);

    const sparseCli = await cliTokens(['--policy', 'sparsemm', '--budget', '64', '--window', '8']);
    const sparseApp = await appAnswer({ policy: 'sparsemm', budget: 64, window: 8 });
    expect(sparseCli.compressed).toBe(true);
    expect(sparseApp.compressed).toBe(true);
    expect(sparseApp.tokenIds).toEqual(sparseCli.tokenIds);
    expect(sparseApp.metrics.engineKvBytes).toBe(sparseCli.kvBytes);
    // One uniform-scores rule, said by both.
    expect(sparseApp.warnings.join(' ')).toMatch(/SparseMM uses uniform scores/);
    expect(sparseCli.warnings.join(' ')).toMatch(/SparseMM uses uniform scores/);
  }, 240_000);
});
