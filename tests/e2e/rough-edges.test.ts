/**
 * The rough edges a new user hits (issue 23), each tried in headless Chromium on SwiftShader with the tiny fixture:
 * the page before a model (the chat and the panels point to the Model panel; a favicon, no failed request), the
 * default preset with the hub unreachable and a host the CSP forbids (the error says so and offers Base URL and
 * Local folder), a failed load that keeps the active model ("Still using"), the picture facts and Remove all, a
 * second Enter during the prefill, the "No visual-head scores" note once per model, and a GPU device lost mid-prefill
 * and mid-decode (Diagnostics) and by a real GPU process crash (DevTools protocol, Browser.crashGpuProcess).
 * Screenshots: test-results/rough-edges-*.png.
 */
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ensureTinyFixture } from '../../src/model-io/fixture';
import { launchBrowser, projectRoot, screenshot, serveApp, tinyFixtureMount, type AppServer, type BrowserSession } from '../helpers/browser';
import { plainPng } from '../helpers/png';

const truncatedMount = '/fixtures/truncated/';
const samplePng = readFileSync(join(projectRoot, 'public', 'samples', 'shapes.png'));

let server: AppServer;
let session: BrowserSession;
let page: Page;
let truncatedDir: string;
/** Requests that failed or answered 400+ (a missing favicon would be one), and the hub requests the route refused. */
const failedRequests: string[] = [];
const refusedHubRequests: string[] = [];

beforeAll(async () => {
  const fixtureDir = await ensureTinyFixture();
  // The fixture with model.safetensors cut in half: the loader refuses it before any GPU work.
  truncatedDir = mkdtempSync(join(tmpdir(), 'sparsemm-truncated-'));
  for (const name of readdirSync(fixtureDir)) {
    if (!statSync(join(fixtureDir, name)).isFile()) continue;
    if (name === 'model.safetensors') {
      const bytes = readFileSync(join(fixtureDir, name));
      writeFileSync(join(truncatedDir, name), bytes.subarray(0, Math.floor(bytes.length / 2)));
    } else {
      copyFileSync(join(fixtureDir, name), join(truncatedDir, name));
    }
  }
  server = await serveApp({ [tinyFixtureMount]: fixtureDir, [truncatedMount]: truncatedDir });
  session = await launchBrowser();
  page = session.page;
  // The hub is unreachable, whatever the network of the machine: every request to it fails as offline.
  await session.context.route(/^https:\/\/([\w-]+\.)*(huggingface\.co|hf\.co)\//, (route) => {
    refusedHubRequests.push(route.request().url());
    return route.abort('internetdisconnected');
  });
  page.on('requestfailed', (request) => failedRequests.push(`${request.url()} (${request.failure()?.errorText ?? 'failed'})`));
  page.on('response', (response) => {
    if (response.status() >= 400) failedRequests.push(`${response.url()} (HTTP ${response.status()})`);
  });
  await page.goto(server.url);
});

afterAll(async () => {
  await session?.close();
  await server?.close();
  if (truncatedDir) rmSync(truncatedDir, { recursive: true, force: true });
});

const fixtureUrl = () => new URL(tinyFixtureMount, server.url).href;
const modelPanel = () => page.getByTestId('model-panel');
const turns = () => page.getByTestId('turn');
const lastTurn = () => turns().last();
const focusedTestId = () => page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? document.activeElement?.id ?? null);

async function loadFrom(kind: 'Preset' | 'Base URL', url?: string): Promise<void> {
  await modelPanel().getByRole('radio', { name: kind }).check();
  if (url !== undefined) await page.getByTestId('model-url').fill(url);
  await page.getByTestId('load-button').click();
}

/**
 * The most the controls allow: a text-only answer that a test acts on mid-decode (a second Enter, Load, a device
 * loss) must outlast that action on a fast machine, where 200 tokens of the tiny model took well under a second; the
 * test presses Stop when it is done.
 */
const LONG_ANSWER_TOKENS = 1024;

async function setMaxNewTokens(count: number): Promise<void> {
  await page.getByTestId('policy-controls').getByRole('spinbutton', { name: 'Max new tokens' }).fill(String(count));
}

