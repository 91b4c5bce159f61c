import { proxy, wrap, type Remote } from 'comlink';
import type { BenchmarkProgress, EngineApi, FidelitySweepProgress, OcrEvalProgress, EngineEventCallback, HeadSearchProgress, LoadStepCallback, ProgressCallback, TokenCallback, VideoProgressCallback } from '../worker/api';

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
function callbackProxy<T extends (...args: never[]) => void>(callback: T): T {
  return proxy(callback);
}

export function progressProxy(callback: ProgressCallback): ProgressCallback {
  return callbackProxy(callback);
}

export function loadStepProxy(callback: LoadStepCallback): LoadStepCallback {
  return callbackProxy(callback);
}

export function searchProgressProxy(callback: (progress: HeadSearchProgress) => void): (progress: HeadSearchProgress) => void {
  return callbackProxy(callback);
}

export function tokenProxy(callback: TokenCallback): TokenCallback {
  return callbackProxy(callback);
}

export function eventProxy(callback: EngineEventCallback): EngineEventCallback {
  return callbackProxy(callback);
}

export function benchmarkProgressProxy(callback: (progress: BenchmarkProgress) => void): (progress: BenchmarkProgress) => void {
  return callbackProxy(callback);
}

export function sweepProgressProxy(callback: (progress: FidelitySweepProgress) => void): (progress: FidelitySweepProgress) => void {
  return callbackProxy(callback);
}

export function ocrProgressProxy(callback: (progress: OcrEvalProgress) => void): (progress: OcrEvalProgress) => void {
  return callbackProxy(callback);
}

export function videoProgressProxy(callback: VideoProgressCallback): VideoProgressCallback {
  return callbackProxy(callback);
}
