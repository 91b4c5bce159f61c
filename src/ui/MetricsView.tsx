import type { CompareMeasurements, RunResult } from '../worker/api';
import { fidelitySummary } from './ComparePanel';
import { describePolicy, policyLabel } from './PolicyControls';
import { MetricsPanel } from './views/MetricsPanel';
import type { RunMetrics } from './views/types';

/** The worker's measurements of one run in the shape the metrics view takes. */
export function toRunMetrics(result: RunResult): RunMetrics {
  return {
    ...result.metrics,
    label: describePolicy(result.options),
    policy: policyLabel(result.policy),
    budget: result.policy === 'full' ? undefined : result.options.budget,
    ...(result.fidelity ? { fidelity: fidelitySummary(result.fidelity) } : {}),
  };
}

/** Metrics of the last answer, or of both runs of the last comparison (full cache first). */
export function MetricsView({ runs, comparison = null }: { runs: RunResult[]; comparison?: CompareMeasurements | null }) {
  const compared = comparison !== null && runs.length === 2;
  return (
    <section className="panel metrics-panel scroll-x" aria-labelledby="metrics-heading" data-testid="metrics-panel">
      <h2 id="metrics-heading">Metrics</h2>
      <MetricsPanel runs={runs.map(toRunMetrics)} comparison={comparison} />
      {runs.length > 0 && !compared && (
        <p className="muted small">
          KV cache = bytes the GPU allocator counted under “kv” during the run (room for every token it may generate); the chart shows
          the bytes holding tokens after each decode step. Times are wall clock in the worker.
        </p>
      )}
      {compared && (
        <p className="muted small">
          KV cache = the bytes the GPU allocator counted for each run's own cache (room for every token it may generate); GPU memory =
          the allocator's total while both caches were alive, less the other run's cache. Decode and prefill: median (IQR) of the
          steps the two caches ran side by side — {comparison.timing === 'gpu-timestamps' ? 'GPU timestamps' : 'wall clock'} for
          decode, wall clock for the prefill; a gap inside the spread reads “no measurable difference”.
        </p>
      )}
    </section>
  );
}
