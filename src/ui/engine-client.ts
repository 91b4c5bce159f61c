import { proxy, wrap, type Remote } from 'comlink';
import type { EngineApi, ProgressCallback } from '../worker/api';

let engine: Remote<EngineApi> | null = null;

/** The one engine worker of this page, started on first use. */
export function getEngine(): Remote<EngineApi> {
  if (!engine) {
    const worker = new Worker(new URL('../worker/engine.worker.ts', import.meta.url), { type: 'module', name: 'engine' });
    engine = wrap<EngineApi>(worker);
  }
  return engine;
}

/** Wraps a UI callback so the worker can call it across the thread boundary. */
export function progressProxy(callback: ProgressCallback): ProgressCallback {
  return proxy(callback);
}
