/**
 * "Accuracy on OCR probes" (in the Benchmark tab): synthetic OCR probes drawn in the worker, read by the model with
 * the full cache and each policy x budget, every answer scored against the probe's text — ANLS (DocVQA's metric) and
 * word accuracy. The table and a chart of ANLS against KV bytes; with random weights the scores are 0.
 */
import { useState, type FormEvent } from 'react';
import { parseBudgetList, policyTable, sweepPolicies, type BudgetPolicy, type OcrEvalProgress, type OcrEvalResult } from '../worker/api';
import { errorMessage } from '../errors';
import { BytesChart, bytesChartRows, SweepChoices, toggled } from './BudgetSweepPanel';
import { getEngine, ocrProgressProxy } from './engine-client';
import { formatBytes } from './format';
import { useEngineJob } from './hooks/useEngineJob';

export interface OcrAccuracyPanelProps {
  window: number;
  ratio: number;
  /** Why an evaluation cannot start now, or null. */
  blockedReason: string | null;
  /** Called when an evaluation starts and ends (the chat waits meanwhile). */
  onRunningChange?: (running: boolean) => void;
}

const rowLabel = (row: OcrEvalResult['rows'][number]): string => policyTable[row.policy].label;

export function OcrAccuracyPanel({ window, ratio, blockedReason, onRunningChange }: OcrAccuracyPanelProps) {
  const job = useEngineJob<OcrEvalProgress, OcrEvalResult>(onRunningChange);
  const [samples, setSamples] = useState(2);
  const [maxNewTokens, setMaxNewTokens] = useState(32);
  const [policies, setPolicies] = useState<BudgetPolicy[]>(['sparsemm', 'snapkv']);
  const [budgetText, setBudgetText] = useState('64, 256');
  const [formError, setFormError] = useState<string | null>(null);
  const { result, running, progress } = job;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    setFormError(null);
    try {
      if (policies.length === 0) throw new Error('Pick at least one policy to compare with the full cache.');
      const budgets = parseBudgetList(budgetText, window);
      const request = { policies: sweepPolicies.filter((p) => policies.includes(p)), budgets, window, ratio, maxNewTokens, samples, seed: 0 };
      job.run((onProgress) => getEngine().ocrEval(request, ocrProgressProxy(onProgress)));
    } catch (error) {
      setFormError(errorMessage(error));
    }
  };
  const error = formError ?? job.error;

  return (
    <div className="ocr-accuracy" data-testid="ocr-section">
      <h3>Accuracy on OCR probes</h3>
      <form onSubmit={submit} className="vw-form">
        <label>
          Probes <input type="number" min={1} max={64} value={samples} onChange={(e) => setSamples(Math.max(1, Number(e.target.value) || 1))} disabled={running} />
        </label>
        <label>
          Max new tokens <input type="number" min={1} max={256} value={maxNewTokens} onChange={(e) => setMaxNewTokens(Math.max(1, Number(e.target.value) || 1))} disabled={running} />
        </label>
        <SweepChoices policies={policies} onToggle={(p) => setPolicies((list) => toggled(list, p))} budgetText={budgetText} onBudgetText={setBudgetText} disabled={running} />
        {running ? (
          <button type="button" onClick={job.stop}>Stop</button>
        ) : (
          <button type="submit" disabled={blockedReason !== null} title={blockedReason ?? undefined}>Run OCR accuracy</button>
        )}
      </form>
      {running && (
        <p className="small" data-testid="ocr-progress">
          <progress value={progress?.done ?? 0} max={progress?.total ?? samples} /> {progress ? `${progress.done} / ${progress.total} probes` : 'starting…'}
        </p>
      )}
      {error && <p className="status error" role="alert">{error}</p>}
      {result && (
        <>
          {result.stoppedBy === 'cancel' && <p className="muted small">Stopped: the means cover the probes finished.</p>}
          {result.rows.length > 0 && (
            <BytesChart data={bytesChartRows(result.rows.map((row) => ({ label: rowLabel(row), bytes: row.meanKvBytes, y: row.anls })))} title="ANLS against KV bytes" testId="ocr-chart" unitMax />
          )}
          <table className="vw-table" data-testid="ocr-table">
            <thead>
              <tr><th>Policy</th><th>Budget</th><th>KV cache (mean)</th><th>ANLS</th><th>Word accuracy</th><th>Top-1 agreement</th><th>Probes</th></tr>
            </thead>
            <tbody>
              {result.rows.map((row) => (
                <tr key={`${row.policy} ${row.budget}`} data-testid="ocr-row" data-policy={row.policy}>
                  <td>{rowLabel(row)}</td><td>{row.budget ?? '–'}</td><td>{formatBytes(row.meanKvBytes)}</td><td>{row.anls.toFixed(3)}</td>
                  <td>{row.wordAccuracy.toFixed(3)}</td><td>{row.top1Agreement.toFixed(3)}</td><td>{row.samples}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </div>
  );
}
