/**
 * Video questions end to end in headless Chromium on the tiny SmolVLM2 fixture (real CSP, SwiftShader WebGPU, the real
 * container reader and WebCodecs decoder): a real MP4 (H.264) dropped, a real WebM (VP9) picked and later pasted, each
 * shown as a strip of its sampled frames with their timestamps, the frame indices equal to the sampler's for the file's
 * facts as ffprobe reads them (what the CLI uses), the context meter counting them before they are sent, a question
 * answered token by token (its turn shows the strips), the attention overlay and heatmap on any frame, Compare and a
 * Budget sweep on the video question; bad inputs each named with their reason while the conversation and the waiting
 * video stay (not a video, cut short, corrupt, H.265, audio only, no frames, a picture added to a waiting video); a
 * video that would overflow the context refused with how many frames fit, and added with that many (the progress bar
 * counting the frames decoded); Add sample video.
 * Screenshots: test-results/video-strip.png, video-overlay.png, video-answer.png, video-errors.png, video-overflow.png.
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { tinyTileSize } from '../../src/model-io/fixture';
import { sampleVideoFrames } from '../../src/model-io/video-sampling';
import { formatFrameTimestamp } from '../../src/model-io/video-prompt';
import { openAppWithTinyModel, projectRoot, screenshot, type TinyModelApp } from '../helpers/browser';
import { ffprobeFacts } from '../helpers/ffprobe';

const mp4 = join(projectRoot, 'public', 'samples', 'clock-h264.mp4');
const webm = join(projectRoot, 'public', 'samples', 'clock-vp9.webm');
const bad = (name: string) => join(projectRoot, 'tests', 'data', 'video', name);

let app: TinyModelApp;
let page: Page;

beforeAll(async () => {
  app = await openAppWithTinyModel({ width: 1400, height: 1100 }, undefined, 'smolvlm2-tiny');
  ({ page } = app);
});

afterAll(async () => {
  await app?.close();
});

const alertText = () => page.getByTestId('alert-text');
const pendingVideoNames = () => page.getByTestId('pending-video-name').allInnerTexts();
const turns = () => page.getByTestId('turn');
const controls = () => page.getByTestId('policy-controls');

async function failOnAlert(): Promise<void> {
  if (await alertText().isVisible()) throw new Error(`The app reported an error: ${await alertText().innerText()}`);
}

/** "1,234 / 2,048 tokens · ..." -> 1234. */
async function usedTokens(): Promise<number> {
  const text = await page.getByTestId('context-summary').innerText();
  const match = /^([\d,]+) \/ ([\d,]+) tokens/.exec(text);
  if (!match) throw new Error(`Unexpected context meter text: ${text}`);
  return Number(match[1].replace(/,/g, ''));
}

/** The frame strip of the pending video `name`: [frame index, time label] per frame. */
async function pendingStrip(name: string): Promise<[number, string][]> {
  const frames = page.locator(`[data-testid="pending-video"][data-video-name="${name}"] [data-testid="video-frame"]`);
  return frames.evaluateAll((items) => items.map((item) => [Number(item.getAttribute('data-frame-index')), item.getAttribute('data-frame-time') ?? ''] as [number, string]));
}

/** What the sampler (model-io, the CLI's too) picks from the file's facts as ffprobe reads them. */
function expectedStrip(path: string, settings: { fps: number; maxFrames: number }): [number, string][] {
  const { frameIndices, timestamps } = sampleVideoFrames(ffprobeFacts(path), settings);
  return frameIndices.map((index, i) => [index, formatFrameTimestamp(timestamps[i])]);
}

/** Drops `paths` on the drop zone in one synthetic drop (what a drag of files from the desktop delivers). */
async function drop(paths: { path: string; type: string }[]): Promise<void> {
  const files = paths.map(({ path, type }) => ({ name: basename(path), type, bytes: [...readFileSync(path)] }));
  await page.evaluate((dropped) => {
    const data = new DataTransfer();
    for (const { name, type, bytes } of dropped) data.items.add(new File([new Uint8Array(bytes)], name, { type }));
    const zone = document.querySelector('[data-testid="image-drop"]');
    if (!zone) throw new Error('no drop zone');
    zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: data, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
  }, files);
}

/**
 * Starts recording, in the page, every value `read` gives for the elements matching `selector` as the DOM changes (a
 * MutationObserver: nothing between two polls is missed); the returned function stops and gives them in order.
 */
