/**
 * `npm run bench -- --browser`: the same runBenchmark in headless Chromium (WebGPU on whatever adapter Chromium finds;
 * SwiftShader here, DESIGN.md §5). Writes the random-weight SmolVLM-256M-shape model once to .fixtures/ (git-ignored),
 * serves it and src/bench-page.html through Vite's dev server (so no build input is needed), and drives the page with
 * playwright-core.
 */
import { createReadStream, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createServer, type Plugin } from 'vite';
import type { BenchmarkPolicySpec, BenchmarkProgress, BenchmarkReport } from '../engine/benchmark';
import { isFixtureCurrent, writeFixture } from '../model-io/fixture';
import type { BenchPageSettings } from '../bench-page';
import { benchmarkChromiumFlags, chromiumPath } from './chromium';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const modelFiles = new Set(['config.json', 'model.safetensors']);

export interface BrowserBenchSettings {
  promptLengths: number[];
  policies: BenchmarkPolicySpec[];
  decodeSteps: number;
  warmupSteps: number;
  prefillLengths: number[];
  ratio: number;
  window: number;
  seed: number;
  headScores: { scores: number[][]; source: string };
  weightSeed: number;
  /** The Node machine's description; the browser's user agent is appended. */
  machine: string;
  lookahead?: number;
  weightFormats?: string[];
  promptLabels?: Record<number, string>;
}

/** Serves the two model files under /bench-model/ from `dir`. */
function modelFilesPlugin(dir: string): Plugin {
  return {
    name: 'sparsemm-bench-model',
    configureServer(server) {
      server.middlewares.use('/bench-model', (req: IncomingMessage, res: ServerResponse, next: () => void) => {
        const name = basename(decodeURIComponent((req.url ?? '/').split('?')[0]));
        if (!modelFiles.has(name)) return next();
        const path = join(dir, name);
        res.setHeader('Content-Type', name.endsWith('.json') ? 'application/json' : 'application/octet-stream');
        res.setHeader('Content-Length', String(statSync(path).size));
        createReadStream(path).pipe(res);
      });
    },
  };
}

export async function runBrowserBenchmark(settings: BrowserBenchSettings, onProgress: (progress: BenchmarkProgress) => void): Promise<BenchmarkReport> {
  if (!existsSync(chromiumPath)) {
    throw new Error(`--browser needs Chromium at ${chromiumPath}. Install it with: apt-get update && apt-get install -y chromium libvulkan1`);
  }
  const modelDir = join(projectRoot, '.fixtures', 'smolvlm-256m-shape');
  if (!(await isFixtureCurrent(modelDir, 'smolvlm-256m-shape', settings.weightSeed))) {
    process.stderr.write(`Writing random weights at the SmolVLM-256M shape to ${modelDir} (once)...\n`);
    await writeFixture(modelDir, { preset: 'smolvlm-256m-shape', seed: settings.weightSeed });
  }
  const server = await createServer({
    root: projectRoot,
    configFile: join(projectRoot, 'vite.config.ts'),
    logLevel: 'warn',
    server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false },
    plugins: [modelFilesPlugin(modelDir)],
  });
  const userDataDir = mkdtempSync(join(tmpdir(), 'sparsemm-bench-chromium-'));
  try {
    await server.listen();
    const base = server.resolvedUrls?.local[0];
    if (!base) throw new Error('The Vite dev server did not report a URL.');
    const context = await chromium.launchPersistentContext(userDataDir, { executablePath: chromiumPath, headless: true, args: benchmarkChromiumFlags() });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const pageErrors: string[] = [];
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.exposeFunction('__benchProgress', (progress: BenchmarkProgress) => onProgress(progress));
      await page.goto(new URL('src/bench-page.html', base).href);
      await page.waitForFunction(() => typeof window.__runBench === 'function', undefined, { timeout: 120_000 }).catch(() => {
        throw new Error(`The bench page did not start${pageErrors.length ? `: ${pageErrors.join('; ')}` : ''}.`);
      });
      const userAgent = await page.evaluate(() => navigator.userAgent);
      const pageSettings: BenchPageSettings = {
        promptLengths: settings.promptLengths,
        policies: settings.policies,
        decodeSteps: settings.decodeSteps,
        warmupSteps: settings.warmupSteps,
        prefillLengths: settings.prefillLengths,
        ratio: settings.ratio,
        window: settings.window,
        seed: settings.seed,
        lookahead: settings.lookahead,
        weightFormats: settings.weightFormats,
        promptLabels: settings.promptLabels,
        headScores: settings.headScores.scores,
        headScoresSource: settings.headScores.source,
        machine: `${settings.machine}; headless ${userAgent}`,
      };
      return await page.evaluate((s) => {
        const runBench = window.__runBench;
        if (!runBench) throw new Error('window.__runBench is missing');
        return runBench(s);
      }, pageSettings);
    } finally {
      await context.close();
    }
  } finally {
    await server.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}
