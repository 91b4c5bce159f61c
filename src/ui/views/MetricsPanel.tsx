import { Legend, Line, Tooltip, XAxis, YAxis } from 'recharts';
import { formatBytes, formatMs } from './format';
import { LineChartFrame } from './LineChartFrame';
import type { CompareMeasurements } from '../../worker/api';
import { comparisonRows, metricRows, stepChartRows } from './metrics-model';
import type { RunMetrics } from './types';
import './views.css';

export interface MetricsPanelProps {
  /** One run, or two to compare (the ratios read "second vs first", the column named after both runs). */
  runs: RunMetrics[];
  /** Compare's measurements of the two runs: the table then compares only what the policy changes. */
  comparison?: CompareMeasurements | null;
}

// Okabe-Ito blue and vermillion: distinct for the common colour-vision deficiencies; run 2 is also dashed.
const runColours = ['#0072b2', '#d55e00'];
const runDashes = [undefined, '6 3'];

interface StepChartProps {
  runs: RunMetrics[];
  metric: 'kvBytes' | 'decodeMs';
  title: string;
  format: (value: number) => string;
}

function StepChart({ runs, metric, title, format }: StepChartProps) {
  const data = stepChartRows(runs);
  return (
    <LineChartFrame title={title} height={220} data={data}>
      <XAxis dataKey="step" type="number" domain={['dataMin', 'dataMax']} label={{ value: 'Tokens generated', position: 'insideBottom', offset: -12 }} />
      <YAxis tickFormatter={(value: number) => format(value)} width={72} />
      <Tooltip formatter={(value) => format(Number(value))} labelFormatter={(step) => `Token ${String(step)}`} />
      <Legend verticalAlign="top" />
      {runs.slice(0, 2).map((run, runIndex) => (
        <Line
          key={runIndex}
          type="monotone"
          dataKey={`${metric}${runIndex}`}
          name={run.label}
          stroke={runColours[runIndex]}
          strokeDasharray={runDashes[runIndex]}
          strokeWidth={2}
          dot={false}
          connectNulls
          isAnimationActive={false}
        />
      ))}
    </LineChartFrame>
  );
}

/** Side-by-side numbers of one or two runs, the second-vs-first ratios, and per-token charts. */
export function MetricsPanel({ runs, comparison }: MetricsPanelProps) {
  if (runs.length === 0) {
    return (
      <div className="vw-empty" role="status">
        No runs yet — generate an answer to see its metrics.
      </div>
    );
  }
  const shown = runs.slice(0, 2);
  const comparing = shown.length === 2;
  const rows = comparing && comparison ? comparisonRows([shown[0], shown[1]], comparison) : metricRows(shown);
  return (
    <section className="vw-metrics" aria-label="Run metrics">
      <table className="vw-table vw-metrics-table">
        <caption>{comparing ? `${shown[1].label} compared with ${shown[0].label}` : shown[0].label}</caption>
        <thead>
          <tr>
            <th scope="col">Metric</th>
            {shown.map((run, i) => (
              <th key={i} scope="col">
                {run.label}
              </th>
            ))}
            {comparing && <th scope="col">{`${shown[1].label} vs ${shown[0].label}`}</th>}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.name} data-shared={row.shared ? 'true' : undefined}>
              <th scope="row">{row.name}</th>
              {row.shared ? (
                <td colSpan={shown.length} className="vw-shared">
                  {row.values[0]}
                </td>
              ) : (
                row.values.map((value, i) => <td key={i}>{value}</td>)
              )}
              {comparing && <td className="vw-ratio">{row.ratio}</td>}
            </tr>
          ))}
        </tbody>
      </table>
      <div className="vw-chart-pair">
        <StepChart runs={shown} metric="kvBytes" title="KV cache size vs tokens generated" format={formatBytes} />
        <StepChart runs={shown} metric="decodeMs" title="Decode time per token vs tokens generated" format={formatMs} />
      </div>
    </section>
  );
}
