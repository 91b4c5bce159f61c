import { useEffect, useState } from 'react';
import { errorMessage } from '../../errors';
import { getEngine } from '../engine-client';

/**
 * A worker job with progress (a sweep, an OCR evaluation): its progress, result or error; Stop goes to the worker.
 * `onRunningChange` tells the app when the job starts and ends, so the chat and the other jobs wait meanwhile.
 */
export function useEngineJob<Progress, Result>(onRunningChange?: (running: boolean) => void) {
  const [result, setResult] = useState<Result | null>(null);
  const [running, setRunning] = useState(false);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => onRunningChange?.(running), [running, onRunningChange]);

  /** `start` calls the worker with a plain progress callback (it wraps it in its comlink proxy). */
  const run = (start: (onProgress: (progress: Progress) => void) => Promise<Result>) => {
    setRunning(true);
    setError(null);
    setProgress(null);
    setResult(null);
    start((p) => setProgress(p))
      .then(
        (next) => setResult(next),
        (failure: unknown) => setError(errorMessage(failure)),
      )
      .finally(() => setRunning(false));
  };

  const stop = () => void getEngine().stop();

  return { result, running, progress, error, run, stop };
}
