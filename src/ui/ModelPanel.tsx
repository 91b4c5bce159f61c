import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { canPickDirectory, folderFromDrop, pickDirectory, type PickedFolder } from './folder-input';
import type { CachedModelInfo, FileProgress, ModelLoadStep, ModelSourceSpec, ModelSummary } from '../worker/api';
import { getEngine, loadStepProxy, progressProxy } from './engine-client';
import { formatBytes, formatCount, formatRate } from './format';

export const modelPresets = ['HuggingFaceTB/SmolVLM-256M-Instruct', 'HuggingFaceTB/SmolVLM-500M-Instruct'] as const;

type SourceKind = 'preset' | 'hub' | 'url' | 'folder';

const sourceLabels: Record<SourceKind, string> = {
  preset: 'Preset',
  hub: 'Hub model id',
  url: 'Base URL',
  folder: 'Local folder',
};

type LoadState =
  | { phase: 'idle' }
  /** step: what the load does on the GPU once the files are read (null while files are still being read). */
  | { phase: 'loading'; step: ModelLoadStep | null }
  | { phase: 'loaded'; summary: ModelSummary }
  | { phase: 'cancelled' }
  | { phase: 'error'; message: string };


interface ModelPanelProps {
  /** From `?model=`: selects the URL source with this base URL. */
  initialUrl: string | null;
  /** From `&autoload=1`: loads `initialUrl` as soon as the panel mounts. */
  autoload: boolean;
  /** Called when a load starts, when it succeeds, and when it fails or is cancelled (the previous model then stays). */
  onLoadStart?: () => void;
  onLoaded?: (summary: ModelSummary) => void;
  onLoadEnded?: () => void;
}

