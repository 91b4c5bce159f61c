/**
 * Compare in headless Chromium on SwiftShader, on the tiny fixture with one picture (a prompt of about 100 tokens):
 * - at the default budget 256 SparseMM compresses nothing, and Compare must say so in its figures: KV bytes 1.00x,
 *   decode "no measurable difference" (the two caches decode in lockstep, so order and warm-up favour neither), the
 *   vision encoding once, for both runs, with no ratio;
 * - at budget 64 (window 8) it compresses: the decode verdict comes with both spreads (IQR), and the bytes line gives
 *   the bound the bytes allow on a GPU, with the note on what a CPU emulation's figure means.
 * Screenshots: test-results/compare-no-compression.png and test-results/compare-budget-64.png (the turn), each with
 * its -metrics.png (the Metrics table).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openAppWithTinyModel, projectRoot, screenshotDir, type TinyModelApp } from '../helpers/browser';

const samplePng = readFileSync(join(projectRoot, 'public', 'samples', 'shapes.png'));
/** Enough decode steps for a verdict (timing-stats wants 4 per side), few enough for SwiftShader. */
const maxNewTokens = 16;

let app: TinyModelApp;
let page: Page;

beforeAll(async () => {
  app = await openAppWithTinyModel({ width: 1280, height: 1000 });
  ({ page } = app);
});

afterAll(async () => {
  await app?.close();
});

const policyControls = () => page.getByTestId('policy-controls');
const lastTurn = () => page.getByTestId('turn').last();
const metricsRow = (name: string) => page.getByTestId('metrics-panel').locator('tbody tr').filter({ has: page.locator('th', { hasText: new RegExp(`^${name}$`) }) });

async function waitForIdle(timeout = 300_000): Promise<void> {
  await expect
    .poll(async () => page.locator('[data-testid="answer-text"][data-streaming="true"]').count(), { timeout, interval: 250 })
    .toBe(0);
  await expect.poll(async () => page.getByTestId('stop-button').isDisabled(), { timeout: 30_000 }).toBe(true);
}

/** The comparison (question, both answers, the figures under them) and the Metrics table, in one picture each. */
async function screenshotComparison(name: string): Promise<void> {
  mkdirSync(screenshotDir, { recursive: true });
  // The app shows the transcript in a scrolling box of at most 44rem; for the picture, the whole turn at once.
  const unclipped = await page.addStyleTag({ content: '[data-testid="transcript"] { max-height: none !important; }' });
  await lastTurn().screenshot({ path: join(screenshotDir, `${name}.png`) });
  await unclipped.evaluate((style) => (style as Element).remove());
  await page.getByTestId('metrics-panel').locator('table').screenshot({ path: join(screenshotDir, `${name}-metrics.png`) });
}

async function failOnAlert(): Promise<void> {
  const alert = page.getByTestId('alert-text');
  if (await alert.isVisible()) throw new Error(`The app reported an error: ${await alert.innerText()}`);
}

/** Adds the sample picture, sets the policy, asks with Compare on, and waits for both answers. */
async function compareWith(budget: number, window: number): Promise<void> {
  await page.getByTestId('image-input').setInputFiles({ name: 'shapes.png', mimeType: 'image/png', buffer: samplePng });
  await expect.poll(() => page.getByTestId('pending-image-name').allInnerTexts(), { timeout: 60_000 }).toEqual(['shapes.png']);
  await policyControls().getByRole('radio', { name: 'SparseMM' }).check();
  await policyControls().getByRole('slider', { name: /^Budget/ }).fill(String(budget));
  await policyControls().getByRole('spinbutton', { name: 'Window' }).fill(String(window));
  await policyControls().getByRole('spinbutton', { name: 'Max new tokens' }).fill(String(maxNewTokens));
  await policyControls().getByRole('checkbox', { name: /^Compare/ }).check();
  const box = page.getByTestId('question-input');
  await box.fill('Describe the picture.');
  await box.press('Enter');
  await lastTurn().getByTestId('compare-panel').waitFor({ timeout: 30_000 });
  await waitForIdle();
  await failOnAlert();
}

