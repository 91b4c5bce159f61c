import { useState } from 'react';
import type { FidelitySweepProgress, FidelitySweepRequest, FidelitySweepResult } from '../../worker/api';
import { errorMessage } from '../../errors';
import { getEngine, sweepProgressProxy } from '../engine-client';

/** The Budget sweep panel's run: progress (rows as they finish), the result, or the error; Stop goes to the worker. */
export function useBudgetSweep() {
  const [result, setResult] = useState<FidelitySweepResult | null>(null);
  const [running, setRunning] = useState(false);
  const [progress, setProgress] = useState<FidelitySweepProgress | null>(null);
  const [error, setError] = useState<string | null>(null);

  const run = (question: string, request: FidelitySweepRequest) => {
    setRunning(true);
    setError(null);
    setProgress(null);
    setResult(null);
    getEngine()
      .fidelitySweep(question, request, sweepProgressProxy((p) => setProgress(p)))
      .then(
        (next) => setResult(next),
        (failure: unknown) => setError(errorMessage(failure)),
      )
      .finally(() => setRunning(false));
  };

  const stop = () => void getEngine().stop();

  return { result, running, progress, error, run, stop };
}