/** Waits until no answer streams and Stop is disabled again. */
async function waitForIdle(): Promise<void> {
  await expect.poll(async () => page.locator('[data-testid="answer-text"][data-streaming="true"]').count(), { timeout: 240_000, interval: 100 }).toBe(0);
  await expect.poll(async () => page.getByTestId('stop-button').isDisabled(), { timeout: 30_000 }).toBe(true);
}

/**
 * Tokens of the answer of the turn asked after `turnsBefore` turns (0 until that turn is shown): polling the last turn
 * instead could read the previous answer's tokens before the new turn appears, and act before the question is sent.
 */
async function newAnswerTokens(turnsBefore: number): Promise<number> {
  if ((await turns().count()) <= turnsBefore) return 0;
  return Number(await turns().nth(turnsBefore).getByTestId('answer-text').getAttribute('data-tokens'));
}

async function askByEnter(question: string): Promise<void> {
  const box = page.getByTestId('question-input');
  await box.fill(question);
  await box.press('Enter');
}

/** Waits for the notice that the model is back on a new device after a loss. */
async function waitForRestoredDevice(): Promise<void> {
  const notice = page.getByRole('status').filter({ hasText: /new GPU device is ready/ });
  await notice.waitFor({ timeout: 180_000 });
  await notice.getByRole('button', { name: 'Dismiss' }).click();
}

