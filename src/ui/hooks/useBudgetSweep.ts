import type { FidelitySweepProgress, FidelitySweepRequest, FidelitySweepResult } from '../../worker/api';
import { getEngine, sweepProgressProxy } from '../engine-client';
import { useEngineJob } from './useEngineJob';

/** The Budget sweep panel's run: progress (rows as they finish), the result, or the error. */
export function useBudgetSweep(onRunningChange?: (running: boolean) => void) {
  const job = useEngineJob<FidelitySweepProgress, FidelitySweepResult>(onRunningChange);
  const run = (question: string, request: FidelitySweepRequest) =>
    job.run((onProgress) => getEngine().fidelitySweep(question, request, sweepProgressProxy(onProgress)));
  return { ...job, run };
}
