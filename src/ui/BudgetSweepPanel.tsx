/**
 * "Budget sweep": the question about the conversation's pictures with the full cache and with each chosen policy x
 * budget, and how far each answer drifts from the full cache's — top-1 agreement (and mean KL) against KV bytes, one
 * line per policy with the full cache as the reference point, and the table beneath. The worker runs it as one job
 * (one prefill for the whole sweep); Stop keeps the rows finished. Weights q8 / q4 (of a bf16 model): the rows run on
 * a copy of the model in that format, made for the sweep and freed after it, against the bf16 full-cache answer.
 */
import { useState, type FormEvent } from 'react';
import { Legend, Line, Tooltip, XAxis, YAxis } from 'recharts';
import { parseBudgetList, policyTable, sweepPolicies, type BudgetPolicy, type FidelityRow, type FidelitySweepResult, type ModelSummary, type WeightFormat } from '../worker/api';
import { errorMessage } from '../errors';
import { palette } from './BenchmarkPanel';
import { formatBytes } from './format';
import { useBudgetSweep } from './hooks/useBudgetSweep';
import { LineChartFrame } from './views/LineChartFrame';
import { NeedsModel } from './NeedsModel';
import { weightFormatChoices, weightFormatOptionText } from './weight-format-choices';
import './views/views.css';

export interface BudgetSweepPanelProps {
  /** Without a model the panel says where to start instead of showing its form. */
  modelLoaded: boolean;
  /** The loaded model's weights (format and each format's bytes): the Weights choice offers q8 / q4 of a bf16 model. */
  loadedWeights: ModelSummary['weights'];
  /** The policy controls' window, ratio and token limit. */
  window: number;
  ratio: number;
  maxNewTokens: number;
  /** Why a sweep cannot start now (no model, another job), or null. */
  blockedReason: string | null;
  /** Called when a sweep starts and ends (the chat waits meanwhile). */
  onRunningChange?: (running: boolean) => void;
}

const fullLabel = policyTable.full.label;

/** A point of a KV-bytes chart: one series (a policy, or the full cache) at one KV size. */
export interface BytesPoint {
  label: string;
  bytes: number;
  y: number;
}

/** One chart row per KV size (log2 bytes) with a column per series: recharts' data shape. */
export function bytesChartRows(points: readonly BytesPoint[]): { rows: Record<string, number>[]; labels: string[] } {
  const byX = new Map<number, Record<string, number>>();
  for (const { label, bytes, y } of points) {
    const x = Math.log2(bytes);
    const row = byX.get(x) ?? { x };
    row[label] = y;
    byX.set(x, row);
  }
  return { rows: [...byX.values()].sort((a, b) => a.x - b.x), labels: [...new Set(points.map((p) => p.label))] };
}

/** True when the rows ran on other weights than the reference (a q8 / q4 copy against the bf16 full cache). */
function otherWeights(result: FidelitySweepResult): boolean {
  return result.rows.some((row) => row.weights !== result.reference.weights);
}

/** A row's series: its policy's label, after its weight format when the sweep compares formats ("q4 SparseMM"). */
export function rowLabel(result: FidelitySweepResult, row: Pick<FidelityRow, 'weights' | 'policy'>): string {
  const label = policyTable[row.policy].label;
  return otherWeights(result) ? `${row.weights} ${label}` : label;
}

/** The sweep's points: the full cache (agreement 1, KL 0 at its own size), then each row under its series' label. */
export function sweepChartRows(result: FidelitySweepResult, value: 'top1Agreement' | 'meanKl'): { rows: Record<string, number>[]; labels: string[] } {
  return bytesChartRows([
    { label: rowLabel(result, { weights: result.reference.weights, policy: 'full' }), bytes: result.reference.kvBytes, y: value === 'top1Agreement' ? 1 : 0 },
    ...result.rows.map((row) => ({ label: rowLabel(result, row), bytes: row.kvBytes, y: row[value] })),
  ]);
}

