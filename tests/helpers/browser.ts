/**
 * Headless Chromium with WebGPU on SwiftShader (DESIGN.md §5) and the built app served from
 * 127.0.0.1, for the e2e tests. Nothing is skipped: a missing browser or build is a failure that says
 * how to fix it.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { chromiumPath, swiftShaderChromiumFlags } from '../../src/cli/chromium';
import { ensureTinyFixture, writeFixture } from '../../src/model-io/fixture';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';
import { startServer, type RunningServer, type ServedRequest } from '../../scripts/serve.mjs';

export { chromiumPath };
export const systemInstallCommand = 'apt-get update && apt-get install -y chromium libvulkan1';
export const projectRoot = resolve(import.meta.dirname, '../..');
export const distDir = join(projectRoot, 'dist');
export const screenshotDir = join(projectRoot, 'test-results');

/** WebGPU through SwiftShader, no network side traffic, nothing remembered between runs. */
export const chromiumFlags = swiftShaderChromiumFlags;

export interface BrowserSession {
  context: BrowserContext;
  page: Page;
  /** Console lines of the page and its workers, "type: text", in order. */
  consoleLines: string[];
  /** Uncaught exceptions of the page. */
  pageErrors: string[];
  close(): Promise<void>;
}

/** Launches /usr/bin/chromium headless (new headless mode) with a fresh user-data-dir and opens one page. */
export async function launchBrowser(viewport = { width: 1280, height: 800 }): Promise<BrowserSession> {
  if (!existsSync(chromiumPath)) {
    const why = process.env.CI === 'true' ? 'CI=true requires it' : 'the e2e tests need it';
    throw new Error(`Chromium is not installed at ${chromiumPath} (${why}). Install it with: ${systemInstallCommand}`);
  }
  // A persistent context on a new temporary folder is the way playwright takes an explicit user-data-dir.
  const userDataDir = mkdtempSync(join(tmpdir(), 'sparsemm-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    args: chromiumFlags,
    viewport,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleLines: string[] = [];
  const pageErrors: string[] = [];
  page.on('console', (message: ConsoleMessage) => consoleLines.push(`${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => pageErrors.push(error.message));
  return {
    context,
    page,
    consoleLines,
    pageErrors,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

export interface AppServer extends RunningServer {
  /** Every request the server answered, in order. */
  requests: ServedRequest[];
  /** How many successful GETs ended with `pathSuffix` (e.g. "/model.safetensors"). */
  countGets(pathSuffix: string): number;
}

/**
 * Serves the built app (dist/) with its real Content-Security-Policy. `mounts` adds folders under URL
 * prefixes on the same origin (the CSP allows only 'self' and the Hugging Face hosts).
 */
export async function serveApp(mounts: Record<string, string> = {}): Promise<AppServer> {
  if (!existsSync(join(distDir, 'index.html'))) {
    throw new Error(`The app is not built (${distDir}/index.html is missing). Run: npx vite build (npm test does it).`);
  }
  const requests: ServedRequest[] = [];
  const server = await startServer({ root: distDir, port: 0, mounts, onRequest: (request) => requests.push(request) });
  return {
    ...server,
    requests,
    countGets: (pathSuffix) => requests.filter((r) => r.method === 'GET' && r.status === 200 && r.path.endsWith(pathSuffix)).length,
  };
}

/** Saves a full-page screenshot to test-results/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(screenshotDir, { recursive: true });
  const path = join(screenshotDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Where the e2e tests serve the tiny fixture, on the app's origin (the CSP allows only 'self'). */
export const tinyFixtureMount = '/fixtures/tiny/';

export interface TinyModelApp {
  server: AppServer;
  session: BrowserSession;
  page: Page;
  /** Closes the browser, then the server. */
  close(): Promise<void>;
}

/**
 * Serves the built app with the tiny fixture at `tinyFixtureMount`, launches Chromium and opens the app with
 * ?model=<fixture>&autoload=1, so the model starts loading at once. `beforeOpen` runs on the page before it
 * navigates (e.g. to listen for dialogs from the first load on). `preset` "smolvlm2-tiny" serves the same miniature as
 * SmolVLM2 (a video path), written to a temporary folder removed on close. `extraQuery` adds page URL options (e.g.
 * weights) or overrides them (autoload: "0" opens the app without loading).
 */
export async function openAppWithTinyModel(
  viewport?: { width: number; height: number },
  beforeOpen?: (page: Page) => void,
  preset: 'tiny' | 'smolvlm2-tiny' = 'tiny',
  extraQuery: Record<string, string> = {},
): Promise<TinyModelApp> {
  const ownDir = preset === 'tiny' ? null : mkdtempSync(join(tmpdir(), `sparsemm-${preset}-`));
  if (ownDir) await writeFixture(ownDir, { preset });
  const fixtureDir = ownDir ?? (await ensureTinyFixture());
  const server = await serveApp({ [tinyFixtureMount]: fixtureDir });
  let session: BrowserSession | undefined;
  const close = async () => {
    await session?.close();
    await server.close();
    if (ownDir) rmSync(ownDir, { recursive: true, force: true });
  };
  try {
    session = await launchBrowser(viewport);
    const { page } = session;
    beforeOpen?.(page);
    const modelUrl = new URL(tinyFixtureMount, server.url).href;
    await page.goto(`${server.url}?${new URLSearchParams({ model: modelUrl, autoload: '1', ...extraQuery }).toString()}`);
    return { server, session, page, close };
  } catch (error) {
    await close();
    throw error;
  }
}
