/**
 * The "Benchmark" tab: choose prompt lengths, policies and step counts, run, and read the table and charts of decode
 * ms/token and KV MiB against prompt length. Presentational only: the parent passes the report and progress it got
 * from the worker (which calls runBenchmark on the loaded model) and receives the chosen settings through onRun.
 */
import { useState, type FormEvent } from 'react';
import { Legend, Line, Tooltip, XAxis, YAxis } from 'recharts';
import type { BenchmarkPolicySpec, BenchmarkProgress, BenchmarkReport, BenchmarkRequestData, BenchmarkRun } from '../worker/api';
import { LineChartFrame } from './views/LineChartFrame';
import './views/views.css';

/** What the user asks for (the worker API's request; the worker adds the model, its head scores and the GPU context). */
export type BenchmarkRequest = BenchmarkRequestData;

export interface BenchmarkPanelProps {
  report: BenchmarkReport | null;
  running: boolean;
  progress: BenchmarkProgress | null;
  onRun: (request: BenchmarkRequest) => void;
  /** Shown when the last run failed. */
  error?: string | null;
}

const lengthChoices = [1024, 2048, 4096, 8192];
const policyChoices: BenchmarkPolicySpec[] = [
  { policy: 'sparsemm', budget: 64 },
  { policy: 'sparsemm', budget: 256 },
  { policy: 'sparsemm', budget: 1024 },
  { policy: 'snapkv', budget: 256 },
  { policy: 'pyramidkv', budget: 256 },
  { policy: 'adakv', budget: 256 },
];
// Okabe-Ito, as in the metrics view: distinguishable with the common colour-vision deficiencies.
export const palette = ['#000000', '#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#f0e442'];

export function runLabel(run: Pick<BenchmarkRun, 'policy' | 'budget'>): string {
  return run.policy === 'full' ? 'full' : `${run.policy} ${run.budget}`;
}

function policyKey(spec: BenchmarkPolicySpec): string {
  return `${spec.policy}:${spec.budget}`;
}

/** One chart row per prompt length with one column per policy label (recharts' data shape). */
export function benchmarkChartRows(runs: BenchmarkRun[], value: (run: BenchmarkRun) => number): { rows: Record<string, number>[]; labels: string[] } {
  const labels: string[] = [];
  const byLength = new Map<number, Record<string, number>>();
  for (const run of runs) {
    const y = value(run);
    if (!Number.isFinite(y)) continue;
    const label = runLabel(run);
    if (!labels.includes(label)) labels.push(label);
    // log2 of the length as the x value: doubling lengths (1K, 2K, 4K, 8K) come out evenly spaced.
    const row = byLength.get(run.promptLen) ?? { promptLen: run.promptLen, lengthLog2: Math.log2(run.promptLen) };
    row[label] = y;
    byLength.set(run.promptLen, row);
  }
  return { rows: [...byLength.values()].sort((a, b) => a.promptLen - b.promptLen), labels };
}

function fmt(value: number | null, digits: number): string {
  return value === null || !Number.isFinite(value) ? '–' : value.toFixed(digits);
}

interface LengthChartProps {
  runs: BenchmarkRun[];
  title: string;
  unit: string;
  value: (run: BenchmarkRun) => number;
}

function LengthChart({ runs, title, unit, value }: LengthChartProps) {
  const { rows, labels } = benchmarkChartRows(runs, value);
  return (
    <LineChartFrame title={title} height={240} data={rows}>
      <XAxis
        dataKey="lengthLog2"
        type="number"
        domain={['dataMin', 'dataMax']}
        ticks={rows.map((r) => r.lengthLog2)}
        tickFormatter={(v: number) => String(Math.round(2 ** v))}
        label={{ value: 'Prompt length (tokens)', position: 'insideBottom', offset: -12 }} />
      <YAxis width={72} label={{ value: unit, angle: -90, position: 'insideLeft' }} />
      <Tooltip formatter={(v) => `${Number(v).toFixed(2)} ${unit}`} labelFormatter={(log2) => `${Math.round(2 ** Number(log2))} tokens`} />
      <Legend verticalAlign="top" />
      {labels.map((label, i) => (
        <Line key={label} type="monotone" dataKey={label} name={label} stroke={palette[i % palette.length]} strokeWidth={2} isAnimationActive={false} connectNulls />
      ))}
    </LineChartFrame>
  );
}