describe('Compare measures both caches under the same conditions', () => {
  test('loads the tiny model', async () => {
    const summary = page.getByTestId('model-summary');
    const loadError = page.getByTestId('load-error');
    await summary.or(loadError).waitFor({ timeout: 180_000 });
    if (await loadError.isVisible()) throw new Error(`The fixture did not load: ${await loadError.innerText()}`);
  });

  test('at budget 256 nothing is compressed: KV 1.00x, no measurable decode difference, one vision figure', async () => {
    await compareWith(256, 32);
    const compare = lastTurn().getByTestId('compare-panel');
    const ratios = compare.getByTestId('compare-ratios');
    // Said first, before any figure: both caches are the same, so nothing after it is the policy's doing.
    expect(await compare.getByTestId('compare-not-compressed').innerText()).toMatch(/^the prompt \(\d+ tokens\) is shorter than the budget, so nothing was compressed/);
    expect(await ratios.locator('[data-ratio="kv"]').innerText()).toBe('1.00x');
    // The step counts allow a verdict, and the same cache twice differs by nothing measurable.
    const decode = ratios.locator('[data-ratio="decode"]');
    expect(await decode.getAttribute('data-verdict')).toBe('no-measurable-difference');
    expect(await decode.innerText()).toBe('no measurable difference');
    // Each column gives its median with the spread beside it.
    const decodeCells = await compare.locator('[data-metric="decode-ms"]').allInnerTexts();
    expect(decodeCells).toHaveLength(2);
    for (const cell of decodeCells) expect(cell).toMatch(/^\d+\.\d+ ms \(IQR \d+\.\d+\)$/);
    // The picture went through the vision tower once, before both runs: said once, not per answer.
    expect(await compare.getByTestId('compare-vision').innerText()).toMatch(/^Pictures: 1 encoded by the vision tower once, for both runs \(/);
    expect(await compare.getByTestId('answer-pictures').count()).toBe(0);
    // Same bytes per step: no gain is possible on a GPU either.
    expect(await compare.getByTestId('compare-bytes').innerText()).toMatch(/reads 1\.00x the bytes of the full cache per token .*it cannot be faster here/);
    // The Metrics table: the vision row is shared (one cell, no ratio); decode and KV read as above.
    const vision = metricsRow('Vision encoding');
    expect(await vision.getAttribute('data-shared')).toBe('true');
    expect(await vision.locator('td').count()).toBe(2); // the value across both runs + an empty ratio cell
    expect(await vision.locator('td.vw-ratio').innerText()).toBe('');
    expect(await vision.innerText()).toMatch(/once for both runs/);
    expect(await metricsRow('Decode per token').locator('td.vw-ratio').innerText()).toBe('no measurable difference');
    expect(await metricsRow('KV cache').locator('td.vw-ratio').innerText()).toBe('1.00x');
    // Nothing but the text prefill's verdict claims the run with nothing compressed is "faster". That one may read any
    // verdict: four prefills a side can leave a chance gap outside the quartile boxes on a loaded machine (CI once
    // read 1.12x there), and the issue asks for "no measurable difference" of the decode.
    const withoutPrefillVerdict = (text: string) => text.replace(/^Text prefill.*$/gm, '').replace(/text prefill: [^;\n]*/g, '');
    expect(withoutPrefillVerdict(await page.getByTestId('metrics-panel').innerText())).not.toMatch(/faster/);
    expect(withoutPrefillVerdict(await compare.innerText())).not.toMatch(/\dx faster/);
    // Chromium's SwiftShader adapter: what its timings mean, without the sentence on dropped keys (none were).
    const note = await compare.getByTestId('compare-software-note').innerText();
    expect(note).toMatch(/CPU emulation/);
    expect(note).not.toMatch(/Dropping keys/);
    await screenshotComparison('compare-no-compression');
  });

  test('at budget 64 SparseMM compresses: a verdict with its spread, the bytes and their bound', async () => {
    await page.getByRole('button', { name: 'New chat' }).click();
    await expect.poll(() => page.getByTestId('turn').count(), { timeout: 30_000 }).toBe(0);
    await compareWith(64, 8);
    const compare = lastTurn().getByTestId('compare-panel');
    const ratios = compare.getByTestId('compare-ratios');
    expect(await ratios.innerText()).not.toMatch(/nothing was compressed/);
    expect(await compare.getByTestId('compare-software-note').innerText()).toMatch(/Dropping keys .* artefact of the emulation/);
    const kvRatio = Number((await ratios.locator('[data-ratio="kv"]').innerText()).replace('x', ''));
    expect(kvRatio).toBeGreaterThan(0);
    expect(kvRatio).toBeLessThan(1);
    const decode = ratios.locator('[data-ratio="decode"]');
    expect(['faster', 'slower', 'no-measurable-difference']).toContain(await decode.getAttribute('data-verdict'));
    expect(await decode.innerText()).toMatch(/^(\d+\.\d\dx (faster|slower)|no measurable difference)$/);
    for (const cell of await compare.locator('[data-metric="decode-ms"]').allInnerTexts()) expect(cell).toMatch(/\(IQR \d+\.\d+\)/);
    // Fewer K/V rows per step: the bytes line gives the ratio and the bound (above 1) they allow on a GPU.
    const bytes = await compare.getByTestId('compare-bytes').innerText();
    expect(bytes).toMatch(/this cache reads 0\.\d\dx the bytes of the full cache per token .*: on a GPU, decode can be at most \d+\.\d\dx faster here/);
    expect(Number(await compare.getByTestId('compare-bytes').getAttribute('data-bound'))).toBeGreaterThan(1);
    expect(await compare.getByTestId('compare-timing-note').innerText()).toMatch(/lockstep.*median of \d+ steps/);
    // The table: the prefill row is labelled with the selection, and the shared vision row has no ratio.
    expect(await metricsRow('Text prefill \\(\\+ selection\\)').locator('td.vw-ratio').innerText()).toMatch(/faster|slower|no measurable difference|too few prefills/);
    expect(await metricsRow('Vision encoding').locator('td.vw-ratio').innerText()).toBe('');
    expect(Number((await metricsRow('Bytes read per decode step').locator('td.vw-ratio').innerText()).replace('x', ''))).toBeLessThan(1);
    await screenshotComparison('compare-budget-64');
  });

  test('both answers stream as they come, interleaved, and Stop ends both', async () => {
    await policyControls().getByRole('spinbutton', { name: 'Max new tokens' }).fill('400');
    const turns = page.getByTestId('turn');
    const before = await turns.count();
    const box = page.getByTestId('question-input');
    await box.fill('Tell me a long story about the shapes.');
    await box.press('Enter');
    await expect.poll(() => turns.count()).toBe(before + 1);
    const answers = lastTurn().getByTestId('answer-text');
    // Both columns grow while the other is still streaming: the lockstep decoding sends both streams.
    await expect
      .poll(async () => (await answers.evaluateAll((els) => els.map((el) => Number(el.getAttribute('data-tokens'))))).every((n) => n >= 3), {
        timeout: 120_000,
        interval: 50,
      })
      .toBe(true);
    expect(await answers.evaluateAll((els) => els.map((el) => el.getAttribute('data-streaming')))).toEqual(['true', 'true']);
    await page.getByTestId('stop-button').click();
    await waitForIdle();
    await failOnAlert();
    const tokens = await answers.evaluateAll((els) => els.map((el) => Number(el.getAttribute('data-tokens'))));
    expect(tokens.every((n) => n >= 3 && n < 400)).toBe(true);
    expect(await lastTurn().innerText()).toMatch(/Stopped\.[\s\S]*Stopped\./);
  });
});
