/**
 * The app's Budget sweep with a weight format (EngineApi.fidelitySweep with request.weightFormat, the code the UI talks
 * to) on dawn.node and the tiny fixture: the rows run on a q4 copy of the loaded bf16 model, made from the cached files
 * for the sweep and freed after it, and equal the CLI's `fidelity --weights q4` rows; the copy is also freed when the
 * sweep is stopped or the copy runs out of GPU memory (a clear message), and the loaded model answers afterwards.
 */
import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { GpuOutOfMemoryError } from '../../src/engine/allocator';
import type { GpuContext } from '../../src/engine/gpu';
import { ensureTinyFixture } from '../../src/model-io/fixture';
import type { EngineApi, FidelitySweepProgress, FidelitySweepRequest, FidelitySweepResult } from '../../src/worker/api';
import { repoRoot, runCliWithPrivateCache } from '../helpers/cli';
import { createNodeEngine, modelFolderFiles } from '../helpers/node-engine';

const sample = join(repoRoot, 'public', 'samples', 'shapes.png');
const question = 'Describe the image.';
const request: FidelitySweepRequest = { policies: ['full', 'sparsemm'], budgets: [40], window: 32, ratio: 0.1, maxNewTokens: 6, weightFormat: 'q4' };
const runCli = runCliWithPrivateCache(mkdtempSync(join(tmpdir(), 'sweep-weights-')));

let fixture: string;
let engine: EngineApi;
let ctx: GpuContext;

/** What the GPU holds beside the pictures' features (which a question encodes and keeps): bytes per category. */
function gpuHoldings(): Record<string, number> {
  const { imageFeatures: _kept, ...rest } = ctx.allocator.bytesByCategory();
  return rest;
}

async function answersAgain(): Promise<void> {
  const answer = await engine.ask(question, { policy: 'full', budget: 256, window: 32, ratio: 0.1, maxNewTokens: 4 }, () => {});
  expect(answer.tokenIds).toHaveLength(4);
  engine.newChat();
  await engine.addImages([{ file: new Blob([new Uint8Array(await readFile(sample))]), name: 'shapes.png' }]);
}

describe('Budget sweep with a weight format (worker API)', { timeout: 240_000 }, () => {
  beforeAll(async () => {
    fixture = await ensureTinyFixture();
    engine = await createNodeEngine(sample, (device) => (ctx = device));
    await engine.loadModel({ kind: 'files', files: await modelFolderFiles(fixture) }, () => {});
    await engine.addImages([{ file: new Blob([new Uint8Array(await readFile(sample))]), name: 'shapes.png' }]);
    // A first sweep on the loaded weights makes what the model keeps once made (small tables, the KV selection's
    // scratch), so what a later sweep leaves on the GPU is its own.
    await engine.fidelitySweep(question, { ...request, policies: ['sparsemm'], weightFormat: undefined }, () => {});
  }, 120_000);

  afterAll(() => ctx?.destroy());

  it('q4 rows against the bf16 full cache, the same as the CLI\'s fidelity --weights q4; the copy is freed after', async () => {
    const before = gpuHoldings();
    const steps: string[] = [];
    const result = await engine.fidelitySweep(question, request, (p: FidelitySweepProgress) => void (p.step && steps.push(p.step)));
    expect(result.stoppedBy).toBe('done');
    expect(result.reference.weights).toBe('bf16');
    expect(result.rows.map((row) => `${row.weights} ${row.policy} ${row.budget}`)).toEqual(['q4 full null', 'q4 sparsemm 40']);
    expect(steps[0]).toBe("q4 copy: reading the model's files");
    expect(steps).toContain('q4 copy: uploading weights');
    expect(gpuHoldings()).toEqual(before);

    const out = await runCli(['fidelity', '--model', fixture, '--image', sample, '--prompt', question, '--weights', 'q4', '--policies', 'full,sparsemm',
      '--budgets', '40', '--window', '32', '--max-new-tokens', '6', '--json']);
    expect(out.code, out.stderr).toBe(0);
    const cli = JSON.parse(out.stdout) as FidelitySweepResult;
    expect(result.reference.tokenIds).toEqual(cli.reference.tokenIds);
    const measured = (r: FidelitySweepResult) => r.rows.map(({ weights, policy, budget, kvBytes, agreedSteps, firstDifference, tokenIds }) =>
      ({ weights, policy, budget, kvBytes, agreedSteps, firstDifference, tokenIds }));
    expect(measured(result)).toEqual(measured(cli));
    result.rows.forEach((row, i) => expect(row.meanKl).toBeCloseTo(cli.rows[i].meanKl, 5));
    await answersAgain();
  });

  it('Stop before the copy is made: a message, nothing left on the GPU', async () => {
    const before = gpuHoldings();
    const sweep = engine.fidelitySweep(question, request, () => {});
    engine.stop();
    await expect(sweep).rejects.toThrow('Stopped while the q4 copy of the model was loading; nothing was swept.');
    expect(gpuHoldings()).toEqual(before);
    await answersAgain();
  });

  it('a copy that does not fit the GPU memory: says so, frees what it made, the loaded model answers', async () => {
    const before = gpuHoldings();
    const real = ctx.allocator.createChecked.bind(ctx.allocator);
    let weightBuffers = 0;
    // The device runs out of memory at the copy's third weight tensor (dawn.node has no smaller memory to ask for).
    const spy = vi.spyOn(ctx.allocator, 'createChecked').mockImplementation(async (category, size, usage, label) => {
      if (category === 'weights' && ++weightBuffers === 3) throw new GpuOutOfMemoryError(label, size);
      return real(category, size, usage, label);
    });
    try {
      await expect(engine.fidelitySweep(question, request, () => {})).rejects.toThrow(
        /^The q4 copy of the model \([\d.]+ MiB\) does not fit on this GPU beside the loaded bf16 weights \([\d.]+ MiB\), so nothing was swept: The GPU ran out of memory allocating .*fidelity --weights q4/,
      );
    } finally {
      spy.mockRestore();
    }
    expect(gpuHoldings()).toEqual(before);
    await answersAgain();
  });
});
