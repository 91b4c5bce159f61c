/**
 * The worker's EngineApi (createEngineApi, what the UI talks to through comlink) on dawn.node with the tiny fixture:
 * a GPU device lost during an answer (mid-prefill and mid-decode) ends it with a message that says so — not as a
 * Stop, and the conversation does not keep it (its picture waits again); the model comes back on a new device. A
 * failed load (a truncated weights file) leaves the loaded model answering, and loadedModelId says which it is.
 * The same in Chromium, with a real GPU process crash too: tests/e2e/rough-edges.test.ts.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu';
import { ensureTinyFixture } from '../../src/model-io/fixture';
import type { AskOptions, EngineApi } from '../../src/worker/api';
import { createNodeEngine, modelFolderFiles } from '../helpers/node-engine';

const sample = join(import.meta.dirname, '..', '..', 'public', 'samples', 'shapes.png');
const options: AskOptions = { policy: 'full', budget: 256, window: 32, ratio: 0.1, maxNewTokens: 200 };
const interrupted = /^The GPU device was lost \(The device was destroyed.*\) and this answer was interrupted; the conversation does not keep it\./;

let engine: EngineApi;
let files: Map<string, Blob>;
const contexts: GpuContext[] = [];

async function addPicture(): Promise<void> {
  const { added } = await engine.addImages([{ file: new Blob([new Uint8Array(await readFile(sample))]), name: 'shapes.png' }]);
  expect(added).toHaveLength(1);
}

describe('an answer interrupted by a lost GPU device', () => {
  beforeAll(async () => {
    const fixture = await ensureTinyFixture();
    engine = await createNodeEngine(sample, (ctx) => contexts.push(ctx));
    files = await modelFolderFiles(fixture);
    await engine.loadModel({ kind: 'files', files }, () => {});
  }, 120_000);

  afterAll(() => {
    for (const ctx of contexts) ctx.destroy();
  });

  it('mid-decode: the answer fails with the loss, the conversation keeps nothing, the model comes back', async () => {
    await addPicture();
    let loss: Promise<void> | null = null;
    const answer = engine.ask('Tell me a long story.', options, (event) => {
      if (event.tokens >= 2) loss ??= engine.simulateDeviceLoss();
    });
    await expect(answer).rejects.toThrow(interrupted);
    await loss;
    // Not kept: the picture waits for the next question, and the context holds no exchange.
    expect(engine.listImages().map((image) => image.sent)).toEqual([false]);
    expect(engine.contextUsage()?.conversationTokens).toBe(0);
    const next = await engine.ask('And now?', { ...options, maxNewTokens: 3 }, () => {});
    expect(next.tokenIds.length).toBeGreaterThanOrEqual(1);
    expect(next.stoppedBy).not.toBe('cancel');
  });

  it('mid-prefill (before the first token): the same message, no timings of work that never finished', async () => {
    engine.newChat();
    await addPicture();
    let tokens = 0;
    const answer = engine.ask('What is it?', options, () => void tokens++);
    const loss = engine.simulateDeviceLoss();
    await expect(answer).rejects.toThrow(interrupted);
    expect(tokens).toBe(0);
    await loss;
    expect(engine.listImages().map((image) => image.sent)).toEqual([false]);
  });

  it('a truncated weights file is refused and the loaded model stays', async () => {
    const loadedId = engine.loadedModelId();
    expect(loadedId).toMatch(/^files\//);
    const weights = files.get('model.safetensors');
    if (!weights) throw new Error('the fixture has no model.safetensors');
    const truncated = new Map(files).set('model.safetensors', weights.slice(0, Math.floor(weights.size / 2)));
    await expect(engine.loadModel({ kind: 'files', files: truncated }, () => {})).rejects.toThrow(/the file is truncated/);
    expect(engine.loadedModelId()).toBe(loadedId);
    const answer = await engine.ask('Still there?', { ...options, maxNewTokens: 2 }, () => {});
    expect(answer.tokenIds.length).toBeGreaterThanOrEqual(1);
  });
});