export function BenchmarkPanel({ report, running, progress, onRun, error }: BenchmarkPanelProps) {
  const [lengths, setLengths] = useState<number[]>([1024, 2048]);
  const [policies, setPolicies] = useState<string[]>(['sparsemm:256']);
  const [decodeSteps, setDecodeSteps] = useState(5);
  const [warmupSteps, setWarmupSteps] = useState(1);
  const [ratio, setRatio] = useState(0.1);
  const [windowSize, setWindowSize] = useState(32);

  const toggle = <T,>(list: T[], item: T): T[] => (list.includes(item) ? list.filter((x) => x !== item) : [...list, item]);
  const canRun = !running && lengths.length > 0 && decodeSteps >= 1;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!canRun) return;
    onRun({
      promptLengths: [...lengths].sort((a, b) => a - b),
      policies: policyChoices.filter((p) => policies.includes(policyKey(p))),
      decodeSteps,
      warmupSteps,
      ratio,
      window: windowSize,
    });
  };

  return (
    <div className="benchmark-panel" data-testid="benchmark-panel">
      <form onSubmit={submit} aria-label="Benchmark settings">
        <fieldset className="settings-fieldset" disabled={running}>
          <legend>Prompt lengths (tokens)</legend>
          {lengthChoices.map((n) => (
            <label key={n}>
              <input type="checkbox" checked={lengths.includes(n)} onChange={() => setLengths(toggle(lengths, n))} /> {n / 1024}K
            </label>
          ))}
        </fieldset>
        <fieldset className="settings-fieldset" disabled={running}>
          <legend>Policies (budget = tokens per head)</legend>
          <label>
            <input type="checkbox" checked disabled aria-describedby="bench-full-note" /> full cache
          </label>
          <span id="bench-full-note" className="muted"> (always run: ratios are against it)</span>
          {policyChoices.map((p) => (
            <label key={policyKey(p)}>
              <input type="checkbox" checked={policies.includes(policyKey(p))} onChange={() => setPolicies(toggle(policies, policyKey(p)))} /> {runLabel(p)}
            </label>
          ))}
        </fieldset>
        <fieldset className="settings-fieldset" disabled={running}>
          <legend>Measurement</legend>
          <label>
            Decode steps (median){' '}
            <input type="number" min={1} max={100} value={decodeSteps} onChange={(e) => setDecodeSteps(Math.max(1, Number(e.target.value) || 1))} />
          </label>{' '}
          <label>
            Warm-up steps <input type="number" min={0} max={20} value={warmupSteps} onChange={(e) => setWarmupSteps(Math.max(0, Number(e.target.value) || 0))} />
          </label>{' '}
          <label>
            SparseMM ratio{' '}
            <input type="number" min={0} max={1} step={0.05} value={ratio} onChange={(e) => setRatio(Math.min(1, Math.max(0, Number(e.target.value) || 0)))} />
          </label>{' '}
          <label>
            Window <input type="number" min={1} max={256} value={windowSize} onChange={(e) => setWindowSize(Math.max(1, Number(e.target.value) || 1))} />
          </label>
        </fieldset>
        <button type="submit" disabled={!canRun}>
          {running ? 'Running…' : 'Run benchmark'}
        </button>
      </form>

      {running && progress && (
        <div className="benchmark-progress">
          <label htmlFor="benchmark-progress-bar">Benchmark progress</label>{' '}
          <progress id="benchmark-progress-bar" max={progress.total} value={progress.completed} />{' '}
          <span role="status" aria-live="polite">{progress.message}</span>
        </div>
      )}
      {error && (
        <p role="alert" className="error" data-testid="benchmark-error">
          {error}
        </p>
      )}

      {report ? (
        <section aria-label="Benchmark results" data-testid="benchmark-results">
          <p className="muted">
            {report.machine} — {[report.adapter.vendor, report.adapter.architecture, report.adapter.description].filter(Boolean).join(' / ')};{' '}
            {report.timing === 'gpu-timestamps' ? 'GPU timestamps' : 'wall clock'}, median of {report.settings.decodeSteps} steps.
          </p>
          <p className="muted" data-testid="benchmark-note">{report.note}</p>
          <table className="vw-table">
            <caption>Decode speed and KV memory per policy; ratios against the full cache at the same prompt length</caption>
            <thead>
              <tr>
                {['Prompt', 'Policy', 'Prefill ms', 'Decode ms/token', 'KV MiB', 'GPU MiB', 'KV / full', 'Speedup', 'Bytes bound', 'GB/s'].map((h) => (
                  <th key={h} scope="col">{h}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {report.runs.map((run) => (
                <tr key={`${run.promptLen}-${runLabel(run)}`}>
                  <th scope="row">{run.promptLen}</th>
                  <td>{runLabel(run)}{run.policy !== 'full' && !run.compressed ? ' (not compressed)' : ''}</td>
                  <td>{fmt(run.prefillMs, 0)}</td>
                  <td>{fmt(run.decodeMsPerToken, 2)}</td>
                  <td>{fmt(run.kvBytes / 2 ** 20, 2)}</td>
                  <td>{fmt(run.totalGpuBytes / 2 ** 20, 1)}</td>
                  <td>{fmt(run.kvRatioVsFull, 3)}</td>
                  <td>{fmt(run.decodeSpeedupVsFull, 2)}×</td>
                  <td>{fmt(run.bytesBoundSpeedupVsFull, 2)}×</td>
                  <td>{fmt(run.achievedGBps, 2)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div className="vw-chart-pair">
            <LengthChart runs={report.runs} title="Decode time per token vs prompt length" unit="ms" value={(r) => r.decodeMsPerToken} />
            <LengthChart runs={report.runs} title="KV cache vs prompt length" unit="MiB" value={(r) => r.kvBytes / 2 ** 20} />
          </div>
        </section>
      ) : (
        !running && <p className="vw-empty" role="status">No benchmark yet: choose settings and run it on the loaded model.</p>
      )}
    </div>
  );
}
