/**
 * The page `npm run bench -- --browser` opens in headless Chromium (served by Vite's dev server from src/cli/bench-browser.ts):
 * it fetches the random-weight SmolVLM-256M-shape model the driver serves under /bench-model/, creates a WebGPU
 * context in the page, and runs the same runBenchmark as the Node CLI. The driver calls window.__runBench(settings) and
 * receives progress through window.__benchProgress (exposed by Playwright).
 */
import { runBenchmark, type BenchmarkOptions, type BenchmarkProgress, type BenchmarkReport } from './engine/benchmark';
import { GpuContext } from './engine/gpu';
import { browserShaderSource } from './engine/shaders-browser';
import { parseModelConfig } from './model-io/config';
import { SafetensorsFile } from './model-io/safetensors';

/** Everything of BenchmarkOptions except what the page loads itself (config, weights) and the signal. */
export type BenchPageSettings = Omit<BenchmarkOptions, 'config' | 'weights' | 'model' | 'signal'>;

declare global {
  interface Window {
    __runBench?: (settings: BenchPageSettings) => Promise<BenchmarkReport>;
    __benchProgress?: (progress: BenchmarkProgress) => void;
  }
}

const status = document.getElementById('status');

async function fetchOk(url: string): Promise<Response> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return response;
}

window.__runBench = async (settings) => {
  if (status) status.textContent = 'Loading the model files...';
  const [configText, weightBytes] = await Promise.all([
    fetchOk('/bench-model/config.json').then((r) => r.text()),
    fetchOk('/bench-model/model.safetensors').then((r) => r.arrayBuffer()),
  ]);
  const config = parseModelConfig(configText);
  const weights = SafetensorsFile.parse(weightBytes);
  const ctx = await GpuContext.create(navigator.gpu, browserShaderSource);
  try {
    return await runBenchmark(ctx, { ...settings, config, weights } as BenchmarkOptions, (progress) => {
      if (status) status.textContent = progress.message;
      window.__benchProgress?.(progress);
    });
  } finally {
    ctx.destroy();
  }
};
if (status) status.textContent = 'Ready.';
