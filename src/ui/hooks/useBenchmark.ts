import { useState } from 'react';
import type { BenchmarkProgress, BenchmarkReport } from '../../worker/api';
import { errorMessage } from '../../errors';
import type { BenchmarkRequest } from '../BenchmarkPanel';
import { benchmarkProgressProxy, getEngine } from '../engine-client';

/** The Benchmark tab's run: its progress, its report, or its error. */
export function useBenchmark() {
  const [report, setReport] = useState<BenchmarkReport | null>(null);
  const [running, setRunning] = useState(false);
  const [progress, setProgress] = useState<BenchmarkProgress | null>(null);
  const [error, setError] = useState<string | null>(null);

  const run = (request: BenchmarkRequest) => {
    setRunning(true);
    setError(null);
    setProgress(null);
    getEngine()
      .runBenchmark(request, benchmarkProgressProxy((p) => setProgress(p)))
      .then(
        (next) => setReport(next),
        (failure: unknown) => setError(errorMessage(failure)),
      )
      .finally(() => setRunning(false));
  };

  return { report, running, progress, error, run };
}