/** Lines against KV bytes on a log2 axis, one per series. */
export function BytesChart({ data, title, testId, unitMax }: { data: ReturnType<typeof bytesChartRows>; title: string; testId: string; unitMax: boolean }) {
  const { rows, labels } = data;
  return (
    <LineChartFrame title={title} height={240} data={rows} testId={testId}>
      <XAxis dataKey="x" type="number" domain={['dataMin - 0.2', 'dataMax + 0.2']} tickFormatter={(v: number) => formatBytes(2 ** v)}
        label={{ value: 'KV cache', position: 'insideBottom', offset: -12 }} />
      <YAxis width={56} domain={unitMax ? [0, 1] : [0, 'auto']} />
      <Tooltip formatter={(v) => Number(v).toFixed(3)} labelFormatter={(x) => formatBytes(2 ** Number(x))} />
      <Legend verticalAlign="top" />
      {labels.map((label, i) => (
        <Line key={label} type="monotone" dataKey={label} name={label} stroke={palette[i % palette.length]} strokeWidth={2} isAnimationActive={false} connectNulls />
      ))}
    </LineChartFrame>
  );
}

/** The policy checkboxes and the budget list of a sweep (also the OCR accuracy form). */
export function SweepChoices({ policies, onToggle, budgetText, onBudgetText, disabled }: {
  policies: BudgetPolicy[];
  onToggle: (policy: BudgetPolicy) => void;
  budgetText: string;
  onBudgetText: (text: string) => void;
  disabled: boolean;
}) {
  return (
    <>
      <fieldset className="settings-fieldset" disabled={disabled}>
        <legend>Policies</legend>
        {sweepPolicies.map((policy) => (
          <label key={policy}>
            <input type="checkbox" checked={policies.includes(policy)} onChange={() => onToggle(policy)} /> {policyTable[policy].label}
          </label>
        ))}
      </fieldset>
      <label>
        Budgets (tokens per KV head) <input type="text" value={budgetText} onChange={(e) => onBudgetText(e.target.value)} disabled={disabled} data-testid="sweep-budgets" />
      </label>
    </>
  );
}

/** Toggles `item` in a list (for the policy checkboxes). */
export function toggled<T>(list: readonly T[], item: T): T[] {
  return list.includes(item) ? list.filter((x) => x !== item) : [...list, item];
}

