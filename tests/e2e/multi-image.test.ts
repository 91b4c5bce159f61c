/**
 * A multi-picture conversation end to end in headless Chromium on the tiny fixture (real CSP, SwiftShader WebGPU):
 * "Add sample images" plus a picked file (a 2000 x 6 strip, with a text file among the picks that is named and left
 * out; a video, refused on this model without a video path), a drop of several files at once, pending thumbnails with
 * keyboard removal, the context meter, a question about three pictures and two follow-ups that reuse their vision features (the answers say how many pictures went through the vision tower), the
 * attention overlay per picture, the longest-edge setting and the over-context warning and refusal, New chat.
 * Screenshots: test-results/multi-image.png (the conversation) and multi-image-over-context.png.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openAppWithTinyModel, projectRoot, screenshot, type BrowserSession, type TinyModelApp } from '../helpers/browser';
import { plainPng } from '../helpers/png';

/** public/samples/samples.json, in order. */
const samples = ['shapes.png', 'bar-chart.png', 'text-page.png', 'table.png'];

let app: TinyModelApp;
let session: BrowserSession;
let page: Page;

beforeAll(async () => {
  app = await openAppWithTinyModel({ width: 1280, height: 1000 });
  ({ session, page } = app);
});

afterAll(async () => {
  await app?.close();
});

const alertText = () => page.getByTestId('alert-text');
const pendingNames = () => page.getByTestId('pending-image-name').allInnerTexts();
const turns = () => page.getByTestId('turn');
const summary = () => page.getByTestId('context-summary').innerText();

/** "1,234 / 2,048 tokens · next image up to +80" -> [1234, 2048, 80]. */
async function meterNumbers(): Promise<number[]> {
  const match = /^([\d,]+) \/ ([\d,]+) tokens · next image up to \+([\d,]+)$/.exec(await summary());
  if (!match) throw new Error(`Unexpected context meter text: ${await summary()}`);
  return match.slice(1).map((n) => Number(n.replace(/,/g, '')));
}

/** "129 text + 208 image tokens (...)" -> [129, 208]. */
async function meterSplit(): Promise<number[]> {
  const text = await page.getByTestId('context-detail').innerText();
  const match = /^([\d,]+) text \+ ([\d,]+) image tokens/.exec(text);
  if (!match) throw new Error(`Unexpected context detail: ${text}`);
  return match.slice(1).map((n) => Number(n.replace(/,/g, '')));
}

/** A row of the metrics table, e.g. "Generated tokens" -> "6". */
async function metric(name: string): Promise<string> {
  return page.getByTestId('metrics-panel').locator('tr', { hasText: name }).locator('td').last().innerText();
}

/** Sum of the image tokens the pending thumbnails show ("... · 5 tiles, 80 tokens"). */
async function pendingTokens(): Promise<number> {
  const facts = await page.getByTestId('pending-image-facts').allInnerTexts();
  return facts.reduce((sum, text) => sum + Number(/([\d,]+) tokens$/.exec(text)?.[1]?.replace(/,/g, '') ?? NaN), 0);
}

async function failOnAlert(): Promise<void> {
  if (await alertText().isVisible()) throw new Error(`The app reported an error: ${await alertText().innerText()}`);
}

async function ask(question: string): Promise<void> {
  const box = page.getByTestId('question-input');
  await box.fill(question);
  await box.press('Enter');
  await expect
    .poll(async () => page.locator('[data-testid="answer-text"][data-streaming="true"]').count(), { timeout: 240_000, interval: 250 })
    .toBe(0);
  await expect.poll(async () => page.getByTestId('stop-button').isDisabled(), { timeout: 30_000 }).toBe(true);
}

/** [encoded, reused] pictures of the last turn's answer, as the transcript shows them. */
async function lastPictureCounts(): Promise<number[]> {
  const note = turns().last().getByTestId('answer-pictures');
  return [Number(await note.getAttribute('data-images-encoded')), Number(await note.getAttribute('data-images-reused'))];
}

