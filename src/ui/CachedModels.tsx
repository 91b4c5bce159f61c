import type { CachedModelInfo } from '../worker/api';
import { formatBytes } from './format';

/** What the browser cache holds, with a Remove button per model. */
export function CachedModels({
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