describe('rough edges', () => {
  test('before a model: the chat and the panels that need one point to the Model panel; a favicon, no failed request', async () => {
    const transcript = page.getByTestId('transcript');
    await expect.poll(() => transcript.innerText(), { timeout: 60_000 }).toMatch(/Start in the Model panel: load a model/);
    // The chat, Visual heads, Budget sweep and Benchmark say what they need instead of showing their forms.
    await expect.poll(() => page.getByTestId('needs-model').count(), { timeout: 30_000 }).toBe(4);
    const heads = page.getByTestId('visual-heads-panel');
    expect(await heads.getByRole('spinbutton').count()).toBe(0);
    expect(await heads.innerText()).toMatch(/Load a model to find its visual heads/);
    expect(await page.getByTestId('sweep-section').getByRole('button', { name: 'Run sweep' }).count()).toBe(0);
    await screenshot(page, 'rough-edges-1-no-model');

    // The chat's button moves the focus to the Model panel's Load button (keyboard: Enter on it).
    const goToModel = page.getByTestId('chat-panel').getByRole('button', { name: 'Go to the Model panel' });
    await goToModel.focus();
    await page.keyboard.press('Enter');
    expect(await focusedTestId()).toBe('load-button');
    await heads.getByRole('button', { name: 'Go to the Model panel' }).click();
    expect(await focusedTestId()).toBe('load-button');

    // The icon is served (no 404 in the console on load).
    expect(server.requests.filter((r) => r.path === '/favicon.svg').map((r) => r.status)).toContain(200);
    expect(failedRequests).toEqual([]);
    expect(session.consoleLines.filter((line) => line.startsWith('error'))).toEqual([]);
  });

  test('the default preset with the hub unreachable says so and offers Base URL and Local folder; so does a host the CSP forbids', async () => {
    await loadFrom('Preset');
    const loadError = page.getByTestId('load-error');
    await loadError.waitFor({ timeout: 60_000 });
    expect(refusedHubRequests.length).toBeGreaterThan(0);
    expect(await loadError.innerText()).toMatch(
      /Could not reach the Hugging Face hub \(huggingface\.co\) to download config\.json \(Failed to fetch\): this computer may be offline, or a proxy or firewall blocks huggingface\.co\. Load the model from a Base URL this browser can reach, or from a Local folder/,
    );
    expect(await page.getByTestId('active-model').innerText()).toBe('No model is loaded.');
    await screenshot(page, 'rough-edges-2-hub-unreachable');
    // "Use a Base URL" shows that field and puts the focus in it.
    await loadError.getByRole('button', { name: 'Use a Base URL' }).click();
    expect(await focusedTestId()).toBe('model-url');

    // A host the page's Content-Security-Policy does not allow: refused before any network, and said so.
    await loadFrom('Base URL', 'https://example.org/models/SmolVLM-256M-Instruct/');
    await expect.poll(() => loadError.innerText(), { timeout: 60_000 }).toMatch(/This page may not contact example\.org, so config\.json could not be downloaded/);
    expect(await loadError.innerText()).toMatch(/Content-Security-Policy allows only this site and the Hugging Face hosts/);
    await screenshot(page, 'rough-edges-3-host-not-allowed');
    await loadError.getByRole('button', { name: 'Use a Local folder' }).click();
    expect(await page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.type)).toBe('file');
    expect(await modelPanel().getByRole('radio', { name: 'Local folder' }).isChecked()).toBe(true);
  });

  test('a truncated model file keeps the loaded model: its summary stays, with "Still using"', async () => {
    await loadFrom('Base URL', fixtureUrl());
    await page.getByTestId('model-summary').waitFor({ timeout: 180_000 });
    const name = await page.getByTestId('model-summary').locator('h3').innerText();
    expect(await page.getByTestId('needs-model').count()).toBe(0);

    await loadFrom('Base URL', new URL(truncatedMount, server.url).href);
    const loadError = page.getByTestId('load-error');
    await loadError.waitFor({ timeout: 120_000 });
    expect(await loadError.innerText()).toMatch(/the file is truncated/);
    expect(await loadError.getByRole('button').count()).toBe(0); // the host answered: no other sources offered
    expect(await page.getByTestId('active-model').innerText()).toBe(`Still using ${name} (below).`);
    expect(await page.getByTestId('model-summary').locator('h3').innerText()).toBe(name);
    await screenshot(page, 'rough-edges-4-truncated-still-using');
  });

  test('picture facts say "scaled to" for every resized picture; Remove all takes the waiting ones off by keyboard', async () => {
    await page.getByTestId('image-input').setInputFiles([
      { name: 'photo-320x240.png', mimeType: 'image/png', buffer: await plainPng(320, 240) },
      { name: 'small-64x48.png', mimeType: 'image/png', buffer: await plainPng(64, 48) },
      { name: 'shapes.png', mimeType: 'image/png', buffer: samplePng },
    ]);
    await expect.poll(() => page.getByTestId('pending-image').count(), { timeout: 60_000 }).toBe(3);
    const facts = await page.getByTestId('pending-image-facts').allInnerTexts();
    // The tiny model's longest edge is 128 px: a 320 x 240 picture is scaled down to it, a 64 x 48 one up.
    expect(facts[0]).toBe('320 x 240 px, scaled to 128 x 96 · 5 tiles, 80 tokens');
    expect(facts[1]).toBe('64 x 48 px, scaled to 128 x 96 · 5 tiles, 80 tokens');
    await screenshot(page, 'rough-edges-5-picture-facts');

    const removeAll = page.getByTestId('remove-all-pictures');
    expect(await removeAll.innerText()).toBe('Remove all 3 pictures');
    await removeAll.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByTestId('pending-image').count(), { timeout: 30_000 }).toBe(0);
    expect(await focusedTestId()).toBe('question-input');
  });

  test('a second Enter during the prefill sends nothing and refuses nothing; the sent picture shows only in its turn', async () => {
    await page.getByTestId('image-input').setInputFiles({ name: 'shapes.png', mimeType: 'image/png', buffer: samplePng });
    await expect.poll(() => page.getByTestId('pending-image').count(), { timeout: 60_000 }).toBe(1);
    await setMaxNewTokens(LONG_ANSWER_TOKENS);
    const box = page.getByTestId('question-input');
    await box.fill('Tell me a long story about the shapes.');
    await box.press('Enter');
    await box.press('Enter');
    // Read in one go, as early as the page allows (the prefill runs for a while on SwiftShader).
    const early = await page.evaluate(() => ({
      tokens: document.querySelector('[data-testid="turn"]:last-of-type [data-testid="answer-text"]')?.getAttribute('data-tokens') ?? null,
      waiting: document.querySelectorAll('[data-testid="pending-image"]').length,
      inTurn: document.querySelectorAll('[data-testid="turn"]:last-of-type [data-testid="turn-image"]').length,
      refused: document.querySelectorAll('[data-testid="ask-refused"]').length,
      box: (document.querySelector('[data-testid="question-input"]') as HTMLTextAreaElement).value,
    }));
    expect(early).toMatchObject({ waiting: 0, inTurn: 1, refused: 0, box: '' });
    expect(await turns().count()).toBe(1);
    await screenshot(page, 'rough-edges-6-second-enter');
    console.log(`second Enter: the answer had ${early.tokens} tokens when the page was read`);

    // A new question typed while the answer runs is refused, and kept in the box.
    await askByEnter('An interrupting question');
    await page.getByTestId('ask-refused').waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('ask-refused').innerText()).toMatch(/then send this question \(it is kept in the box\)/);
    expect(await box.inputValue()).toBe('An interrupting question');
    await page.getByTestId('stop-button').click();
    await waitForIdle();
    expect(await page.getByTestId('pending-image').count()).toBe(0);
    await box.fill('');
  });

  test('Load pressed while an answer runs is refused and says which model is still in use', async () => {
    const turnsBefore = await turns().count();
    await askByEnter('Another long story, please.');
    await expect.poll(async () => newAnswerTokens(turnsBefore), { timeout: 120_000, interval: 50 }).toBeGreaterThanOrEqual(1);
    const name = await page.getByTestId('model-summary').locator('h3').innerText();
    await loadFrom('Base URL', fixtureUrl());
    const loadError = page.getByTestId('load-error');
    await loadError.waitFor({ timeout: 60_000 });
    expect(await loadError.innerText()).toMatch(/The engine is busy answering a question: press Stop or wait for it to finish before loading another model\./);
    expect(await page.getByTestId('active-model').innerText()).toBe(`Still using ${name} (below).`);
    await screenshot(page, 'rough-edges-7-load-while-answering');
    // The tiny model may have finished its 200 tokens meanwhile.
    const stop = page.getByTestId('stop-button');
    if (await stop.isEnabled()) await stop.click();
    await waitForIdle();
  });

  test('the "No visual-head scores" note goes with the first SparseMM answer of the model only, and stays in the KV budget section', async () => {
    // The answers so far used SparseMM (the default) without scores: the note was said once.
    await setMaxNewTokens(3);
    await askByEnter('Short answer, please.');
    await waitForIdle();
    const notes = page.getByTestId('transcript').getByText(/No visual-head scores for this model/);
    expect(await turns().count()).toBe(3);
    expect(await notes.count()).toBe(1);
    expect(await turns().first().getByText(/No visual-head scores for this model/).count()).toBe(1);
    const panelNote = page.getByTestId('uniform-scores-note');
    expect(await panelNote.innerText()).toMatch(/^No visual-head scores for this model: SparseMM uses uniform scores/);
    expect(await page.getByTestId('visual-heads-panel').getByText(/No visual-head scores for this model/).count()).toBe(1);
    await screenshot(page, 'rough-edges-8-note-once');
  });

  test('a GPU device lost mid-decode and mid-prefill (Diagnostics, enabled during the answer): the turn says it was interrupted', async () => {
    const simulate = page.getByTestId('simulate-device-loss');
    await page.getByText('Diagnostics').click();
    await setMaxNewTokens(LONG_ANSWER_TOKENS);

    // Mid-decode: after two tokens.
    const turnsBefore = await turns().count();
    await askByEnter('A long story for the decode.');
    await expect.poll(async () => newAnswerTokens(turnsBefore), { timeout: 120_000, interval: 50 }).toBeGreaterThanOrEqual(2);
    expect(await simulate.isEnabled()).toBe(true);
    await simulate.click();
    const error = lastTurn().getByTestId('turn-error');
    await error.waitFor({ timeout: 60_000 });
    expect(await error.innerText()).toMatch(/^The GPU device was lost \(The device was destroyed.*\) and this answer was interrupted; the conversation does not keep it\./);
    const decodeTurn = await lastTurn().innerText();
    expect(decodeTurn).not.toMatch(/Stopped\./);
    expect(decodeTurn).not.toMatch(/0\.0 ms/);
    await screenshot(page, 'rough-edges-9-lost-mid-decode');
    await waitForRestoredDevice();

    // Mid-prefill: four pictures make the prefill long; the loss is pressed while the answer has no token yet.
    await setMaxNewTokens(200); // four pictures and 1024 new tokens would not fit the tiny model's context
    await page.getByTestId('add-samples').click();
    await expect.poll(() => page.getByTestId('pending-image').count(), { timeout: 60_000 }).toBe(4);
    const before = await turns().count();
    await askByEnter('What do the four pictures show?');
    await expect.poll(() => turns().count()).toBe(before + 1);
    const tokensAtLoss = await page.evaluate(() => {
      const answers = document.querySelectorAll('[data-testid="turn"]:last-of-type [data-testid="answer-text"]');
      const tokens = answers[answers.length - 1]?.getAttribute('data-tokens');
      (document.querySelector('[data-testid="simulate-device-loss"]') as HTMLButtonElement).click();
      return Number(tokens);
    });
    expect(tokensAtLoss).toBe(0);
    await error.waitFor({ timeout: 60_000 });
    const prefillTurn = await lastTurn().innerText();
    expect(prefillTurn).toMatch(/The GPU device was lost \(.*\) and this answer was interrupted/);
    expect(prefillTurn).not.toMatch(/Stopped\.|0\.0 ms|encoded by the vision tower/);
    // Not kept: the pictures wait for the next question again.
    expect(await page.getByTestId('pending-image').count()).toBe(4);
    await screenshot(page, 'rough-edges-10-lost-mid-prefill');
    await waitForRestoredDevice();
  });

  test('a real GPU process crash (DevTools Browser.crashGpuProcess) during an answer: interrupted, then the model comes back', async () => {
    // Four pictures make the answer's prefill long (vision tower and a long text prefill), so the crash lands while
    // the answer runs even on a fast machine: waiting for a decoded token first raced the end of a short answer.
    if ((await page.getByTestId('pending-image').count()) > 0) await page.getByTestId('remove-all-pictures').click();
    await expect.poll(() => page.getByTestId('pending-image').count(), { timeout: 30_000 }).toBe(0);
    await page.getByTestId('add-samples').click();
    await expect.poll(() => page.getByTestId('pending-image').count(), { timeout: 60_000 }).toBe(4);
    await setMaxNewTokens(200);
    const cdp = await session.context.newCDPSession(page);
    const before = await turns().count();
    await askByEnter('What do the four pictures show, before the crash?');
    await expect.poll(() => turns().count()).toBe(before + 1);
    // The page target accepts this Browser-domain command here; SwiftShader runs in the GPU process, so the device goes.
    await cdp.send('Browser.crashGpuProcess' as never);
    const error = lastTurn().getByTestId('turn-error');
    // On a timeout, say what the turn read instead (an answer that ended before the crash, or no loss reported).
    await error.waitFor({ timeout: 60_000 }).catch(async (cause: unknown) => {
      throw new Error(`no interruption shown after the crash; the turn reads: ${await lastTurn().innerText()}`, { cause });
    });
    const crashedTurn = await lastTurn().innerText();
    expect(crashedTurn).toMatch(/The GPU device was lost \(The GPU reset.*\) and this answer was interrupted/);
    expect(crashedTurn).not.toMatch(/Stopped\.|0\.0 ms/);
    await screenshot(page, 'rough-edges-11-gpu-process-crash');
    // Not kept: the pictures wait for the next question again.
    expect(await page.getByTestId('pending-image').count()).toBe(4);
    await waitForRestoredDevice();
    await page.getByTestId('remove-all-pictures').click();
    await expect.poll(() => page.getByTestId('pending-image').count(), { timeout: 30_000 }).toBe(0);
    await setMaxNewTokens(3);
    await askByEnter('Still there after the crash?');
    await waitForIdle();
    expect(Number(await lastTurn().getByTestId('answer-text').getAttribute('data-tokens'))).toBeGreaterThanOrEqual(1);
    expect(await lastTurn().getByTestId('turn-error').count()).toBe(0);
    expect(session.pageErrors).toEqual([]);
  });
});
