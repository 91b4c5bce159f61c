import type { FileProgress } from './api';

/** The loader's per-file progress event (see src/model-io/loader.ts). */
export interface RawFileProgress {
  file: string;
  loadedBytes: number;
  totalBytes: number | null;
  fromCache: boolean;
  done: boolean;
}

/**
 * Forwards load progress to the UI at most every `intervalMs` per file (each event is a
 * postMessage, and a fast download reports thousands of chunks), always passing the first
 * and the final event of a file, and adds the transfer rate.
 */
export function throttleProgress(
  forward: (progress: FileProgress) => void,
  intervalMs = 100,
  now: () => number = () => performance.now(),
): (progress: RawFileProgress) => void {
  const files = new Map<string, { startedAt: number; lastSentAt: number }>();
  return (progress) => {
    const t = now();
    let state = files.get(progress.file);
    const first = state === undefined;
    if (!state) {
      state = { startedAt: t, lastSentAt: -Infinity };
      files.set(progress.file, state);
    }
    if (!first && !progress.done && t - state.lastSentAt < intervalMs) return;
    state.lastSentAt = t;
    const seconds = (t - state.startedAt) / 1000;
    const bytesPerSecond = progress.fromCache || seconds <= 0 ? 0 : progress.loadedBytes / seconds;
    forward({ ...progress, bytesPerSecond });
  };
}