export function ModelPanel({ initialUrl, autoload, onLoadStart, onLoaded, onLoadEnded }: ModelPanelProps) {
  const [sourceKind, setSourceKind] = useState<SourceKind>(initialUrl ? 'url' : 'preset');
  const [preset, setPreset] = useState<string>(modelPresets[0]);
  const [hubId, setHubId] = useState('');
  const [baseUrl, setBaseUrl] = useState(initialUrl ?? '');
  const [folder, setFolder] = useState<PickedFolder | null>(null);
  const [progress, setProgress] = useState<Map<string, FileProgress>>(new Map());
  const [state, setState] = useState<LoadState>({ phase: 'idle' });
  const [formError, setFormError] = useState<string | null>(null);
  // Each load gets a number; answers of a load that a newer one replaced are dropped.
  const loadGeneration = useRef(0);
  const autoloadStarted = useRef(false);
  const ids = useId();
  const [cached, setCached] = useState<CachedModelInfo[] | null>(null);
  const [cacheError, setCacheError] = useState<string | null>(null);
  const refreshCached = () => {
    getEngine()
      .listCachedModels()
      .then(
        (list) => {
          setCached(list);
          setCacheError(null);
        },
        (error: unknown) => setCacheError(`The browser cache could not be listed: ${error instanceof Error ? error.message : String(error)}`),
      );
  };
  useEffect(refreshCached, []);
  const removeCached = (sourceId: string) => {
    getEngine()
      .removeCachedModel(sourceId)
      .then(refreshCached, (error: unknown) => setCacheError(`Could not remove ${sourceId}: ${error instanceof Error ? error.message : String(error)}`));
  };

  const startLoad = (source: ModelSourceSpec) => {
    const generation = ++loadGeneration.current;
    setFormError(null);
    setProgress(new Map());
    setState({ phase: 'loading', step: null });
    onLoadStart?.();
    const onProgress = progressProxy((update) => {
      if (generation !== loadGeneration.current) return;
      setProgress((previous) => new Map(previous).set(update.file, update));
    });
    const onStep = loadStepProxy((step) => {
      if (generation !== loadGeneration.current) return;
      setState((previous) => (previous.phase === 'loading' ? { phase: 'loading', step } : previous));
    });
    getEngine()
      .loadModel(source, onProgress, onStep)
      .then(
        (summary) => {
          if (generation !== loadGeneration.current) return;
          setState({ phase: 'loaded', summary });
          onLoaded?.(summary);
          refreshCached();
        },
        (error: unknown) => {
          if (generation !== loadGeneration.current) return;
          onLoadEnded?.();
          if (error instanceof Error && error.name === 'AbortError') setState({ phase: 'cancelled' });
          else setState({ phase: 'error', message: error instanceof Error ? error.message : String(error) });
        },
      );
  };

  // The ref keeps StrictMode's double effect run from starting two loads.
  useEffect(() => {
    if (!autoload || !initialUrl || autoloadStarted.current) return;
    autoloadStarted.current = true;
    startLoad({ kind: 'url', baseUrl: initialUrl });
    // startLoad is a new function every render; the autoload happens once per page, on mount.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [autoload, initialUrl]);

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    const source = buildSource(sourceKind, { preset, hubId, baseUrl, folder });
    if (typeof source === 'string') {
      setFormError(source);
      return;
    }
    startLoad(source);
  };

  const loading = state.phase === 'loading';

  return (
    <section className="panel model-panel" aria-labelledby="model-heading" data-testid="model-panel">
      <h2 id="model-heading">Model</h2>
      <form onSubmit={onSubmit} className="model-form">
        <fieldset className="source-kinds">
          <legend>Load from</legend>
          {(Object.keys(sourceLabels) as SourceKind[]).map((kind) => (
            <label key={kind} className="radio">
              <input
                type="radio"
                name="source-kind"
                value={kind}
                checked={sourceKind === kind}
                onChange={() => setSourceKind(kind)}
              />
              {sourceLabels[kind]}
            </label>
          ))}
        </fieldset>

        {sourceKind === 'preset' && (
          <div className="field">
            <label htmlFor={`${ids}-preset`}>Preset model</label>
            <select id={`${ids}-preset`} value={preset} onChange={(e) => setPreset(e.target.value)}>
              {modelPresets.map((id) => (
                <option key={id} value={id}>
                  {id}
                </option>
              ))}
            </select>
          </div>
        )}
        {sourceKind === 'hub' && (
          <div className="field">
            <label htmlFor={`${ids}-hub`}>Hugging Face model id</label>
            <input
              id={`${ids}-hub`}
              type="text"
              placeholder="owner/name"
              value={hubId}
              onChange={(e) => setHubId(e.target.value)}
              spellCheck={false}
              autoComplete="off"
            />
          </div>
        )}
        {sourceKind === 'url' && (
          <div className="field">
            <label htmlFor={`${ids}-url`}>Base URL of the model folder</label>
            <input
              id={`${ids}-url`}
              type="url"
              placeholder="https://example.org/models/SmolVLM-256M-Instruct/"
              value={baseUrl}
              onChange={(e) => setBaseUrl(e.target.value)}
              spellCheck={false}
              autoComplete="off"
              data-testid="model-url"
            />
          </div>
        )}
        {sourceKind === 'folder' && <FolderPicker id={`${ids}-folder`} folder={folder} onPick={setFolder} />}

        <div className="actions">
          <button type="submit" data-testid="load-button">
            {loading ? 'Restart load' : 'Load'}
          </button>
          {loading && (
            <button type="button" className="secondary" onClick={() => void getEngine().cancelLoad()}>
              Cancel
            </button>
          )}
        </div>
      </form>

      {formError && (
        <p role="alert" className="status error">
          {formError}
        </p>
      )}
      {progress.size > 0 && <ProgressList progress={[...progress.values()]} />}
      <div aria-live="polite">
        {state.phase === 'loading' && <p className="muted" data-testid="load-step">{loadStepText(state.step)}</p>}
        {state.phase === 'cancelled' && <p className="muted">Load cancelled.</p>}
      </div>
      {state.phase === 'error' && (
        <div role="alert" className="status error" data-testid="load-error">
          <p>
            <strong>The model could not be loaded.</strong>
          </p>
          <p className="error-text">{state.message}</p>
        </div>
      )}
      {state.phase === 'loaded' && <SummaryView summary={state.summary} />}
      <CachedModels models={cached} error={cacheError} loadedSourceId={state.phase === 'loaded' ? state.summary.sourceId : null} onRemove={removeCached} />
    </section>
  );
}

function buildSource(
  kind: SourceKind,
  inputs: { preset: string; hubId: string; baseUrl: string; folder: PickedFolder | null },
): ModelSourceSpec | string {
  switch (kind) {
    case 'preset':
      return { kind: 'hub', modelId: inputs.preset };
    case 'hub': {
      const modelId = inputs.hubId.trim();
      if (!/^[\w.-]+\/[\w.-]+$/.test(modelId)) return 'Enter a Hugging Face model id of the form owner/name.';
      return { kind: 'hub', modelId };
    }
    case 'url': {
      const baseUrl = inputs.baseUrl.trim();
      let parsed: URL;
      try {
        parsed = new URL(baseUrl, window.location.href);
      } catch {
        return 'Enter the URL of a folder that holds config.json and model.safetensors.';
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'The model URL must start with http:// or https://.';
      return { kind: 'url', baseUrl: parsed.href };
    }
    case 'folder':
      if (!inputs.folder) return 'Choose a folder first.';
      if (!inputs.folder.files.has('config.json')) return `The folder "${inputs.folder.name}" has no config.json at its top level.`;
      return { kind: 'files', files: inputs.folder.files };
  }
}

function FolderPicker({ id, folder, onPick }: { id: string; folder: PickedFolder | null; onPick: (folder: PickedFolder | null) => void }) {
  const [dragging, setDragging] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  // React's types lack webkitdirectory; set it on the element directly.
  const setDirectoryAttribute = (input: HTMLInputElement | null) => {
    input?.setAttribute('webkitdirectory', '');
  };
  const accept = (picked: PickedFolder | string | null) => {
    if (typeof picked === 'string') {
      setProblem(picked);
      return;
    }
    setProblem(null);
    if (picked) onPick(picked);
  };
  const fail = (error: unknown) => setProblem(`The folder could not be read: ${error instanceof Error ? error.message : String(error)}`);
  return (
    <div className="field">
      <label htmlFor={id}>Model folder (config.json, model.safetensors, tokenizer files)</label>
      <input
        id={id}
        ref={setDirectoryAttribute}
        type="file"
        multiple
        onChange={(e) => onPick(e.target.files ? folderFromFiles(e.target.files) : null)}
      />
      {canPickDirectory() && (
        <button type="button" className="secondary" onClick={() => pickDirectory().then(accept, fail)}>
          Choose a folder…
        </button>
      )}
      <div
        className={dragging ? 'folder-drop dragging' : 'folder-drop'}
        aria-label="Drop a model folder here"
        data-testid="folder-drop"
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          folderFromDrop(e.dataTransfer.items).then(accept, fail);
        }}
      >
        …or drop the model folder here
      </div>
      {problem && (
        <p role="alert" className="status error">
          {problem}
        </p>
      )}
      {folder && (
        <p className="muted">
          {folder.files.size} files from “{folder.name}”
        </p>
      )}
    </div>
  );
}

