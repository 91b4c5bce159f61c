import { useEffect, useState } from 'react';
import type { ModelSourceSpec, WeightFormat, WeightFormatSizes } from '../worker/api';
import { weightFormatChoices, weightFormatOptionText } from './weight-format-choices';
import { getEngine } from './engine-client';
import { errorMessage } from '../errors';
import { formatBytes } from './format';

/** What the field knows of the chosen source's sizes. */
type SizesState =
  | { phase: 'none' }
  /** Only a download of config.json would tell (the button offers it). */
  | { phase: 'unknown' }
  | { phase: 'reading' }
  | { phase: 'known'; sizes: WeightFormatSizes }
  | { phase: 'error'; message: string };

/** The sizes line's whole text (the line itself is one line tall and may cut it). */
function sizesTitle(sizes: SizesState, format: WeightFormat): string | undefined {
  if (sizes.phase === 'error') return `Sizes unknown: ${sizes.message}`;
  if (sizes.phase === 'unknown') return 'The sizes come from the model\'s config.json: this reads it alone (a few KB), not the weights.';
  if (sizes.phase !== 'known') return undefined;
  const bytes = sizes.sizes.bytesByFormat;
  return `GPU memory for the weights in ${format}, from config.json: ${formatBytes(bytes[format])} (bf16 ${formatBytes(bytes.bf16)}, q8 ${formatBytes(bytes.q8)}, ` +
    `q4 ${formatBytes(bytes.q4)}). The KV cache and activations come on top.`;
}

interface WeightFormatFieldProps {
  id: string;
  value: WeightFormat;
  onChange: (format: WeightFormat) => void;
  /** The model the form would load now (null while its fields are incomplete). */
  source: ModelSourceSpec | null;
  /** Changes after a load, so sizes that only a download could tell are looked up again (the cache has them now). */
  refreshKey: number;
}

/**
 * The model panel's weight-format select. Each option shows the GPU memory the weights take in that format, computed
 * from the model's config.json before any weights are downloaded: read from the picked folder or the browser cache as
 * soon as the source is chosen, or fetched (config.json only) when the person asks.
 */
export function WeightFormatField({ id, value, onChange, source, refreshKey }: WeightFormatFieldProps) {
  // Tagged with the source it describes: what another source's lookup found is not shown for this one.
  const [found, setFound] = useState<{ source: ModelSourceSpec; state: SizesState } | null>(null);
  const sizes: SizesState = found && found.source === source ? found.state : { phase: 'none' };

  const lookUp = (download: boolean, isCurrent: () => boolean = () => true) => {
    if (!source) return;
    setFound({ source, state: { phase: 'reading' } });
    getEngine()
      .weightFormatSizes(source, download)
      .then(
        (result) => isCurrent() && setFound({ source, state: result ? { phase: 'known', sizes: result } : { phase: 'unknown' } }),
        (error: unknown) => isCurrent() && setFound({ source, state: { phase: 'error', message: errorMessage(error) } }),
      );
  };

  // Typed sources (hub id, URL) settle for a moment before the lookup; it reads no network.
  useEffect(() => {
    if (!source) return;
    let current = true;
    const timer = setTimeout(() => lookUp(false, () => current), 250);
    return () => {
      current = false;
      clearTimeout(timer);
    };
    // lookUp is a new function every render; the lookup follows the source only.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [source, refreshKey]);

  const bytes = sizes.phase === 'known' ? sizes.sizes.bytesByFormat : null;
  return (
    <div className="field" data-testid="weight-format-field">
      <label htmlFor={id}>Weights on the GPU</label>
      <select id={id} value={value} onChange={(e) => onChange(e.target.value as WeightFormat)} data-testid="weight-format">
        {weightFormatChoices.map(({ format, label }) => (
          <option key={format} value={format} data-bytes={bytes?.[format]}>
            {weightFormatOptionText(label, bytes?.[format])}
          </option>
        ))}
      </select>
      <p className="muted small weight-sizes" data-testid="weight-format-sizes" aria-live="polite" title={sizesTitle(sizes, value)}>
        {sizes.phase === 'known' && <span>{formatBytes(sizes.sizes.bytesByFormat[value])} in {value}{value !== 'bf16' && `, bf16 ${formatBytes(sizes.sizes.bytesByFormat.bf16)}`}</span>}
        {sizes.phase === 'reading' && <span>Reading config.json…</span>}
        {sizes.phase === 'unknown' && (
          <button type="button" className="secondary small-button" onClick={() => lookUp(true)} data-testid="weight-sizes-button">
            Sizes from config.json
          </button>
        )}
        {sizes.phase === 'error' && <span>Sizes unknown: {sizes.message}</span>}
      </p>
    </div>
  );
}