function SweepTable({ result }: { result: FidelitySweepResult }) {
  const weightsColumn = otherWeights(result);
  return (
    <table className="vw-table" data-testid="sweep-table">
      <thead>
        <tr>{weightsColumn && <th>Weights</th>}<th>Policy</th><th>Budget</th><th>KV cache</th><th>Top-1 agreement</th><th>Mean KL</th><th>Max KL</th><th>First difference</th></tr>
      </thead>
      <tbody>
        <tr data-testid="sweep-row" data-policy="full" data-weights={result.reference.weights} data-reference="">
          {weightsColumn && <td>{result.reference.weights}</td>}
          <td>{fullLabel}</td><td>–</td><td>{formatBytes(result.reference.kvBytes)}</td><td>reference</td><td>0</td><td>0</td><td>–</td>
        </tr>
        {result.rows.map((row) => (
          <tr key={`${row.weights} ${row.policy} ${row.budget}`} data-testid="sweep-row" data-policy={row.policy} data-budget={row.budget ?? undefined}
            data-weights={row.weights} data-agreement={row.top1Agreement}>
            {weightsColumn && <td>{row.weights}</td>}
            <td>{policyTable[row.policy].label}</td>
            <td>{row.budget ?? '–'}</td>
            <td>{formatBytes(row.kvBytes)}</td>
            <td>{row.agreedSteps}/{row.steps}</td>
            <td>{row.meanKl.toFixed(4)}</td>
            <td>{row.maxKl.toFixed(4)}</td>
            <td>{row.firstDifference === null ? 'none' : `token ${row.firstDifference}`}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function BudgetSweepPanel(props: BudgetSweepPanelProps) {
  return (
    <section className="panel scroll-x" aria-labelledby="sweep-heading" data-testid="sweep-section">
      <h2 id="sweep-heading">Budget sweep</h2>
      {props.modelLoaded ? <BudgetSweep {...props} /> : <NeedsModel>Load a model to sweep KV budgets on the conversation's pictures.</NeedsModel>}
    </section>
  );
}

/** The Weights choice: the loaded format, and q8 / q4 copies of a bf16 model (with the GPU memory each copy adds). */
function WeightsChoice({ loaded, value, onChange, disabled }: {
  loaded: NonNullable<ModelSummary['weights']>;
  value: WeightFormat;
  onChange: (format: WeightFormat) => void;
  disabled: boolean;
}) {
  const offered = weightFormatChoices.filter(({ format }) => format === loaded.format || loaded.format === 'bf16');
  return (
    <label>
      Weights{' '}
      <select value={value} onChange={(e) => onChange(e.target.value as WeightFormat)} disabled={disabled} data-testid="sweep-weights">
        {offered.map(({ format, label }) => (
          <option key={format} value={format}>
            {format === loaded.format ? `${label}, loaded` : `${weightFormatOptionText(label, loaded.bytesByFormat[format])} more, for the sweep`}
          </option>
        ))}
      </select>
    </label>
  );
}

function BudgetSweep({ loadedWeights, window, ratio, maxNewTokens, blockedReason, onRunningChange }: BudgetSweepPanelProps) {
  const sweep = useBudgetSweep(onRunningChange);
  const [question, setQuestion] = useState('Describe the image.');
  const [policies, setPolicies] = useState<BudgetPolicy[]>(['sparsemm', 'snapkv']);
  const [budgetText, setBudgetText] = useState('64, 128, 256, 512');
  const [formError, setFormError] = useState<string | null>(null);
  const [chosenWeights, setWeights] = useState<WeightFormat | null>(null);
  const { result, running, progress } = sweep;
  const loadedFormat = loadedWeights?.format ?? 'bf16';
  // A choice the model loaded since no longer offers falls back to the loaded format.
  const weights = chosenWeights !== null && (loadedFormat === 'bf16' || chosenWeights === loadedFormat) ? chosenWeights : loadedFormat;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    setFormError(null);
    try {
      if (question.trim() === '') throw new Error('Type a question first.');
      if (policies.length === 0) throw new Error('Pick at least one policy to compare with the full cache.');
      const budgets = parseBudgetList(budgetText, window);
      const chosen = sweepPolicies.filter((p) => policies.includes(p));
      // Other weights: the copy's own full cache is a row too ("q4 full" against the bf16 full cache).
      const other = weights !== loadedFormat;
      sweep.run(question, { policies: other ? ['full', ...chosen] : chosen, budgets, window, ratio, maxNewTokens, ...(other ? { weightFormat: weights } : {}) });
    } catch (error) {
      setFormError(errorMessage(error));
    }
  };
  const error = formError ?? sweep.error;

  return (
    <>
      <form onSubmit={submit} className="vw-form">
        <label>
          Question <input type="text" value={question} onChange={(e) => setQuestion(e.target.value)} disabled={running} data-testid="sweep-question" />
        </label>
        {loadedWeights && <WeightsChoice loaded={loadedWeights} value={weights} onChange={setWeights} disabled={running} />}
        <SweepChoices policies={policies} onToggle={(p) => setPolicies((list) => toggled(list, p))} budgetText={budgetText} onBudgetText={setBudgetText} disabled={running} />
        {running ? (
          <button type="button" onClick={sweep.stop}>Stop</button>
        ) : (
          <button type="submit" disabled={blockedReason !== null} title={blockedReason ?? undefined}>Run sweep</button>
        )}
      </form>
      {running && (
        <p className="small" data-testid="sweep-progress">
          <progress value={progress?.done ?? 0} max={progress?.total ?? 1} />{' '}
          {progress?.step ?? (progress ? `${progress.done} / ${progress.total}` : 'starting…')}
        </p>
      )}
      {error && <p className="status error" role="alert" data-testid="sweep-error">{error}</p>}
      {result && (
        <>
          {result.stoppedBy === 'cancel' && <p className="muted small">Stopped: the rows below are the ones finished.</p>}
          {result.warnings.map((warning) => <p key={warning} className="status warning small" role="status">{warning}</p>)}
          <p className="small" data-testid="sweep-reference">
            Full-cache answer ({otherWeights(result) ? `${result.reference.weights} weights, ` : ''}{result.reference.tokenIds.length} tokens): {result.reference.text}
          </p>
          {result.rows.length > 0 && (
            <>
              <BytesChart data={sweepChartRows(result, 'top1Agreement')} title="Top-1 agreement with the full cache" testId="sweep-chart-top1Agreement" unitMax />
              <BytesChart data={sweepChartRows(result, 'meanKl')} title="Mean KL(full || policy)" testId="sweep-chart-meanKl" unitMax={false} />
            </>
          )}
          <SweepTable result={result} />
        </>
      )}
    </>
  );
}