describe('several pictures in one conversation', () => {
  test('loads the tiny model', async () => {
    const loaded = page.getByTestId('model-summary');
    const loadError = page.getByTestId('load-error');
    await loaded.or(loadError).waitFor({ timeout: 180_000 });
    if (await loadError.isVisible()) throw new Error(`The fixture did not load: ${await loadError.innerText()}`);
    await page.getByTestId('context-meter').waitFor({ timeout: 30_000 });
    // Nothing yet; the next picture at the tiny model's 128 px edge is at most 2 x 2 tiles + global of 16 tokens each.
    expect(await meterNumbers()).toEqual([0, 2048, 80]);
    // By keyboard the hidden file input's focus shows on its "Choose images…" label.
    await page.getByTestId('add-samples').focus();
    await page.keyboard.press('Shift+Tab');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('image-input');
    expect(await page.locator('label.file-button').evaluate((label) => getComputedStyle(label).outlineStyle)).toBe('solid');
  });

  test('adds the samples in one click, removes two by keyboard, and picks a strip with a text file among it', async () => {
    await page.getByTestId('add-samples').click();
    await expect.poll(pendingNames, { timeout: 60_000 }).toEqual(samples);
    await failOnAlert();
    expect(await page.getByTestId('pending-images').locator('img').count()).toBe(4);
    // Before the first question the meter counts the pending pictures: their image tokens, and as text the markers
    // around their tiles.
    const [used] = await meterNumbers();
    const [markers, images] = await meterSplit();
    expect(images).toBe(await pendingTokens());
    expect(markers).toBeGreaterThan(0);
    expect(used).toBe(markers + images);

    await page.getByRole('button', { name: 'Remove text-page.png' }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(pendingNames, { timeout: 30_000 }).not.toContain('text-page.png');
    // The focus moves to the next picture's Remove button (table.png), so the keyboard can go on from there.
    await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe('Remove table.png');
    await page.getByRole('button', { name: 'Remove bar-chart.png' }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(pendingNames, { timeout: 30_000 }).not.toContain('bar-chart.png');
    expect(await pendingNames()).toEqual(['shapes.png', 'table.png']);
    await expect.poll(async () => (await meterSplit())[1]).toBe(await pendingTokens());
    expect((await meterNumbers())[0]).toBeLessThan(used);

    const strip = await plainPng(2000, 6);
    await page.getByTestId('image-input').setInputFiles([
      { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a picture') },
      { name: 'strip.png', mimeType: 'image/png', buffer: strip },
    ]);
    await expect.poll(pendingNames, { timeout: 60_000 }).toEqual(['shapes.png', 'table.png', 'strip.png']);
    // The text file is named and left out; the strip (2000 x 6 px, kept at least 1 px high) is added.
    await expect.poll(async () => ((await alertText().isVisible()) ? alertText().innerText() : ''), { timeout: 30_000 }).toMatch(/"notes\.txt" is not an image/);
    expect(await alertText().innerText()).toMatch(/The other picture was added\./);
    // The size the processor works at (the tiny model's longest edge, 128 px), said as for every other picture.
    expect(await page.getByTestId('pending-image-facts').last().innerText()).toMatch(/^2000 x 6 px, scaled to 128 x 1 · 3 tiles, 48 tokens$/);
    await page.getByRole('button', { name: 'Dismiss' }).first().click();
    expect((await meterSplit())[1]).toBe(await pendingTokens());
  });

  test('a video picked on SmolVLM (no video path) is refused with what to load; the pictures and the meter stay', async () => {
    // SmolVLM's processor has no video_sampling: no video settings, no sample video.
    expect(await page.getByTestId('video-sampling').count()).toBe(0);
    expect(await page.getByTestId('add-sample-video').count()).toBe(0);
    const before = await summary();
    await page.getByTestId('image-input').setInputFiles(join(projectRoot, 'public', 'samples', 'clock-h264.mp4'));
    await expect
      .poll(async () => ((await alertText().isVisible()) ? alertText().innerText() : ''), { timeout: 30_000 })
      .toMatch(/"clock-h264\.mp4": the loaded model has no video path\. Load SmolVLM2 \(a -Video-Instruct model\) to ask about videos\./);
    expect(await pendingNames()).toEqual(['shapes.png', 'table.png', 'strip.png']);
    expect(await page.getByTestId('pending-video').count()).toBe(0);
    expect(await summary()).toBe(before);
    await page.getByRole('button', { name: 'Dismiss' }).first().click();
  });

  test('asks about the three pictures, then two follow-ups reuse their features', async () => {
    await page.getByTestId('policy-controls').getByRole('radio', { name: 'Full cache' }).check();
    await page.getByTestId('policy-controls').getByRole('spinbutton', { name: 'Max new tokens' }).fill('6');
    const imageTokens = await pendingTokens();

    await ask('Compare the three images.');
    await failOnAlert();
    const first = turns().last();
    expect(await first.getByTestId('turn-image').count()).toBe(3);
    expect(await first.getByTestId('turn-image').evaluateAll((imgs) => imgs.map((img) => img.getAttribute('alt')))).toEqual([
      'Sent picture: shapes.png',
      'Sent picture: table.png',
      'Sent picture: strip.png',
    ]);
    expect(await lastPictureCounts()).toEqual([3, 0]);
    expect(await page.getByTestId('pending-image').count()).toBe(0);
    // After an answer the meter holds exactly that prompt and its answer.
    const [afterFirst] = await meterNumbers();
    const promptTokens = Number(/^(\d+)/.exec(await metric('Prompt tokens'))?.[1]);
    expect(afterFirst).toBe(promptTokens + Number(await metric('Generated tokens')));
    expect((await meterSplit())[1]).toBe(imageTokens);

    await ask('Which one is a table?');
    await failOnAlert();
    expect(await lastPictureCounts()).toEqual([0, 3]);
    expect(await turns().last().getByTestId('answer-pictures').innerText()).toMatch(/3 from the feature cache — vision tower not run/);
    // A follow-up sends no new pictures.
    expect(await turns().last().getByTestId('turn-image').count()).toBe(0);

    await ask('And which one is the widest?');
    await failOnAlert();
    expect(await lastPictureCounts()).toEqual([0, 3]);
    expect(await turns().count()).toBe(3);
    const [afterThird] = await meterNumbers();
    expect(afterThird).toBeGreaterThan(afterFirst);
    // The metrics table shows the last answer's vision row too.
    expect(await page.getByTestId('metrics-panel').innerText()).toMatch(/Vision encoding/);
  });

  test('the attention overlay shows the picture chosen', async () => {
    const panel = page.getByTestId('visual-heads-panel');
    // Scores for the tiny model's 2 layers x 4 heads, so the heatmap has heads to pick.
    const scores = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`${Math.floor(i / 4)}-${i % 4}`, [i / 10]]));
    await panel
      .locator('input[type="file"][accept=".json,application/json"]')
      .setInputFiles({ name: 'scores.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(scores)) });
    await panel.getByRole('gridcell', { name: /Layer 1, head 2/ }).click();
    // The chosen head's details cover neither the grid nor its caption.
    const details = panel.getByTestId('head-details');
    expect(await details.innerText()).toMatch(/^Layer 1, head 2/);
    const boxes = await Promise.all([details, panel.locator('.vw-heatmap-grid'), panel.locator('.vw-heatmap .vw-caption')].map((l) => l.boundingBox()));
    const [box, ...others] = boxes.map((b) => {
      if (!b) throw new Error('a part of the heatmap is not shown');
      return b;
    });
    for (const other of others) {
      const apart = box.x + box.width <= other.x || other.x + other.width <= box.x || box.y + box.height <= other.y || other.y + other.height <= box.y;
      expect(apart, `head details ${JSON.stringify(box)} over ${JSON.stringify(other)}`).toBe(true);
    }
    // The budget chart's legend leaves the top tick label of its axis readable.
    const chart = panel.locator('.vw-chart', { has: page.locator('.recharts-legend-wrapper') }).first();
    const legend = await chart.locator('.recharts-legend-wrapper .recharts-default-legend').boundingBox();
    const topTick = await chart
      .locator('[class*="yAxis"] text')
      .evaluateAll((ticks) => ticks.map((t) => t.getBoundingClientRect()).reduce<DOMRect | null>((top, r) => (top && top.y <= r.y ? top : r), null))
      .then((r) => r && { x: r.x, y: r.y, width: r.width, height: r.height });
    if (!legend || !topTick) throw new Error('the budget chart has no legend or axis ticks');
    expect(legend.y + legend.height, `legend ${JSON.stringify(legend)} over the tick ${JSON.stringify(topTick)}`).toBeLessThanOrEqual(topTick.y);
    const choice = panel.getByTestId('overlay-picture');
    await choice.waitFor({ timeout: 30_000 });
    const options = await choice.locator('option').allInnerTexts();
    expect(options.map((o) => o.replace(/ \(\d+ tokens\)$/, ''))).toEqual(['1. shapes.png', '2. table.png', '3. strip.png']);
    for (const [index, option] of options.entries()) {
      await choice.selectOption(String(index));
      const overlay = panel.getByRole('img', { name: /Layer 1, head 2: attention over the/ });
      await overlay.waitFor({ timeout: 30_000 });
      // Tiles are drawn without the global image's 16 tokens (a picture of one tile shows its global map).
      const tokens = Number(/\((\d+) tokens\)$/.exec(option)?.[1]);
      expect(await overlay.locator('rect').count()).toBe(tokens === 16 ? 16 : tokens - 16);
    }
    // The heatmap can colour the heads by their attention on one picture instead of their scores.
    await panel.getByTestId('heatmap-source').selectOption({ label: 'Attention on 3. strip.png (last answer)' });
    await panel.getByRole('grid', { name: /Share of the last token's attention on strip\.png/ }).waitFor({ timeout: 10_000 });
    expect(await panel.getByRole('gridcell').count()).toBe(8);
    await panel.getByTestId('heatmap-source').selectOption({ label: 'Visual-head scores' });
    await panel.getByRole('grid', { name: /Visual-head scores by layer and head/ }).waitFor({ timeout: 10_000 });
    await choice.selectOption('0');
    await page.mouse.move(0, 0); // no heatmap tooltip over the picture
    await screenshot(page, 'multi-image');
  });

  test('over the context: the meter warns, the question is refused with what to do, a lower edge makes room', async () => {
    await page.getByTestId('policy-controls').getByRole('spinbutton', { name: 'Max new tokens' }).fill('1024');
    for (let i = 0; i < 2; i++) {
      await page.getByTestId('add-samples').click();
      await expect.poll(async () => page.getByTestId('pending-image').count(), { timeout: 60_000 }).toBe(4 * (i + 1));
    }
    // Four more in one synthetic drop (what a drag of several files from the desktop delivers).
    const files = samples.map((name) => ({ name, bytes: [...readFileSync(join(projectRoot, 'public', 'samples', name))] }));
    await page.evaluate((dropped) => {
      const data = new DataTransfer();
      for (const { name, bytes } of dropped) data.items.add(new File([new Uint8Array(bytes)], name, { type: 'image/png' }));
      const zone = document.querySelector('[data-testid="image-drop"]');
      if (!zone) throw new Error('no drop zone');
      zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: data, bubbles: true, cancelable: true }));
      zone.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
    }, files);
    await expect.poll(async () => page.getByTestId('pending-image').count(), { timeout: 60_000 }).toBe(12);
    expect((await pendingNames()).slice(8)).toEqual(samples);
    await failOnAlert();
    const [used, context] = await meterNumbers();
    expect(used + 1024).toBeGreaterThan(context);
    const warning = page.getByTestId('context-warning');
    await warning.waitFor({ timeout: 10_000 });
    expect(await warning.innerText()).toMatch(/needs [\d,]+ more tokens than the model's context of 2,048: remove an image, start a New chat, set "Longest image edge" lower/);

    // The meter counts the question being typed too, as the check at send time does: the same shortfall.
    const question = 'Compare all of them.';
    await page.getByTestId('question-input').fill(question);
    await expect.poll(async () => (await meterNumbers())[0], { timeout: 30_000 }).toBeGreaterThan(used);
    expect(await page.getByTestId('context-detail').innerText()).toMatch(/, \d+ of them the question;/);
    const meterShortfall = Number(/needs ([\d,]+) more tokens/.exec(await warning.innerText())?.[1]?.replace(/,/g, ''));

    const before = await turns().count();
    await ask(question);
    const refused = turns().last().getByTestId('turn-error');
    await refused.waitFor({ timeout: 30_000 });
    expect(await refused.innerText()).toMatch(/more than the model's context of 2048 tokens\. Remove an image, start a new chat, set "longest image edge" lower/);
    expect(Number(/: (\d+) more than the model's context/.exec(await refused.innerText())?.[1])).toBe(meterShortfall);
    expect(await turns().count()).toBe(before + 1);
    // Bad input loses nothing: the refused question is still in the box.
    expect(await page.getByTestId('question-input').inputValue()).toBe(question);
    // Nothing was sent: the pictures still wait, and the refused turn shows none.
    expect(await page.getByTestId('pending-image').count()).toBe(12);
    expect(await turns().last().getByTestId('turn-image').count()).toBe(0);
    await screenshot(page, 'multi-image-over-context');
    await page.getByRole('button', { name: 'Dismiss' }).first().click();

    await page.getByTestId('longest-edge').selectOption('64');
    await expect.poll(async () => page.getByTestId('context-warning').count(), { timeout: 30_000 }).toBe(0);
    // One 64 px tile (16 tokens) per picture now.
    const facts = await page.getByTestId('pending-image-facts').allInnerTexts();
    expect(facts.every((text) => text.endsWith('1 tile, 16 tokens'))).toBe(true);
    expect((await meterNumbers())[0]).toBeLessThan(used);
  });

  test('New chat drops the pictures and the conversation', async () => {
    // The refused question is still in the box (the meter counts it): empty it so the meter can read 0.
    await page.getByTestId('question-input').fill('');
    await page.getByTestId('new-chat-button').click();
    await expect.poll(() => turns().count()).toBe(0);
    await expect.poll(async () => page.getByTestId('pending-image').count()).toBe(0);
    expect((await meterNumbers())[0]).toBe(0);
    expect(session.pageErrors).toEqual([]);
  });
});