async function recordWhile(selector: string, read: 'text' | `attr:${string}`): Promise<() => Promise<string[]>> {
  const key = `record-${Math.random().toString(36).slice(2)}`;
  await page.evaluate(
    ({ key, selector, read }) => {
      const seen: string[] = [];
      const take = () => {
        for (const element of document.querySelectorAll(selector)) {
          const value = read === 'text' ? (element.textContent ?? '') : (element.getAttribute(read.slice(5)) ?? '');
          if (seen[seen.length - 1] !== value) seen.push(value);
        }
      };
      const observer = new MutationObserver(take);
      observer.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
      (window as unknown as Record<string, unknown>)[key] = () => {
        observer.disconnect();
        return seen;
      };
    },
    { key, selector, read },
  );
  return () => page.evaluate((key) => ((window as unknown as Record<string, () => string[]>)[key])(), key);
}

/** Pastes a file the way a paste of a copied file delivers it (a ClipboardEvent with files, on the page). */
async function paste({ path, type }: { path: string; type: string }): Promise<void> {
  const file = { name: basename(path), type, bytes: [...readFileSync(path)] };
  await page.evaluate(({ name, type, bytes }) => {
    const data = new DataTransfer();
    data.items.add(new File([new Uint8Array(bytes)], name, { type }));
    document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  }, file);
}

async function waitForIdle(): Promise<void> {
  await expect
    .poll(async () => page.locator('[data-testid="answer-text"][data-streaming="true"]').count(), { timeout: 300_000, interval: 250 })
    .toBe(0);
  await expect.poll(async () => page.getByTestId('stop-button').isDisabled(), { timeout: 30_000 }).toBe(true);
}

async function ask(question: string): Promise<void> {
  const box = page.getByTestId('question-input');
  await box.fill(question);
  await box.press('Enter');
  await waitForIdle();
}

