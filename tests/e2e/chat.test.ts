/**
 * The chat end to end in headless Chromium on SwiftShader WebGPU, on the tiny random-weight fixture served with the
 * real CSP: load the model, give it pictures (file picker, synthetic drop and paste: three pictures for the first
 * question), ask and watch tokens stream, switch to SparseMM, Compare (two answers, two metric columns), Stop (the
 * engine answers again afterwards), bad files (error shown, pictures and chat kept), and markup in questions and file
 * names shown as characters. The multi-picture conversation itself is tests/e2e/multi-image.test.ts.
 * Screenshots of each state go to test-results/chat-*.png.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openAppWithTinyModel, projectRoot, screenshot, tinyFixtureMount, type AppServer, type BrowserSession, type TinyModelApp } from '../helpers/browser';
import { plainPng } from '../helpers/png';

const samplePng = readFileSync(join(projectRoot, 'public', 'samples', 'shapes.png'));
/** Few tokens: SwiftShader emulates the GPU on the CPU. */
const maxNewTokens = 6;
/**
 * The streaming test asks for more: with the fused subgroup GEMV a tiny-model decode step takes milliseconds, and six
 * tokens can all arrive between two samples of the page.
 */
const streamedTokens = 48;
const xssText = '<img src=x onerror=alert(1)>';

let app: TinyModelApp;
let server: AppServer;
let session: BrowserSession;
let page: Page;
/** Dialogs (alert/confirm) the page opened: an injected onerror=alert(1) would land here. */
const dialogs: string[] = [];

beforeAll(async () => {
  app = await openAppWithTinyModel(undefined, (openingPage) => {
    openingPage.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
  });
  ({ server, session, page } = app);
});

afterAll(async () => {
  await app?.close();
});

const transcript = () => page.getByTestId('transcript');
const policyControls = () => page.getByTestId('policy-controls');
const turns = () => page.getByTestId('turn');
const alertText = () => page.getByTestId('alert-text');
const pendingNames = () => page.getByTestId('pending-image-name').allInnerTexts();

async function setMaxNewTokens(count: number): Promise<void> {
  await policyControls().getByRole('spinbutton', { name: 'Max new tokens' }).fill(String(count));
}

/** Types a question and presses Enter (Enter sends). */
async function askByEnter(question: string): Promise<void> {
  const box = page.getByTestId('question-input');
  await box.fill(question);
  await box.press('Enter');
}

/** Waits until no answer is streaming and the Send button is back (the question finished or failed). */
async function waitForIdle(timeout = 240_000): Promise<void> {
  await expect
    .poll(async () => page.locator('[data-testid="answer-text"][data-streaming="true"]').count(), { timeout, interval: 250 })
    .toBe(0);
  await expect.poll(async () => page.getByTestId('stop-button').isDisabled(), { timeout: 30_000 }).toBe(true);
}

function lastTurn() {
  return turns().last();
}

async function failOnAlert(): Promise<void> {
  if (await alertText().isVisible()) throw new Error(`The app reported an error: ${await alertText().innerText()}`);
}

