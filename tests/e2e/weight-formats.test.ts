/**
 * The model panel's weight format in headless Chromium on SwiftShader WebGPU with the tiny fixture. Before anything
 * is downloaded the select shows the GPU memory each format needs, from config.json alone (asked for with "Sizes
 * from config.json": the browser cache is empty); `&weights=q4` in the page URL picks q4; the load makes the text
 * projections and lm_head 4-bit blocks in the worker (the summary says q4 and its bytes), and a question is answered
 * with them. Screenshots: test-results/weight-formats-1-sizes.png, test-results/weight-formats-2-answer.png.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseModelConfig } from '../../src/model-io/config';
import { ensureTinyFixture } from '../../src/model-io/fixture';
import { weightBytesFromConfig } from '../../src/model-io/weight-plan';
import { formatBytes } from '../../src/ui/format';
import { openAppWithTinyModel, screenshot, type TinyModelApp } from '../helpers/browser';

let app: TinyModelApp;
let page: Page;
let expected: ReturnType<typeof weightBytesFromConfig>;

beforeAll(async () => {
  const fixtureDir = await ensureTinyFixture();
  expected = weightBytesFromConfig(parseModelConfig(readFileSync(join(fixtureDir, 'config.json'), 'utf8')));
  app = await openAppWithTinyModel({ width: 1400, height: 1200 }, undefined, 'tiny', { weights: 'q4', autoload: '0' });
  ({ page } = app);
});

afterAll(async () => {
  await app?.close();
});

const picker = () => page.getByTestId('weight-format');
const optionBytes = async () => (await picker().locator('option').evaluateAll((nodes) => nodes.map((node) => node.getAttribute('data-bytes')))).map(Number);

describe('weight formats in the app', () => {
  test('before any download, the select shows each format\'s GPU memory from config.json', async () => {
    expect(await picker().inputValue()).toBe('q4');
    const readButton = page.getByTestId('weight-sizes-button');
    await readButton.waitFor({ timeout: 30_000 });
    // Nothing but the app itself was requested so far.
    expect(app.server.requests.filter((r) => r.path.includes('/config.json') || r.path.endsWith('.safetensors'))).toEqual([]);
    await readButton.click();
    await expect.poll(optionBytes, { timeout: 30_000 }).toEqual([expected.bf16, expected.q8, expected.q4]);
    expect(expected.q4).toBeLessThan(expected.q8);
    expect(expected.q8).toBeLessThan(expected.bf16);
    const options = await picker().locator('option').allInnerTexts();
    expect(options).toEqual([
      `bf16 (exact), ${formatBytes(expected.bf16)}`, `q8 (8-bit blocks), ${formatBytes(expected.q8)}`, `q4 (4-bit blocks), ${formatBytes(expected.q4)}`,
    ]);
    const sizesLine = page.getByTestId('weight-format-sizes');
    expect(await sizesLine.innerText()).toBe(`${formatBytes(expected.q4)} in q4, bf16 ${formatBytes(expected.bf16)}`);
    expect(await sizesLine.getAttribute('title')).toMatch(/^GPU memory for the weights in q4, from config\.json: /);
    // config.json only: the weights were not fetched.
    expect(app.server.countGets('/config.json')).toBe(1);
    expect(app.server.countGets('/model.safetensors')).toBe(0);
    await screenshot(page, 'weight-formats-1-sizes');
  });

  test('loads the tiny model in q4 (the summary names the format and its bytes) and answers with it', async () => {
    await page.getByTestId('load-button').click();
    await page.getByTestId('model-summary').waitFor({ timeout: 180_000 });
    expect(await page.getByTestId('gpu-weights').innerText()).toBe(`q4, ${formatBytes(expected.q4)} (bf16: ${formatBytes(expected.bf16)})`);
    // The sizes now come from the browser cache; the choice stays.
    expect(await picker().inputValue()).toBe('q4');
    await expect.poll(optionBytes, { timeout: 30_000 }).toEqual([expected.bf16, expected.q8, expected.q4]);

    await page.getByTestId('policy-controls').getByRole('spinbutton', { name: 'Max new tokens' }).fill('4');
    const box = page.getByTestId('question-input');
    await box.fill('Say something.');
    await box.press('Enter');
    const answer = page.getByTestId('answer-text').last();
    await expect.poll(async () => answer.getAttribute('data-streaming'), { timeout: 240_000, interval: 250 }).toBe('false');
    expect(Number(await answer.getAttribute('data-tokens'))).toBeGreaterThanOrEqual(1);
    await screenshot(page, 'weight-formats-2-answer');
  });
});