/** Keys files by their path inside the picked folder ("SmolVLM/config.json" -> "config.json"). */
function folderFromFiles(list: FileList): PickedFolder | null {
  if (list.length === 0) return null;
  const files = new Map<string, Blob>();
  let name = '';
  for (const file of Array.from(list)) {
    const relative = file.webkitRelativePath || file.name;
    const slash = relative.indexOf('/');
    if (slash > 0 && !name) name = relative.slice(0, slash);
    files.set(slash > 0 ? relative.slice(slash + 1) : relative, file);
  }
  return { name: name || 'selected files', files };
}

function loadStepText(step: ModelLoadStep | null): string {
  if (!step) return 'Loading…';
  if (step.step === 'uploading weights') return 'Uploading the weights to the GPU…';
  return `Compiling kernels (${step.done} / ${step.total})…`;
}

function ProgressList({ progress }: { progress: FileProgress[] }) {
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

function SummaryView({ summary }: { summary: ModelSummary }) {
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
        <dt>All files</dt>
        <dd>
          {formatBytes(summary.totalBytes)} in {summary.files.length} files
        </dd>
      </dl>
    </div>
  );
}

function CachedModels({
  models,
  error,
  loadedSourceId,
  onRemove,
}: {
  models: CachedModelInfo[] | null;
  error: string | null;
  loadedSourceId: string | null;
  onRemove: (sourceId: string) => void;
}) {
  return (
    <details className="cached-models" data-testid="cached-models">
      <summary>Cached models{models ? ` (${models.length})` : ''}</summary>
      {error && <p className="status error small">{error}</p>}
      {models && models.length === 0 && <p className="muted small">Nothing cached yet.</p>}
      {models && models.length > 0 && (
        <ul className="cached-list">
          {models.map((model) => (
            <li key={model.sourceId} data-source-id={model.sourceId}>
              <span className="file-name">{model.sourceId}</span>
              <span className="muted small">
                {formatBytes(model.bytes)} in {model.files} files{model.sourceId === loadedSourceId ? ' · loaded now' : ''}
              </span>
              <button type="button" className="secondary small-button" aria-label={`Remove ${model.sourceId} from the cache`} onClick={() => onRemove(model.sourceId)}>
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
    </details>
  );
}