describe('chat', () => {
  test('loads the model with progress to 100%', async () => {
    const summary = page.getByTestId('model-summary');
    const loadError = page.getByTestId('load-error');
    await summary.or(loadError).waitFor({ timeout: 180_000 });
    if (await loadError.isVisible()) throw new Error(`The fixture did not load: ${await loadError.innerText()}`);
    await expect.poll(() => page.locator('li[data-file="model.safetensors"]').getAttribute('data-percent'), { timeout: 30_000 }).toBe('100');
    expect(await page.getByTestId('send-button').isDisabled()).toBe(true); // nothing typed yet
    // SwiftShader has `subgroups` in Chromium too: every answer in this file runs the subgroup GEMV in the worker.
    expect(await page.getByTestId('adapter-gemv').textContent()).toMatch(/^subgroup shuffles, teams of \d+$/);
    await screenshot(page, 'chat-1-model-loaded');
  });

  test('takes a picture from the file picker, a drop and a paste', async () => {
    await page.getByTestId('image-input').setInputFiles({ name: 'shapes.png', mimeType: 'image/png', buffer: samplePng });
    await expect.poll(pendingNames, { timeout: 60_000 }).toEqual(['shapes.png']);
    await failOnAlert();

    // A synthetic drop of a File built in the page (what a drag from the desktop delivers).
    await page.evaluate(async (bytes) => {
      const file = new File([new Uint8Array(bytes)], 'dropped.png', { type: 'image/png' });
      const data = new DataTransfer();
      data.items.add(file);
      const zone = document.querySelector('[data-testid="image-drop"]');
      if (!zone) throw new Error('no drop zone');
      zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: data, bubbles: true, cancelable: true }));
      zone.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
    }, [...samplePng]);
    await expect.poll(pendingNames, { timeout: 60_000 }).toEqual(['shapes.png', 'dropped.png']);

    // A paste of an image (e.g. a screenshot from the clipboard).
    await page.evaluate(async (bytes) => {
      const file = new File([new Uint8Array(bytes)], 'pasted.png', { type: 'image/png' });
      const data = new DataTransfer();
      data.items.add(file);
      document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
    }, [...samplePng]);
    await expect.poll(pendingNames, { timeout: 60_000 }).toEqual(['shapes.png', 'dropped.png', 'pasted.png']);
    await failOnAlert();
    await screenshot(page, 'chat-2-image');
  });

  test('asks with the full cache and streams the answer token by token', async () => {
    await policyControls().getByRole('radio', { name: 'Full cache' }).check();
    await setMaxNewTokens(streamedTokens);
    await askByEnter('What shapes are in this picture?');
    const answer = lastTurn().getByTestId('answer-text');
    // Sample the streamed token count while the answer runs: it must take several values before the end.
    const seen = new Set<string>();
    const deadline = Date.now() + 240_000;
    while (Date.now() < deadline) {
      const [tokens, streaming] = await Promise.all([answer.getAttribute('data-tokens'), answer.getAttribute('data-streaming')]);
      if (streaming === 'true' && tokens !== null && tokens !== '0') seen.add(tokens);
      if (streaming === 'false') break;
      await page.waitForTimeout(20);
    }
    await waitForIdle();
    await failOnAlert();
    expect(seen.size, `token counts seen while streaming: ${[...seen].join(', ')}`).toBeGreaterThanOrEqual(2);
    const finalTokens = Number(await answer.getAttribute('data-tokens'));
    expect(finalTokens).toBeGreaterThanOrEqual(1);
    expect(finalTokens).toBeLessThanOrEqual(streamedTokens);
    await setMaxNewTokens(maxNewTokens);
    // One run: the metrics table has one value column.
    const metrics = page.getByTestId('metrics-panel');
    await expect.poll(() => metrics.locator('table thead th').count()).toBe(2);
    expect(await metrics.innerText()).toMatch(/KV cache/);
    await screenshot(page, 'chat-3-answer');
  });

  test('finds visual heads with progress, exports them, rejects a file of the wrong shape and imports a good one', async () => {
    const panel = page.getByTestId('visual-heads-panel');
    // Without scores, SparseMM says it would use uniform scores (budget bars for the last prompt).
    await policyControls().getByRole('radio', { name: 'SparseMM' }).check();
    await expect.poll(() => panel.innerText(), { timeout: 30_000 }).toMatch(/No visual-head scores for this model: SparseMM uses uniform scores/);
    await policyControls().getByRole('radio', { name: 'Full cache' }).check();
    await page.getByRole('spinbutton', { name: 'Probe images for the search' }).fill('2');
    await panel.getByRole('button', { name: 'Find visual heads' }).click();
    // The progress bar shows while the probes run, then the heatmap fills.
    await panel.getByText(/Finding visual heads/).waitFor({ timeout: 60_000 });
    await screenshot(page, 'chat-4a-finding-heads');
    const cells = panel.getByRole('gridcell');
    await expect.poll(() => cells.count(), { timeout: 240_000 }).toBe(2 * 4); // tiny fixture: 2 layers x 4 query heads
    await failOnAlert();
    expect(await page.getByTestId('scores-origin').innerText()).toMatch(/found in this browser, 2 probe samples/);

    // Export downloads the official JSON.
    const [download] = await Promise.all([page.waitForEvent('download'), panel.getByRole('button', { name: 'Export scores' }).click()]);
    const exported = JSON.parse(readFileSync(await download.path(), 'utf8')) as Record<string, number[]>;
    expect(Object.keys(exported)).toEqual(['0-0', '0-1', '0-2', '0-3', '1-0', '1-1', '1-2', '1-3']);
    for (const list of Object.values(exported)) expect(list).toHaveLength(2);

    // A file made for another model is refused with both shapes named; the scores stay.
    const importInput = panel.locator('input[type="file"][accept=".json,application/json"]');
    const wrongShape = Object.fromEntries(Array.from({ length: 3 * 5 }, (_, i) => [`${Math.floor(i / 5)}-${i % 5}`, [0.5]]));
    await importInput.setInputFiles({ name: 'llava-scores.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(wrongShape)) });
    const importError = panel.getByText(/Import failed/);
    await importError.waitFor({ timeout: 30_000 });
    expect(await importError.innerText()).toMatch(/3 layers x 5 heads.*2 layers x 4 query heads/);
    await importInput.setInputFiles({ name: 'broken.json', mimeType: 'application/json', buffer: Buffer.from('{"0-0": [1,') });
    await expect.poll(() => importError.innerText()).toMatch(/not valid JSON/);
    expect(await cells.count()).toBe(8);

    // A good file is used at once.
    const imported = Object.fromEntries(Object.keys(exported).map((key, i) => [key, [i / 10, (i + 1) / 10]]));
    await importInput.setInputFiles({ name: 'good-scores.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(imported)) });
    await expect.poll(() => page.getByTestId('scores-origin').innerText(), { timeout: 30_000 }).toMatch(/imported from a file, 2 probe samples/);
    expect(await panel.getByText(/Import failed/).count()).toBe(0);
  });

  test('shows where a selected head looks on the picture', async () => {
    const panel = page.getByTestId('visual-heads-panel');
    // The last full-cache answer recorded the attention of its last token.
    await panel.getByRole('gridcell', { name: /Layer 1, head 2/ }).click();
    const overlay = panel.getByRole('img', { name: /Layer 1, head 2: attention over the/ });
    await overlay.waitFor({ timeout: 30_000 });
    // 2 x 2 tiles of 4 x 4 tokens for the 320 x 240 sample (tiny fixture: 128 px longest edge, 64 px tiles).
    expect(await overlay.locator('rect').count()).toBe(4 * 16);
    const opacities = await overlay.locator('rect').evaluateAll((rects) => rects.map((r) => Number(r.getAttribute('fill-opacity'))));
    expect(Math.max(...opacities)).toBeGreaterThan(0);
  });

  test('switches to SparseMM and Compare shows two answers and two metric columns', async () => {
    await policyControls().getByRole('radio', { name: 'SparseMM' }).check();
    // The tiny prompt is ~100 tokens: the smallest budget makes SparseMM compress it.
    await policyControls().getByRole('slider', { name: /^Budget/ }).fill('64');
    await policyControls().getByRole('spinbutton', { name: 'Window' }).fill('8');
    await policyControls().getByRole('checkbox', { name: /^Compare/ }).check();
    await askByEnter('Describe the picture.');
    const compare = lastTurn().getByTestId('compare-panel');
    await compare.waitFor({ timeout: 30_000 });
    await waitForIdle();
    await failOnAlert();
    expect(await compare.getByTestId('compare-column').count()).toBe(2);
    expect(await compare.getByTestId('compare-metrics').count()).toBe(2);
    const headings = await compare.locator('h4').allInnerTexts();
    expect(headings).toEqual(['Full cache', 'SparseMM, budget 64']);
    const ratios = compare.getByTestId('compare-ratios');
    expect(await ratios.innerText()).toMatch(/KV bytes/);
    // Compressed to budget 64 (+ the decoded tokens' room), the KV cache is smaller than the full one.
    const kvRatio = Number((await ratios.locator('[data-ratio="kv"]').innerText()).replace('x', ''));
    expect(kvRatio).toBeGreaterThan(0);
    expect(kvRatio).toBeLessThan(1);
    // The imported scores were used (no "uniform scores" warning).
    expect(await compare.innerText()).not.toMatch(/uniform scores/);
    // The metrics table compares both runs.
    const metrics = page.getByTestId('metrics-panel');
    expect(await metrics.locator('table thead th').allInnerTexts()).toEqual(['Metric', 'Full cache', 'SparseMM, budget 64', 'SparseMM, budget 64 vs Full cache']);
    // The budget bars show the SparseMM split for this prompt.
    expect(await page.getByTestId('visual-heads-panel').innerText()).toMatch(/SparseMM, budget 64/);
    // The full-cache run of the comparison recorded a new attention map for the overlay.
    await page.getByTestId('visual-heads-panel').getByRole('img', { name: /attention over the/ }).waitFor({ timeout: 30_000 });
    await screenshot(page, 'chat-4-compare');
    await policyControls().getByRole('checkbox', { name: /^Compare/ }).uncheck();
  });

  test('Stop ends the answer and the engine answers again afterwards', async () => {
    // The most the controls allow, so the answer outlasts the clicks below on a fast machine (200 tokens of the tiny
    // model take well under a second there).
    await setMaxNewTokens(1024);
    await policyControls().getByRole('radio', { name: 'Full cache' }).check();
    const before = await turns().count();
    await askByEnter('Tell me a long story about the shapes.');
    await expect.poll(() => turns().count()).toBe(before + 1);
    // A second question while the first runs is refused, not interleaved; it stays in the box.
    await askByEnter('An interrupting question');
    await page.getByTestId('ask-refused').waitFor({ timeout: 10_000 });
    expect(await turns().count()).toBe(before + 1);
    expect(await page.getByTestId('question-input').inputValue()).toBe('An interrupting question');
    await page.getByTestId('stop-button').click();
    await waitForIdle();
    await failOnAlert();
    const stoppedAnswer = lastTurn().getByTestId('answer-text');
    const stoppedTokens = Number(await stoppedAnswer.getAttribute('data-tokens'));
    expect(stoppedTokens).toBeLessThan(1024);
    expect(await lastTurn().innerText()).toMatch(/Stopped\./);
    await screenshot(page, 'chat-5-stopped');

    // Stop again, this time during the decode (after two tokens came).
    await page.getByTestId('question-input').fill('');
    await askByEnter('Another long story, please.');
    await expect.poll(() => turns().count()).toBe(before + 2);
    await expect
      .poll(async () => Number(await lastTurn().getByTestId('answer-text').getAttribute('data-tokens')), { timeout: 120_000, interval: 50 })
      .toBeGreaterThanOrEqual(2);
    await page.getByTestId('stop-button').click();
    await waitForIdle();
    await failOnAlert();
    expect(Number(await lastTurn().getByTestId('answer-text').getAttribute('data-tokens'))).toBeLessThan(1024);
    expect(await lastTurn().innerText()).toMatch(/Stopped\./);

    await setMaxNewTokens(maxNewTokens);
    expect(await page.getByTestId('ask-refused').count()).toBe(0);
    await askByEnter('And now?');
    await expect.poll(() => turns().count()).toBe(before + 3);
    await waitForIdle();
    await failOnAlert();
    expect(Number(await lastTurn().getByTestId('answer-text').getAttribute('data-tokens'))).toBeGreaterThanOrEqual(1);
  });

  test('a non-image, an empty and a corrupt file give errors and keep the pictures and the chat', async () => {
    const sentThumbnails = await transcript().getByTestId('turn-image').count();
    expect(sentThumbnails).toBe(3);
    const chatBefore = await transcript().innerText();
    const turnCount = await turns().count();

    const cases = [
      { file: { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a picture') }, message: /not an image/ },
      { file: { name: 'empty.png', mimeType: 'image/png', buffer: Buffer.alloc(0) }, message: /empty \(0 bytes\)/ },
      { file: { name: 'broken.png', mimeType: 'image/png', buffer: Buffer.concat([samplePng.subarray(0, 40), Buffer.alloc(200, 7)]) }, message: /could not be decoded/ },
    ];
    for (const { file, message } of cases) {
      await page.getByTestId('image-input').setInputFiles(file);
      await expect.poll(async () => ((await alertText().isVisible()) ? alertText().innerText() : ''), { timeout: 60_000 }).toMatch(message);
      expect(await alertText().innerText()).toContain(file.name);
      expect(await page.getByTestId('pending-image').count()).toBe(0);
      expect(await transcript().getByTestId('turn-image').count()).toBe(sentThumbnails);
      expect(await turns().count()).toBe(turnCount);
      expect(await transcript().innerText()).toBe(chatBefore);
      if (file.name === 'notes.txt') await screenshot(page, 'chat-6-bad-file');
      await page.getByRole('button', { name: 'Dismiss' }).first().click();
    }

    // The engine still answers about the kept pictures.
    await askByEnter('Are the pictures still there?');
    await waitForIdle();
    await failOnAlert();
    expect(await turns().count()).toBe(turnCount + 1);
  });

  test('a 12000 x 12000 picture is scaled down and answered about', async () => {
    const huge = await plainPng(12_000, 12_000);
    await page.getByTestId('image-input').setInputFiles({ name: 'huge.png', mimeType: 'image/png', buffer: huge });
    await expect.poll(pendingNames, { timeout: 120_000 }).toEqual(['huge.png']);
    await failOnAlert();
    const meta = await page.getByTestId('pending-image-facts').innerText();
    expect(meta).toContain('12000 x 12000 px');
    expect(meta).toMatch(/scaled to \d+ x \d+ · \d+ tiles, \d+ tokens/);
    await askByEnter('What colour is it?');
    await waitForIdle();
    await failOnAlert();
    expect(Number(await lastTurn().getByTestId('answer-text').getAttribute('data-tokens'))).toBeGreaterThanOrEqual(1);
  });

  test('markup in a file name and in a question is shown as characters', async () => {
    await page.getByTestId('image-input').setInputFiles({ name: `${xssText}.png`, mimeType: 'image/png', buffer: samplePng });
    await expect.poll(pendingNames, { timeout: 60_000 }).toEqual([`${xssText}.png`]);
    // The only image of the pending picture is its thumbnail.
    expect(await page.getByTestId('pending-images').locator('img').count()).toBe(1);

    await askByEnter(xssText);
    await waitForIdle();
    await failOnAlert();
    expect(await lastTurn().getByTestId('question-text').innerText()).toContain(xssText);
    // The transcript's only images are the sent pictures' thumbnails (blob: URLs made by the app).
    expect(await transcript().locator('img:not([src^="blob:"])').count()).toBe(0);
    expect(await page.locator('img[src="x"]').count()).toBe(0);
    expect(dialogs).toEqual([]);
    await screenshot(page, 'chat-7-markup-as-text');
  });

  test('a lost GPU device is reported, the model comes back from the cache and the chat stays', async () => {
    const turnCount = await turns().count();
    const chatBefore = await transcript().innerText();
    const weightGets = server.countGets(`${tinyFixtureMount}model.safetensors`);
    await page.getByText('Diagnostics').click();
    await page.getByTestId('simulate-device-loss').click();
    const notice = page.getByRole('status').filter({ hasText: /new GPU device is ready/ });
    await notice.waitFor({ timeout: 120_000 });
    await screenshot(page, 'chat-7b-device-restored');
    expect(await transcript().innerText()).toBe(chatBefore);
    // Reloaded from Cache Storage: no new download.
    expect(server.countGets(`${tinyFixtureMount}model.safetensors`)).toBe(weightGets);
    await askByEnter('Still there after the reset?');
    await waitForIdle();
    await failOnAlert();
    expect(await turns().count()).toBe(turnCount + 1);
    expect(Number(await lastTurn().getByTestId('answer-text').getAttribute('data-tokens'))).toBeGreaterThanOrEqual(1);
  });

  test('New chat clears the conversation and the page has no errors', async () => {
    await page.getByTestId('new-chat-button').click();
    await expect.poll(() => turns().count()).toBe(0);
    expect(session.pageErrors).toEqual([]);
    expect(session.consoleLines.filter((line) => /Content Security Policy|Refused to/i.test(line))).toEqual([]);
  });

  test('the Benchmark tab runs on the loaded model through the worker', async () => {
    const panel = page.getByTestId('benchmark-panel');
    // Smallest settings: one prompt length, the default SparseMM 256 (and the full cache it is compared with).
    await panel.getByRole('checkbox', { name: '2K' }).uncheck();
    await panel.getByRole('button', { name: 'Run benchmark' }).click();
    const results = panel.getByTestId('benchmark-results');
    const failure = panel.getByTestId('benchmark-error');
    await results.or(failure).waitFor({ timeout: 240_000 });
    if (await failure.isVisible()) throw new Error(`The benchmark failed: ${await failure.innerText()}`);
    const rows = await results.locator('table tbody tr').allInnerTexts();
    expect(rows.length).toBe(2);
    expect(rows.join('\n')).toMatch(/full/);
    expect(rows.join('\n')).toMatch(/sparsemm/);
    await screenshot(page, 'chat-9-benchmark');
  });

  test('every control is labelled and the layout fits 1280x800 and a narrow window', async () => {
    const unlabelled = await page.evaluate(() => {
      const controls = [...document.querySelectorAll('input, select, textarea, button, [role="button"]')];
      return controls
        .filter((el) => {
          const html = el as HTMLElement;
          if (html.closest('[hidden]')) return false;
          const labelled = el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || (el as HTMLInputElement).labels?.length;
          const text = el.tagName === 'BUTTON' ? (el.textContent ?? '').trim() : '';
          return !labelled && !text;
        })
        .map((el) => el.outerHTML.slice(0, 120));
    });
    expect(unlabelled).toEqual([]);
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(await overflow()).toBeLessThanOrEqual(0);
    await page.setViewportSize({ width: 420, height: 900 });
    await page.waitForTimeout(300);
    expect(await overflow()).toBeLessThanOrEqual(0);
    await screenshot(page, 'chat-8-narrow');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('a reload uses the cached scores of the model', async () => {
    await page.reload();
    await page.getByTestId('model-summary').waitFor({ timeout: 180_000 });
    await expect.poll(() => page.getByTestId('scores-origin').innerText(), { timeout: 60_000 }).toMatch(/from the browser cache/);
    expect(await page.getByTestId('visual-heads-panel').getByRole('gridcell').count()).toBe(8);
    expect(session.pageErrors).toEqual([]);
  });

  test('lists the cached model with its size and removes it', async () => {
    const cached = page.getByTestId('cached-models');
    await cached.getByText(/Cached models/).click();
    const item = cached.locator('li', { hasText: 'fixtures/tiny' });
    await item.waitFor({ timeout: 30_000 });
    expect(await item.innerText()).toMatch(/KiB in \d+ files · loaded now/);
    await item.getByRole('button', { name: /Remove .* from the cache/ }).click();
    await cached.getByText('Nothing cached yet.').waitFor({ timeout: 30_000 });
    // The loaded model keeps working.
    await askByEnter('Still loaded?');
    await waitForIdle();
    await failOnAlert();
  });
});
