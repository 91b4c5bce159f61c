/**
 * The app end to end in headless Chromium on SwiftShader WebGPU: the worker gets an adapter, the tiny
 * fixture model loads by URL through the real loader with progress to 100%, and a second load after a
 * reload comes from Cache Storage without downloading the weights again. Served with the real CSP.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ensureTinyFixture } from '../../src/model-io/fixture';
import { launchBrowser, screenshot, serveApp, type AppServer, type BrowserSession } from '../helpers/browser';

const fixtureMount = '/fixtures/tiny/';
const weightsPath = `${fixtureMount}model.safetensors`;

let server: AppServer;
let session: BrowserSession;
let fixtureDir: string;

beforeAll(async () => {
  fixtureDir = await ensureTinyFixture();
  server = await serveApp({ [fixtureMount]: fixtureDir });
  session = await launchBrowser();
});

afterAll(async () => {
  await session?.close();
  await server?.close();
});

function appUrl(query: Record<string, string>): string {
  return `${server.url}?${new URLSearchParams(query).toString()}`;
}

function cspViolations(): string[] {
  return session.consoleLines.filter((line) => /Content Security Policy|Refused to/i.test(line));
}

describe('app shell', () => {
  test('the worker reports a WebGPU adapter', async () => {
    const { page } = session;
    await page.goto(server.url);
    expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe('SparseMM Web');
    const ok = page.getByTestId('adapter-ok');
    const failure = page.getByTestId('adapter-error');
    await ok.or(failure).waitFor({ timeout: 60_000 });
    if (await failure.isVisible()) {
      throw new Error(`No WebGPU adapter in Chromium: ${await failure.innerText()}`);
    }
    expect(await page.getByTestId('adapter-vendor').innerText()).not.toBe('');
    expect(await page.getByTestId('adapter-architecture').innerText()).not.toBe('');
    // The chat, visual-heads, metrics and benchmark panels are present and labelled.
    for (const title of ['Image + chat', 'Visual heads', 'Metrics', 'Benchmark']) {
      expect(await page.getByRole('region', { name: title }).isVisible()).toBe(true);
    }
    await screenshot(page, 'app-adapter');
    expect(session.pageErrors).toEqual([]);
    expect(cspViolations()).toEqual([]);
  });

  test('loads the tiny model by URL with progress to 100%, then again from the cache', async () => {
    const { page } = session;
    const modelUrl = new URL(fixtureMount, server.url).href;

    await page.goto(appUrl({ model: modelUrl, autoload: '1' }));
    expect(await page.getByTestId('model-url').inputValue()).toBe(modelUrl);
    const summary = page.getByTestId('model-summary');
    const loadError = page.getByTestId('load-error');
    await summary.or(loadError).waitFor({ timeout: 120_000 });
    if (await loadError.isVisible()) throw new Error(`The fixture did not load: ${await loadError.innerText()}`);

    // Every file reaches 100% (the last progress event may land just after the summary).
    const items = page.getByTestId('progress-list').locator('li');
    await expect.poll(() => items.count()).toBeGreaterThan(0);
    await expect
      .poll(async () => (await items.evaluateAll((lis) => lis.map((li) => `${li.getAttribute('data-file')}=${li.getAttribute('data-done')}`))).filter((s) => !s.endsWith('=true')), { timeout: 30_000 })
      .toEqual([]);
    const weightsItem = page.locator('li[data-file="model.safetensors"]');
    expect(await weightsItem.getAttribute('data-percent')).toBe('100');
    expect(await page.getByTestId('load-origin').innerText()).toMatch(/Downloaded/);
    expect(Number(await page.getByTestId('summary-layers').innerText())).toBeGreaterThan(0);
    await screenshot(page, 'app-loaded');
    expect(server.countGets(weightsPath)).toBe(1);

    // A new page load: the worker is new, the browser cache is not.
    await page.reload();
    await summary.or(loadError).waitFor({ timeout: 120_000 });
    if (await loadError.isVisible()) throw new Error(`The cached load failed: ${await loadError.innerText()}`);
    expect(await page.getByTestId('load-origin').innerText()).toMatch(/from the browser cache/);
    expect(await weightsItem.innerText()).toMatch(/from cache/);
    await screenshot(page, 'app-loaded-from-cache');
    expect(server.countGets(weightsPath)).toBe(1);

    expect(session.pageErrors).toEqual([]);
    expect(cspViolations()).toEqual([]);
  });

  test('loads the tiny model from a picked local folder', async () => {
    const { page } = session;
    await page.goto(server.url);
    await page.getByLabel('Local folder').check();
    await page.getByLabel(/Model folder/).setInputFiles(fixtureDir);
    await page.getByTestId('load-button').click();
    const summary = page.getByTestId('model-summary');
    const loadError = page.getByTestId('load-error');
    await summary.or(loadError).waitFor({ timeout: 120_000 });
    if (await loadError.isVisible()) throw new Error(`The folder did not load: ${await loadError.innerText()}`);
    expect(await page.locator('li[data-file="model.safetensors"]').getAttribute('data-done')).toBe('true');
    expect(Number(await page.getByTestId('summary-layers').innerText())).toBeGreaterThan(0);
    await screenshot(page, 'app-loaded-from-folder');
  });

  test('shows a readable error for a URL without a model', async () => {
    const { page } = session;
    await page.goto(appUrl({ model: new URL('/no-such-model/', server.url).href, autoload: '1' }));
    const loadError = page.getByTestId('load-error');
    await loadError.waitFor({ timeout: 60_000 });
    expect(await loadError.innerText()).toMatch(/config\.json/);
    await screenshot(page, 'app-load-error');
  });

  test('every model control is labelled and reachable with the keyboard', async () => {
    const { page } = session;
    await page.goto(server.url);
    await page.getByTestId('adapter-ok').or(page.getByTestId('adapter-error')).waitFor({ timeout: 60_000 });
    const reached: string[] = [];
    for (let i = 0; i < 20; i++) {
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => {
        const el = document.activeElement;
        return el ? `${el.tagName.toLowerCase()}:${el.getAttribute('data-testid') ?? el.getAttribute('name') ?? el.id}` : '';
      });
      reached.push(focused);
      if (focused === 'button:load-button') break;
    }
    expect(reached).toContain('input:source-kind');
    expect(reached.some((r) => r.startsWith('select:'))).toBe(true);
    expect(reached.at(-1)).toBe('button:load-button');

    expect(await page.getByRole('combobox', { name: 'Preset model' }).inputValue()).toBe('HuggingFaceTB/SmolVLM-256M-Instruct');
    await page.getByLabel('Hub model id').check();
    expect(await page.getByLabel('Hugging Face model id').isVisible()).toBe(true);
    await page.getByLabel('Local folder').check();
    expect(await page.getByLabel(/Model folder/).getAttribute('webkitdirectory')).not.toBeNull();
  });

  test('the layout fits a narrow screen', async () => {
    const { page } = session;
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(server.url);
    await page.getByTestId('adapter-ok').waitFor({ timeout: 60_000 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await screenshot(page, 'app-narrow');
    await page.setViewportSize({ width: 1280, height: 800 });
  });
});
