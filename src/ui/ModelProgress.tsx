import type { FileProgress, ModelLoadStep, ModelSummary } from '../worker/api';
import { formatBytes, formatCount, formatRate } from './format';

/** Per-file progress bars of a load (bytes, speed, cache), its GPU steps, and the summary of the loaded model. */

export function loadStepText(step: ModelLoadStep | null): string {
  if (!step) return 'Loading…';
  if (step.step === 'uploading weights') return 'Uploading the weights to the GPU…';
  return `Compiling kernels (${step.done} / ${step.total})…`;
}

export function ProgressList({ progress }: { progress: FileProgress[] }) {
  return (
    <ul className="progress-list" aria-label="Files" data-testid="progress-list">
      {progress.map((p) => {
        const percent = p.totalBytes ? Math.min(100, Math.round((p.loadedBytes / p.totalBytes) * 100)) : p.done ? 100 : null;
        return (
          <li key={p.file} data-file={p.file} data-done={p.done ? 'true' : 'false'} data-percent={percent ?? ''}>
            <div className="progress-head">
              <span className="file-name">{p.file}</span>
              <span className="progress-numbers">
                {percent !== null && <span className="percent">{percent}%</span>}{' '}
                {formatBytes(p.loadedBytes)}
                {p.totalBytes !== null && ` / ${formatBytes(p.totalBytes)}`}
                {p.fromCache ? ' · from cache' : p.bytesPerSecond > 0 && !p.done ? ` · ${formatRate(p.bytesPerSecond)}` : ''}
              </span>
            </div>
            <progress
              aria-label={`${p.file} progress`}
              // Unknown size: an indeterminate bar (no value) until the file is done.
              max={p.totalBytes ?? 1}
              value={p.totalBytes !== null ? p.loadedBytes : p.done ? 1 : undefined}
            />
          </li>
        );
      })}
    </ul>
  );
}

export function SummaryView({ summary }: { summary: ModelSummary }) {
  const { text, vision } = summary;
  return (
    <div className="summary" data-testid="model-summary">
      <p className={summary.fromCache ? 'status cache' : 'status ok'} data-testid="load-origin">
        {summary.fromCache ? 'Loaded from the browser cache (no download).' : 'Downloaded and saved to the browser cache.'}
      </p>
      {summary.cacheWarning && (
        <p role="status" className="status warning">
          {summary.cacheWarning}
        </p>
      )}
      <h3>{summary.name}</h3>
      <dl className="facts">
        <dt>Architecture</dt>
        <dd>{summary.modelType}</dd>
        <dt>Text layers</dt>
        <dd data-testid="summary-layers">{text.layers}</dd>
        <dt>Query heads</dt>
        <dd>{text.heads}</dd>
        <dt>KV heads</dt>
        <dd>{text.kvHeads}</dd>
        <dt>head_dim</dt>
        <dd>{text.headDim}</dd>
        <dt>Hidden size</dt>
        <dd>{text.hiddenSize}</dd>
        <dt>Vision encoder</dt>
        <dd>
          {vision.layers} layers, {vision.heads} heads
        </dd>
        <dt>Vision tiles</dt>
        <dd>
          {vision.tileSize} px tiles (patch {vision.patchSize}), {vision.tokensPerTile} tokens each
          {vision.maxTiles !== null && `, up to ${vision.maxTiles} per image`}
        </dd>
        <dt>Weights</dt>
        <dd title={`${formatCount(summary.weightBytes)} bytes`}>
          {formatBytes(summary.weightBytes)} in {formatCount(summary.tensorCount)} {summary.tensorCount === 1 ? 'tensor' : 'tensors'}
        </dd>
        {summary.weights && (
          <>
            <dt>On the GPU</dt>
            <dd data-testid="gpu-weights" title={summary.weights.note ?? undefined}>
              {summary.weights.format}, {formatBytes(summary.weights.gpuBytes)}
              {summary.weights.format !== 'bf16' && ` (bf16: ${formatBytes(summary.weights.bytesByFormat.bf16)})`}
              {summary.weights.note && ` — ${summary.weights.note}`}
            </dd>
          </>
        )}
        <dt>All files</dt>
        <dd>
          {formatBytes(summary.totalBytes)} in {summary.files.length} files
        </dd>
      </dl>
    </div>
  );
}
