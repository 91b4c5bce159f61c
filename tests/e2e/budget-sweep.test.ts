/**
 * The Budget sweep panel end to end in headless Chromium on SwiftShader WebGPU with the tiny fixture: a list the
 * panel refuses before any run, a sweep of two policies at a compressing budget and one above the prompt (the chart
 * of top-1 agreement against KV bytes and the table; the roomy budget agrees on every token), and Stop during a sweep
 * (the finished rows stay, the engine answers again; meanwhile the chat's Send waits with the reason); and Compare's fidelity line under its two answers with the first
 * differing token marked; the Benchmark tab's OCR accuracy table; Weights q4 (rows on a q4 copy of the model against
 * the bf16 full cache; the model answers after). Screenshots: test-results/budget-sweep.png,
 * test-results/compare-fidelity.png, test-results/ocr-accuracy.png, test-results/budget-sweep-q4.png.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openAppWithTinyModel, projectRoot, screenshot, type TinyModelApp } from '../helpers/browser';

const samplePng = readFileSync(join(projectRoot, 'public', 'samples', 'shapes.png'));

let app: TinyModelApp;
let page: Page;

beforeAll(async () => {
  app = await openAppWithTinyModel({ width: 1400, height: 1400 });
  ({ page } = app);
});

afterAll(async () => {
  await app?.close();
});

const sweep = () => page.getByTestId('sweep-section');
const rows = () => sweep().getByTestId('sweep-row');

async function setMaxNewTokens(count: number): Promise<void> {
  await page.getByTestId('policy-controls').getByRole('spinbutton', { name: 'Max new tokens' }).fill(String(count));
}

async function waitForSweepEnd(): Promise<void> {
  await expect.poll(async () => sweep().getByRole('button', { name: 'Run sweep' }).isVisible(), { timeout: 240_000, interval: 250 }).toBe(true);
}

describe('budget sweep', () => {
  test('loads the model and takes a picture', async () => {
    await page.getByTestId('model-summary').waitFor({ timeout: 180_000 });
    await page.getByTestId('image-input').setInputFiles({ name: 'shapes.png', mimeType: 'image/png', buffer: samplePng });
    await expect.poll(() => page.getByTestId('pending-image-name').allInnerTexts(), { timeout: 60_000 }).toEqual(['shapes.png']);
    await setMaxNewTokens(8);
  });

  test('refuses a bad budget list before running', async () => {
    await sweep().getByTestId('sweep-budgets').fill('64, abc');
    await sweep().getByRole('button', { name: 'Run sweep' }).click();
    expect(await sweep().getByTestId('sweep-error').innerText()).toMatch(/Budget "abc" is not a whole number/);
    await sweep().getByTestId('sweep-budgets').fill('16');
    await sweep().getByRole('button', { name: 'Run sweep' }).click();
    expect(await sweep().getByTestId('sweep-error').innerText()).toMatch(/must exceed the observation window/);
  });

  test('sweeps SparseMM and SnapKV: chart and table, the roomy budget agrees on every token', async () => {
    await sweep().getByTestId('sweep-budgets').fill('40, 100000');
    await sweep().getByRole('button', { name: 'Run sweep' }).click();
    await waitForSweepEnd();
    expect(await sweep().getByTestId('sweep-error').count()).toBe(0);
    expect(await rows().count()).toBe(5); // the full cache, then 2 policies x 2 budgets
    const roomy = sweep().locator('[data-testid="sweep-row"][data-budget="100000"]');
    expect(await roomy.count()).toBe(2);
    for (const agreement of await roomy.evaluateAll((els) => els.map((el) => el.getAttribute('data-agreement')))) expect(agreement).toBe('1');
    expect(await roomy.first().innerText()).toMatch(/8\/8\s+0\.0000\s+0\.0000\s+none/);
    const tight = sweep().locator('[data-testid="sweep-row"][data-budget="40"]');
    expect(await tight.count()).toBe(2);
    // The chart draws one line per policy plus the full cache's point.
    const chart = sweep().getByTestId('sweep-chart-top1Agreement');
    await expect.poll(async () => chart.locator('.recharts-line').count(), { timeout: 10_000 }).toBe(3);
    expect(await chart.innerText()).toContain('SparseMM');
    await screenshot(page, 'budget-sweep');
  });

  test('Compare shows the fidelity line under the two answers and marks the first differing token', async () => {
    const controls = page.getByTestId('policy-controls');
    await controls.getByRole('radio', { name: 'SparseMM' }).check();
    await controls.getByRole('slider', { name: /^Budget/ }).fill('64');
    await controls.getByRole('spinbutton', { name: 'Window' }).fill('8');
    await controls.getByRole('checkbox', { name: /^Compare/ }).check();
    await setMaxNewTokens(12);
    const box = page.getByTestId('question-input');
    await box.fill('Describe the picture.');
    await box.press('Enter');
    const line = page.getByTestId('compare-fidelity');
    await line.waitFor({ timeout: 240_000 });
    const text = await line.innerText();
    expect(text).toMatch(/^top-1 agreement \d+\/12, mean KL [\d.e+-]+, (first difference at token \d+|no difference from the full-cache answer)$/);
    const difference = await line.getAttribute('data-first-difference');
    // The tiny random model drifts when SparseMM keeps 64 of its ~100 prompt tokens.
    expect(difference).not.toBe('');
    const marked = page.getByTestId('compare-panel').getByTestId('first-difference');
    expect(await marked.count()).toBe(1);
    await screenshot(page, 'compare-fidelity');
    await controls.getByRole('checkbox', { name: /^Compare/ }).uncheck();
    await page.getByRole('button', { name: 'New chat' }).click();
  });

  test('the Benchmark tab scores OCR probes under each policy with ANLS and word accuracy', async () => {
    const ocr = page.getByTestId('ocr-section');
    await ocr.getByRole('spinbutton', { name: 'Probes' }).fill('1');
    await ocr.getByRole('spinbutton', { name: 'Max new tokens' }).fill('4');
    await ocr.getByTestId('sweep-budgets').fill('40');
    await ocr.getByRole('button', { name: 'Run OCR accuracy' }).click();
    await expect.poll(async () => ocr.getByRole('button', { name: 'Run OCR accuracy' }).isVisible(), { timeout: 240_000, interval: 250 }).toBe(true);
    const ocrRows = ocr.getByTestId('ocr-row');
    expect(await ocrRows.count()).toBe(3); // the full cache, SparseMM 40, SnapKV 40
    expect(await ocrRows.first().innerText()).toMatch(/^Full cache\s+–\s+[\d.]+ KiB\s+\d\.\d{3}\s+\d\.\d{3}\s+1\.000\s+1$/);
    await ocr.getByTestId('ocr-chart').waitFor();
    await ocr.screenshot({ path: join(projectRoot, 'test-results', 'ocr-accuracy.png') });
  });

  test('Stop keeps the finished rows and the engine answers again', async () => {
    for (const label of ['PyramidKV', 'AdaKV', 'StreamingLLM']) await sweep().getByLabel(label).check();
    await sweep().getByTestId('sweep-budgets').fill('40, 48, 56, 64, 72, 80');
    await setMaxNewTokens(24);
    const send = page.getByTestId('send-button');
    await page.getByTestId('question-input').fill('What is in the picture?');
    expect(await send.isDisabled()).toBe(false);
    await sweep().getByRole('button', { name: 'Run sweep' }).click();
    await expect.poll(async () => Number((await sweep().locator('progress').getAttribute('value')) ?? 0), { timeout: 120_000, interval: 100 }).toBeGreaterThanOrEqual(2);
    // While the sweep runs the chat holds its question and says why (the worker would refuse it as busy).
    expect(await send.isDisabled()).toBe(true);
    expect(await page.getByTestId('chat-panel').innerText()).toContain('Wait for the budget sweep to finish (or press Stop in the Budget sweep panel).');
    await sweep().getByRole('button', { name: 'Stop' }).click();
    await waitForSweepEnd();
    await expect.poll(() => send.isDisabled(), { timeout: 10_000 }).toBe(false);
    expect(await sweep().innerText()).toContain('Stopped: the rows below are the ones finished.');
    expect(await rows().count()).toBeLessThan(1 + 5 * 6);
    await setMaxNewTokens(4);
    await sweep().getByTestId('sweep-budgets').fill('40');
    await sweep().getByRole('button', { name: 'Run sweep' }).click();
    await waitForSweepEnd();
    expect(await rows().count()).toBe(1 + 5);
  });

  test('Weights q4: the rows run on a q4 copy against the bf16 full cache, and the loaded model answers after', async () => {
    await page.getByTestId('image-input').setInputFiles({ name: 'shapes.png', mimeType: 'image/png', buffer: samplePng });
    for (const name of ['SnapKV', 'PyramidKV', 'AdaKV', 'StreamingLLM']) await sweep().getByRole('checkbox', { name }).uncheck();
    await sweep().getByTestId('sweep-budgets').fill('40');
    await setMaxNewTokens(6);
    const weights = sweep().getByTestId('sweep-weights');
    expect(await weights.locator('option').allInnerTexts()).toEqual([
      expect.stringMatching(/^bf16 \(exact\), loaded$/),
      expect.stringMatching(/^q8 \(8-bit blocks\), [\d.]+ KiB more, for the sweep$/),
      expect.stringMatching(/^q4 \(4-bit blocks\), [\d.]+ KiB more, for the sweep$/),
    ]);
    await weights.selectOption('q4');
    await sweep().getByRole('button', { name: 'Run sweep' }).click();
    await waitForSweepEnd();
    expect(await sweep().getByTestId('sweep-error').count()).toBe(0);
    // The bf16 full cache (the reference), then the q4 copy's full cache and its SparseMM row.
    const cells = await rows().evaluateAll((els) => els.map((el) => `${el.getAttribute('data-weights')} ${el.getAttribute('data-policy')} ${el.getAttribute('data-budget') ?? '-'}`));
    expect(cells).toEqual(['bf16 full -', 'q4 full -', 'q4 sparsemm 40']);
    expect(await rows().nth(1).innerText()).toMatch(/^q4\s+Full cache\s+–\s+[\d.]+ KiB\s+\d\/6\s+[\d.]+\s+[\d.]+\s+(none|token \d)/);
    expect(await sweep().getByTestId('sweep-reference').innerText()).toMatch(/^Full-cache answer \(bf16 weights, 6 tokens\)/);
    const chart = sweep().getByTestId('sweep-chart-top1Agreement');
    await expect.poll(async () => chart.locator('.recharts-line').count(), { timeout: 10_000 }).toBe(3);
    expect(await chart.innerText()).toContain('q4 SparseMM');
    await sweep().screenshot({ path: join(projectRoot, 'test-results', 'budget-sweep-q4.png') });
    // The loaded bf16 model still answers (the copy was the sweep's alone).
    await weights.selectOption('bf16');
    const answers = page.getByTestId('answer-text');
    const before = await answers.count();
    const box = page.getByTestId('question-input');
    await box.fill('What is in the picture?');
    await box.press('Enter');
    await expect.poll(async () => answers.count(), { timeout: 60_000 }).toBe(before + 1);
    await expect.poll(async () => answers.last().getAttribute('data-streaming'), { timeout: 120_000, interval: 250 }).not.toBe('true');
    expect(Number(await answers.last().getAttribute('data-tokens'))).toBeGreaterThanOrEqual(1);
  });
});
