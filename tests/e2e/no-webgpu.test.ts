/**
 * The built app in a browser without WebGPU (issue 8): the adapter panel explains it plainly and says how to enable
 * it, and nothing throws.
 *
 * Two ways a browser lacks WebGPU, both real here:
 * - no `navigator.gpu` at all (older browsers, Firefox/Safari without the flag): Chromium has no switch that removes
 *   the API from a secure context (`--disable-features=WebGPU` and `--disable-blink-features=WebGPU` leave it in
 *   place), so an init script deletes it from the page and the engine worker's script gets the same line prepended
 *   as it is served (init scripts do not run in workers);
 * - `navigator.gpu` present but no adapter: Chromium on Linux started without `--enable-unsafe-webgpu`, where
 *   requestAdapter() resolves null.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromiumFlags, chromiumPath, launchBrowser, screenshot, serveApp, type AppServer, type BrowserSession } from '../helpers/browser';

let server: AppServer;

beforeAll(async () => {
  server = await serveApp();
});

afterAll(async () => {
  await server?.close();
});

/** Runs at the top of the worker's script: the worker then sees a browser without WebGPU. */
const removeGpuInWorker = 'delete WorkerNavigator.prototype.gpu;\n';

async function expectNoWebGpuPanel(session: BrowserSession, reason: RegExp, shot: string): Promise<void> {
  const { page } = session;
  const panel = page.getByTestId('adapter-panel');
  const failure = page.getByTestId('adapter-error');
  await failure.or(page.getByTestId('adapter-ok')).waitFor({ timeout: 60_000 });
  expect(await page.getByTestId('adapter-ok').count()).toBe(0);
  const text = await failure.innerText();
  expect(text).toMatch(/WebGPU is not available here\./);
  expect(text).toMatch(reason);
  // How to enable it: the browser versions, the flag and where to look.
  expect(text).toMatch(/How to enable it/);
  expect(text).toContain('chrome://flags/#enable-unsafe-webgpu');
  expect(text).toContain('--enable-unsafe-webgpu');
  expect(text).toContain('chrome://gpu');
  expect(await failure.getAttribute('role')).toBe('alert');
  expect(await panel.isVisible()).toBe(true);
  // The rest of the page is still there.
  expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe('SparseMM Web');
  await screenshot(page, shot);
  expect(session.pageErrors).toEqual([]);
}

describe('a browser without WebGPU', () => {
  test('no navigator.gpu in the page or the worker: the panel says WebGPU is not available and how to enable it', async () => {
    const session = await launchBrowser();
    try {
      const { context, page } = session;
      await context.addInitScript(() => {
        delete (Navigator.prototype as { gpu?: unknown }).gpu;
      });
      let patchedWorkers = 0;
      await context.route(/\/assets\/[^/]*worker[^/]*\.js(\?.*)?$/, async (route) => {
        const response = await route.fetch();
        patchedWorkers += 1;
        await route.fulfill({ response, body: removeGpuInWorker + (await response.text()) });
      });
      await page.goto(server.url);
      await expectNoWebGpuPanel(session, /navigator\.gpu is missing/, 'no-webgpu-api');
      expect(await page.evaluate(() => 'gpu' in navigator)).toBe(false);
      // The worker really ran without the API (the launch flags would otherwise give it a SwiftShader adapter).
      expect(patchedWorkers).toBeGreaterThan(0);
    } finally {
      await session.close();
    }
  });

  test('navigator.gpu without an adapter (no --enable-unsafe-webgpu): the panel says so and how to enable it', async () => {
    const userDataDir = mkdtempSync(join(tmpdir(), 'sparsemm-chromium-nogpu-'));
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      headless: true,
      args: chromiumFlags.filter((flag) => !/webgpu|swiftshader/i.test(flag)),
      viewport: { width: 1280, height: 800 },
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const pageErrors: string[] = [];
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.goto(server.url);
      // The API is there, only the adapter is missing: this is the other branch of the message.
      expect(await page.evaluate(() => 'gpu' in navigator)).toBe(true);
      const session = { context, page, consoleLines: [], pageErrors, close: async () => undefined } satisfies BrowserSession;
      await expectNoWebGpuPanel(session, /WebGPU is present but no GPU adapter was found/, 'no-webgpu-adapter');
    } finally {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    }
  });
});
