import type { RunResult } from '../worker/api';
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
  };
}

/** Metrics of the last answer, or of both runs of the last comparison (full cache first). */
export function MetricsView({ runs }: { runs: RunResult[] }) {
  return (
    <section className="panel metrics-panel scroll-x" aria-labelledby="metrics-heading" data-testid="metrics-panel">
      <h2 id="metrics-heading">Metrics</h2>
      <MetricsPanel runs={runs.map(toRunMetrics)} />
      {runs.length > 0 && (
        <p className="muted small">
          KV cache = bytes the GPU allocator counted under “kv” during the run (room for every token it may generate); the chart shows
          the bytes holding tokens after each decode step. Times are wall clock in the worker.
        </p>
      )}
    </section>
  );
}
