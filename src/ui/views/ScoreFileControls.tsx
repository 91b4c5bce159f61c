import { useId, useRef, type ChangeEvent } from 'react';
import { formatCount } from './format';
import type { SearchProgress } from './types';
import './views.css';

export interface ScoreFileControlsProps {
  /** Starts the visual-head search. */
  onFindVisualHeads: () => void;
  /** True while a search runs: the find button is then disabled and Cancel shown. */
  searching: boolean;
  /** Progress of the running search (probe samples done / total). */
  progress?: SearchProgress;
  onCancel: () => void;
  /**
   * Returns the current scores as JSON text in the official format, or null when there are none.
   * The component wraps it in a Blob URL and downloads it as `exportFileName`.
   */
  onExport: () => string | null;
  /** File name offered for the download (default "visual-head-scores.json"). */
  exportFileName?: string;
  /** Whether there are scores to export. */
  canExport: boolean;
  /** Called with the file the person picked; the parent reads and parses it. */
  onImport: (file: File) => void;
  /** Parse or shape error of the last import, shown verbatim (as text). */
  importError?: string;
  /** Disables every control, e.g. while no model is loaded. */
  disabled?: boolean;
}

/**
 * Browser download of text through a temporary Blob URL. `createUrl`/`revokeUrl` are parameters so a
 * test can watch them; the URL is revoked on the next task, after the click has started the download.
 */
export function downloadText(
  text: string,
  fileName: string,
  createUrl: (blob: Blob) => string = (blob) => URL.createObjectURL(blob),
  revokeUrl: (url: string) => void = (url) => URL.revokeObjectURL(url),
): void {
  const url = createUrl(new Blob([text], { type: 'application/json' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  link.rel = 'noopener';
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => revokeUrl(url), 0);
}

/** Find / cancel the visual-head search, and export or import score files. */
export function ScoreFileControls({
  onFindVisualHeads,
  searching,
  progress,
  onCancel,
  onExport,
  exportFileName = 'visual-head-scores.json',
  canExport,
  onImport,
  importError,
  disabled = false,
}: ScoreFileControlsProps) {
  const fileInputId = useId();
  const progressId = useId();
  const errorId = useId();
  const fileInput = useRef<HTMLInputElement>(null);

  const exportScores = () => {
    const json = onExport();
    if (json !== null) downloadText(json, exportFileName);
  };

  const importFile = (event: ChangeEvent<HTMLInputElement>) => {
    const file = event.target.files?.[0];
    if (file) onImport(file);
    // Reset so picking the same file again (after fixing it) fires another change.
    if (fileInput.current) fileInput.current.value = '';
  };

  const progressText = progress ? `${formatCount(progress.done)} / ${formatCount(progress.total)} probe images` : 'starting…';

  return (
    <div className="vw-score-controls">
      <div className="vw-button-row">
        <button type="button" onClick={onFindVisualHeads} disabled={disabled || searching}>
          Find visual heads
        </button>
        {searching && (
          <button type="button" className="secondary" onClick={onCancel}>
            Cancel
          </button>
        )}
        <button type="button" className="secondary" onClick={exportScores} disabled={disabled || searching || !canExport}>
          Export scores
        </button>
        <input
          ref={fileInput}
          id={fileInputId}
          className="vw-file-input"
          type="file"
          accept=".json,application/json"
          disabled={disabled || searching}
          aria-describedby={importError ? errorId : undefined}
          onChange={importFile}
        />
        {/* After the input so CSS can mirror the input's focus and disabled state on this visible label. */}
        <label className="vw-file-button" htmlFor={fileInputId}>
          Import scores
        </label>
      </div>
      {searching && (
        <div className="vw-search-progress">
          <label htmlFor={progressId}>Finding visual heads: {progressText}</label>
          <progress id={progressId} value={progress ? progress.done : undefined} max={progress ? Math.max(progress.total, 1) : undefined} />
        </div>
      )}
      {importError && (
        <p id={errorId} className="vw-error" role="alert">
          Import failed: {importError}
        </p>
      )}
    </div>
  );
}
