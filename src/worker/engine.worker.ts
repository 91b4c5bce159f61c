/// <reference lib="webworker" />
/**
 * The single engine worker. It owns the GPUDevice and the loaded model; the UI reaches it only
 * through comlink (see api.ts for the contract).
 */
import { expose, releaseProxy } from 'comlink';
import { GpuContext } from '../engine/gpu';
import { browserShaderSource } from '../engine/shaders-browser';
import { loadModel as loadModelFiles, type LoadedModel } from '../model-io/loader';
import { CacheStorageModelCache } from '../model-io/cache';
import type { EngineApi, InitResult, ModelSourceSpec, ModelSummary, ProgressCallback } from './api';
import { sourceDisplayName, summarizeModel } from './model-summary';
import { throttleProgress } from './progress-throttle';

/** What this worker holds between calls. The model runtime (added later) reads `state.model` and `state.gpu`. */
const state: { gpu: GpuContext | null; model: LoadedModel | null } = { gpu: null, model: null };
let initResult: Promise<InitResult> | null = null;
let loadController: AbortController | null = null;

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function createGpu(): Promise<InitResult> {
  try {
    const gpu = await GpuContext.create(navigator.gpu, browserShaderSource);
    state.gpu = gpu;
    // A lost device (driver reset, GPU process crash) makes every later call fail: log why and let init() start over.
    void gpu.device.lost.then((info) => {
      console.error(`WebGPU device lost (${info.reason}): ${info.message}`);
      state.gpu = null;
      initResult = null;
    });
    return { ok: true, adapter: gpu.adapter };
  } catch (error) {
    return { ok: false, error: errorMessage(error) };
  }
}

/** Callbacks arrive as comlink proxies, each holding a MessagePort; free it once the call is over. */
function releaseCallback(callback: unknown): void {
  const release = (callback as { [releaseProxy]?: () => void })[releaseProxy];
  if (typeof release === 'function') release.call(callback);
}

const engine: EngineApi = {
  init() {
    initResult ??= createGpu();
    return initResult;
  },

  async loadModel(source: ModelSourceSpec, onProgress: ProgressCallback): Promise<ModelSummary> {
    loadController?.abort();
    const controller = new AbortController();
    loadController = controller;
    let finished = false; // progress that arrives after the end (e.g. from an aborted read) is dropped
    try {
      const model = await loadModelFiles(source, {
        cache: new CacheStorageModelCache(),
        onProgress: throttleProgress((progress) => {
          if (!finished) void onProgress(progress);
        }),
        signal: controller.signal,
      });
      state.model = model;
      return summarizeModel(model, sourceDisplayName(source));
    } finally {
      if (loadController === controller) loadController = null;
      finished = true;
      releaseCallback(onProgress);
    }
  },

  cancelLoad() {
    loadController?.abort();
  },
};

expose(engine);
