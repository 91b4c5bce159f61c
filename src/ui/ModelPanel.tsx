import { useEffect, useId, useMemo, useRef, useState, type FormEvent } from 'react';
import { flushSync } from 'react-dom';
import type { PickedFolder } from './folder-input';
import { CachedModels } from './CachedModels';
import { FolderPicker } from './FolderPicker';
import { modelLoadButtonId } from './NeedsModel';
import { loadStepText, ProgressList, SummaryView } from './ModelProgress';
import type { CachedModelInfo, FileProgress, ModelLoadStep, ModelSourceSpec, ModelSummary, WeightFormat } from '../worker/api';
import { WeightFormatField } from './WeightFormatField';
import { getEngine, loadStepProxy, progressProxy } from './engine-client';
import { errorMessage } from '../errors';

export const modelPresets = [
  'HuggingFaceTB/SmolVLM-256M-Instruct',
  'HuggingFaceTB/SmolVLM-500M-Instruct',
  // SmolVLM2: the same network with a video path (model_type "smolvlm").
  'HuggingFaceTB/SmolVLM2-256M-Video-Instruct',
  'HuggingFaceTB/SmolVLM2-500M-Video-Instruct',
] as const;

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
  | { phase: 'loaded' }
  | { phase: 'cancelled' }
  /** unreachable: no answer from the host (offline, a proxy, a blocked host): the other sources are offered. */
  | { phase: 'error'; message: string; unreachable: boolean };


interface ModelPanelProps {
  /** From `?model=`: selects the URL source with this base URL. */
  initialUrl: string | null;
  /** From `&autoload=1`: loads `initialUrl` as soon as the panel mounts. */
  autoload: boolean;
  /** The weight format picked at first (the page URL's &weights=). */
  initialWeightFormat?: WeightFormat;
  /**
   * Called when a load starts, when it succeeds, and when it fails or is cancelled, with the model that still answers
   * then (the previous one, or null where the failed load had already freed it).
   */
  onLoadStart?: () => void;
  onLoaded?: (summary: ModelSummary) => void;
  onLoadEnded?: (active: ModelSummary | null) => void;
}

export function ModelPanel({ initialUrl, autoload, initialWeightFormat = 'bf16', onLoadStart, onLoaded, onLoadEnded }: ModelPanelProps) {
  const [weightFormat, setWeightFormat] = useState<WeightFormat>(initialWeightFormat);
  // Bumped by each finished load: the weight sizes of a source that only a download could tell are in the cache now.
  const [loadsDone, setLoadsDone] = useState(0);
  const [sourceKind, setSourceKind] = useState<SourceKind>(initialUrl ? 'url' : 'preset');
  const [preset, setPreset] = useState<string>(modelPresets[0]);
  const [hubId, setHubId] = useState('');
  const [baseUrl, setBaseUrl] = useState(initialUrl ?? '');
  const [folder, setFolder] = useState<PickedFolder | null>(null);
  const [progress, setProgress] = useState<Map<string, FileProgress>>(new Map());
  const [state, setState] = useState<LoadState>({ phase: 'idle' });
  /** The model the engine answers with: its summary stays while another load runs or fails. */
  const [active, setActive] = useState<ModelSummary | null>(null);
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
        (error: unknown) => setCacheError(`The browser cache could not be listed: ${errorMessage(error)}`),
      );
  };
  useEffect(refreshCached, []);
  const removeCached = (sourceId: string) => {
    getEngine()
      .removeCachedModel(sourceId)
      .then(refreshCached, (error: unknown) => setCacheError(`Could not remove ${sourceId}: ${errorMessage(error)}`));
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
      .loadModel(source, onProgress, onStep, weightFormat)
      .then(
        (summary) => {
          if (generation !== loadGeneration.current) return;
          setState({ phase: 'loaded' });
          setActive(summary);
          setLoadsDone((n) => n + 1);
          onLoaded?.(summary);
          refreshCached();
        },
        async (error: unknown) => {
          if (generation !== loadGeneration.current) return;
          if (error instanceof Error && error.name === 'AbortError') setState({ phase: 'cancelled' });
          else setState({ phase: 'error', message: errorMessage(error), unreachable: error instanceof Error && error.name === 'HostUnreachableError' });
          // A load that failed on the GPU has already freed the previous model: ask the worker which one answers.
          const stillLoaded = await getEngine().loadedModelId().catch(() => null);
          const survivor = active !== null && stillLoaded === active.sourceId ? active : null;
          setActive(survivor);
          onLoadEnded?.(survivor);
        },
      );
  };

  /** From the offer under an unreachable-host error: shows that source's field and moves the focus into it. */
  const switchSource = (kind: SourceKind) => {
    flushSync(() => setSourceKind(kind)); // the field exists once this render is done
    document.getElementById(`${ids}-${kind}`)?.focus();
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
  // The source the form would load now, for the weight sizes (null while a field is incomplete).
  const formSource = useMemo(() => {
    const source = buildSource(sourceKind, { preset, hubId, baseUrl, folder });
    return typeof source === 'string' ? null : source;
  }, [sourceKind, preset, hubId, baseUrl, folder]);

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

        <WeightFormatField id={`${ids}-weights`} value={weightFormat} onChange={setWeightFormat} source={formSource} refreshKey={loadsDone} />

        <div className="actions">
          <button type="submit" id={modelLoadButtonId} data-testid="load-button">
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
          {state.unreachable && (
            <p className="actions" data-testid="other-sources">
              <button type="button" className="secondary small-button" onClick={() => switchSource('url')}>
                Use a Base URL
              </button>
              <button type="button" className="secondary small-button" onClick={() => switchSource('folder')}>
                Use a Local folder
              </button>
            </p>
          )}
        </div>
      )}
      {(state.phase === 'error' || state.phase === 'cancelled') && (
        <p className={active ? 'status ok small' : 'muted small'} data-testid="active-model">
          {active ? `Still using ${active.name} (below).` : 'No model is loaded.'}
        </p>
      )}
      {/* Hidden while a load runs: it frees the previous model before uploading the new one. */}
      {active && state.phase !== 'loading' && <SummaryView summary={active} />}
      <CachedModels models={cached} error={cacheError} loadedSourceId={active?.sourceId ?? null} onRemove={removeCached} />
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