describe('video questions', () => {
  test('loads the tiny SmolVLM2 model: the video sampling fields show its video_sampling', async () => {
    const loaded = page.getByTestId('model-summary');
    const loadError = page.getByTestId('load-error');
    await loaded.or(loadError).waitFor({ timeout: 180_000 });
    if (await loadError.isVisible()) throw new Error(`The fixture did not load: ${await loadError.innerText()}`);
    await page.getByTestId('video-sampling').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('video-fps').inputValue()).toBe('1');
    expect(await page.getByTestId('video-max-frames').inputValue()).toBe('64');
    // Each frame becomes one tile of the model's size (the fixture's 64 px; SmolVLM2's 512).
    expect(await page.getByTestId('video-sampling').innerText()).toContain(`Model default: 1 fps, at most 64 frames (each one ${tinyTileSize} px tile).`);
  });

  test('a dropped MP4 and a picked WebM wait as strips of their sampled frames; the meter counts them', async () => {
    // Few frames keep the test quick: 3 of the MP4's 4 seconds, then 2 of the WebM's 3.
    await page.getByTestId('video-max-frames').fill('3');
    const before = await usedTokens();
    await drop([{ path: mp4, type: 'video/mp4' }]);
    await expect.poll(pendingVideoNames, { timeout: 60_000 }).toEqual(['clock-h264.mp4']);
    await failOnAlert();
    expect(await pendingStrip('clock-h264.mp4')).toEqual(expectedStrip(mp4, { fps: 1, maxFrames: 3 }));
    const facts = await page.getByTestId('pending-video-facts').first().innerText();
    expect(facts).toMatch(/^H\.264 \(AVC\) in MP4 · 256 x 192 · 4\.0 s, 96 frames at 24 fps · 3 sampled at 1 fps \(max 3\) · [\d,]+ tokens$/);
    const mp4Tokens = Number(/([\d,]+) tokens$/.exec(facts)?.[1].replace(/,/g, ''));
    // Counted before it is sent: the meter grows by the video's prompt tokens.
    await expect.poll(usedTokens, { timeout: 10_000 }).toBe(before + mp4Tokens);

    await page.getByTestId('video-max-frames').fill('2');
    await page.getByTestId('image-input').setInputFiles(webm);
    await expect.poll(pendingVideoNames, { timeout: 60_000 }).toEqual(['clock-h264.mp4', 'clock-vp9.webm']);
    await failOnAlert();
    expect(await pendingStrip('clock-vp9.webm')).toEqual(expectedStrip(webm, { fps: 1, maxFrames: 2 }));
    // Every frame's thumbnail is a decoded picture, not a broken image.
    const widths = await page.getByTestId('pending-videos').locator('img').evaluateAll((imgs) => imgs.map((img) => (img as HTMLImageElement).naturalWidth));
    expect(widths).toHaveLength(5);
    expect(widths.every((w) => w > 0)).toBe(true);
    await screenshot(page, 'video-strip');
  });

  test('asks about the videos: the answer streams, the turn shows both strips', async () => {
    await controls().getByRole('radio', { name: 'Full cache' }).check();
    await controls().getByRole('spinbutton', { name: 'Max new tokens' }).fill('8');
    const streamed = await recordWhile('[data-testid="answer-text"][data-streaming="true"]', 'attr:data-tokens');
    await ask('What happens in these videos?');
    await failOnAlert();
    const turn = turns().last();
    const tokens = Number(await turn.getByTestId('answer-text').getAttribute('data-tokens'));
    expect(tokens).toBeGreaterThan(0);
    // Token by token: the streaming answer showed several counts on its way, growing.
    const counts = (await streamed()).map(Number).filter((n) => n > 0);
    expect(counts.length, `token counts seen while streaming: ${counts.join(', ')}`).toBeGreaterThanOrEqual(2);
    expect(counts.every((n, i) => i === 0 || n > counts[i - 1])).toBe(true);
    expect(counts[counts.length - 1]).toBeLessThanOrEqual(tokens);
    expect(await turn.getByTestId('turn-video').count()).toBe(2);
    expect(await turn.getByTestId('video-frame').count()).toBe(5);
    // Sent: nothing waits any more.
    expect(await page.getByTestId('pending-video').count()).toBe(0);
  });

  test('the attention overlay and the heatmap can be shown on any frame', async () => {
    const panel = page.getByTestId('visual-heads-panel');
    const heatmapSource = panel.getByTestId('heatmap-source');
    await heatmapSource.waitFor({ timeout: 30_000 });
    // Every sampled frame of both videos is a picture of the prompt, in prompt order, named by its file and time.
    const frames = [
      ...expectedStrip(mp4, { fps: 1, maxFrames: 3 }).map(([, label]) => `clock-h264.mp4 frame ${label}`),
      ...expectedStrip(webm, { fps: 1, maxFrames: 2 }).map(([, label]) => `clock-vp9.webm frame ${label}`),
    ];
    expect(await heatmapSource.locator('option').allInnerTexts()).toEqual(['Visual-head scores', ...frames.map((frame, i) => `Attention on ${i + 1}. ${frame} (last answer)`)]);
    // The heatmap coloured by the attention on the WebM's last frame; a head picked there, then that frame in the
    // overlay's chooser, drawn from its thumbnail.
    const frame = frames[frames.length - 1];
    await heatmapSource.selectOption({ label: `Attention on ${frames.length}. ${frame} (last answer)` });
    await panel.getByRole('grid', { name: `Share of the last token's attention on ${frame}, by layer and head` }).waitFor({ timeout: 10_000 });
    // No visual-head scores yet: the KV-head groups (the tiny model's 2) come from the budgets of the last prompt.
    expect(await panel.innerText()).toContain('lines separate the 2 KV-head groups');
    await panel.getByRole('gridcell').last().click();
    expect(await panel.innerText()).toMatch(/KV head\s+1\b/);
    const chooser = panel.getByTestId('overlay-picture');
    await chooser.waitFor({ timeout: 30_000 });
    const frameOption = chooser.locator('option', { hasText: `${frames.length}. ${frame} (` });
    await chooser.selectOption((await frameOption.getAttribute('value')) ?? '');
    const overlay = panel.getByRole('img', { name: /attention over the global image/ });
    await overlay.waitFor({ timeout: 30_000 });
    expect(await overlay.locator('rect').count()).toBeGreaterThan(0);
    // The frame under the map is the thumbnail of that frame (its object URL), at the video's aspect ratio.
    const href = await panel.locator('figure img').first().getAttribute('src');
    const thumbnails = await page.locator(`[data-testid="turn"] [data-testid="turn-video"] img`).evaluateAll((imgs) => imgs.map((img) => (img as HTMLImageElement).src));
    expect(thumbnails).toContain(href);
    await panel.scrollIntoViewIfNeeded();
    await screenshot(page, 'video-overlay');
  });

  test('Compare answers the video question with the full cache and with SparseMM', async () => {
    await controls().getByRole('radio', { name: 'SparseMM' }).check();
    await controls().getByRole('slider', { name: /^Budget/ }).fill('64');
    await controls().getByRole('spinbutton', { name: 'Window' }).fill('8');
    await controls().getByRole('checkbox', { name: /^Compare/ }).check();
    await ask('And now?');
    await failOnAlert();
    const compare = turns().last().getByTestId('compare-panel');
    expect(await compare.getByTestId('compare-column').count()).toBe(2);
    expect(await compare.locator('h4').allInnerTexts()).toEqual(['Full cache', 'SparseMM, budget 64']);
    const kvRatio = Number((await compare.getByTestId('compare-ratios').locator('[data-ratio="kv"]').innerText()).replace('x', ''));
    expect(kvRatio).toBeGreaterThan(0);
    expect(kvRatio).toBeLessThan(1);
    expect(await page.getByTestId('metrics-panel').locator('table thead th').allInnerTexts()).toEqual(['Metric', 'Full cache', 'SparseMM, budget 64', 'SparseMM, budget 64 vs Full cache']);
    await controls().getByRole('checkbox', { name: /^Compare/ }).uncheck();
    await page.mouse.move(0, 0);
    await screenshot(page, 'video-answer');
  });

  test('Budget sweep runs on the video question: each policy against the full cache, the compressed caches smaller', async () => {
    const sweep = page.getByTestId('sweep-section');
    await sweep.getByTestId('sweep-question').fill('What moves in the videos?');
    await sweep.getByTestId('sweep-budgets').fill('40');
    await sweep.getByRole('button', { name: 'Run sweep' }).click();
    await expect.poll(async () => sweep.getByRole('button', { name: 'Run sweep' }).isVisible(), { timeout: 240_000, interval: 250 }).toBe(true);
    expect(await sweep.getByTestId('sweep-error').count()).toBe(0);
    const rows = sweep.getByTestId('sweep-row');
    // The full cache, then SnapKV and SparseMM at 40 tokens per head (the panel's default policies).
    expect(await rows.evaluateAll((trs) => trs.map((tr) => `${tr.getAttribute('data-policy')} ${tr.getAttribute('data-budget') ?? ''}`.trim()))).toEqual(['full', 'snapkv 40', 'sparsemm 40']);
    const kib = async (i: number) => Number(/([\d.]+) KiB/.exec(await rows.nth(i).locator('td').nth(2).innerText())?.[1]);
    // The video's prompt (hundreds of tokens) is longer than 40 per head: both compressed caches hold less.
    expect(await kib(1)).toBeLessThan(await kib(0));
    expect(await kib(2)).toBeLessThan(await kib(0));
  });

  test('bad inputs are each named with their reason, a picture is refused beside a waiting video; the conversation and the video stay', async () => {
    await page.getByTestId('video-max-frames').fill('2');
    await paste({ path: webm, type: 'video/webm' });
    await expect.poll(pendingVideoNames, { timeout: 60_000 }).toEqual(['clock-vp9.webm']);
    await failOnAlert();
    const turnCount = await turns().count();
    const usedBefore = await usedTokens();
    await drop([
      { path: bad('not-a-video.mp4'), type: 'video/mp4' },
      { path: bad('truncated.mp4'), type: 'video/mp4' },
      { path: bad('corrupt.mp4'), type: 'video/mp4' },
      { path: bad('hevc.mp4'), type: 'video/mp4' },
      { path: bad('audio-only.webm'), type: 'video/webm' },
      { path: bad('zero-frames.webm'), type: 'video/webm' },
    ]);
    await expect.poll(async () => ((await alertText().isVisible()) ? alertText().innerText() : ''), { timeout: 60_000 }).toMatch(/zero-frames/);
    const message = await alertText().innerText();
    // One line per file.
    expect(message.split('\n')).toHaveLength(6);
    expect(message).toMatch(/"not-a-video\.mp4" is not a video file this app can read/);
    expect(message).toMatch(/"truncated\.mp4" is damaged or cut short/);
    expect(message).toMatch(/"corrupt\.mp4" is damaged or cut short: the H\.264 \(AVC\) decoder failed at frame 0/);
    expect(message).toMatch(/"hevc\.mp4" is H\.265 \(HEVC\) video \(hev1[^)]*\), which this browser cannot decode/);
    expect(message).toMatch(/"audio-only\.webm" has no video track \(it holds audio only\)/);
    expect(message).toMatch(/"zero-frames\.webm" has a video track \(VP9\) but no frames/);
    expect(await pendingVideoNames()).toEqual(['clock-vp9.webm']);
    expect(await turns().count()).toBe(turnCount);
    expect(await usedTokens()).toBe(usedBefore);
    await screenshot(page, 'video-errors');
    await page.getByRole('button', { name: 'Dismiss' }).first().click();
    // A picture with a waiting video: transformers' SmolVLM processor takes images or videos in one call, not both.
    await page.getByTestId('image-input').setInputFiles(join(projectRoot, 'public', 'samples', 'shapes.png'));
    await expect
      .poll(async () => ((await alertText().isVisible()) ? alertText().innerText() : ''), { timeout: 30_000 })
      .toMatch(/A question can carry pictures or videos, not both \(transformers' SmolVLM processor refuses images and videos in one call\)/);
    expect(await page.getByTestId('pending-image').count()).toBe(0);
    expect(await pendingVideoNames()).toEqual(['clock-vp9.webm']);
    expect(await usedTokens()).toBe(usedBefore);
    await page.getByRole('button', { name: 'Dismiss' }).first().click();
    // Remove by keyboard.
    await page.getByRole('button', { name: 'Remove clock-vp9.webm' }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(pendingVideoNames, { timeout: 30_000 }).toEqual([]);
  });

  test('a video that would overflow the context is refused with how many frames fit, and added with that many (progress shown); Add sample video', async () => {
    // Every frame of the 4 s MP4 (96 at 24 fps) is more than the tiny model's context.
    await page.getByTestId('video-fps').fill('24');
    await page.getByTestId('video-max-frames').fill('96');
    await drop([{ path: mp4, type: 'video/mp4' }]);
    const offer = page.getByTestId('video-offer');
    await offer.waitFor({ timeout: 60_000 });
    const text = await offer.innerText();
    expect(text).toMatch(/"clock-h264\.mp4" would need [\d,]+ prompt tokens for its 96 frames, but the context has room for \d+/);
    const fit = Number(/(\d+) frames? fits?/.exec(text)?.[1]);
    expect(fit).toBeGreaterThan(0);
    expect(fit).toBeLessThan(96);
    expect(await page.getByTestId('pending-video').count()).toBe(0);
    await screenshot(page, 'video-overflow');
    const progress = await recordWhile('[data-testid="video-progress"] label', 'text');
    await page.getByTestId('video-fit-button').click();
    await expect.poll(pendingVideoNames, { timeout: 120_000 }).toEqual(['clock-h264.mp4']);
    // The progress bar counted the frames as they were decoded, up to all of them; it is gone once the video waits.
    const shown = await progress();
    expect(shown).toContain(`Decoding clock-h264.mp4: ${fit} / ${fit} frames`);
    expect(shown.filter((text) => text.startsWith('Decoding')).length).toBeGreaterThan(2);
    expect(await page.getByTestId('video-progress').count()).toBe(0);
    expect((await pendingStrip('clock-h264.mp4')).map(([index]) => index)).toEqual(sampleVideoFrames(ffprobeFacts(mp4), { fps: 24, maxFrames: fit }).frameIndices);
    await failOnAlert();
    // New chat drops it and the conversation.
    await page.getByTestId('new-chat-button').click();
    await expect.poll(async () => page.getByTestId('pending-video').count(), { timeout: 30_000 }).toBe(0);
    expect(await turns().count()).toBe(0);
    // Add sample video: the first clip of public/samples/videos.json, at the settings shown.
    await page.getByTestId('video-fps').fill('1');
    await page.getByTestId('video-max-frames').fill('2');
    await page.getByTestId('add-sample-video').click();
    await expect.poll(pendingVideoNames, { timeout: 60_000 }).toEqual(['clock-h264.mp4']);
    expect(await pendingStrip('clock-h264.mp4')).toEqual(expectedStrip(mp4, { fps: 1, maxFrames: 2 }));
    await failOnAlert();
  });
});
