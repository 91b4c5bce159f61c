import { useId } from 'react';
import type { ContextUsage } from '../worker/api';
import { longestEdgeChoices, readContext } from './context-meter';
import './images.css';

interface ContextMeterProps {
  usage: ContextUsage | null;
  maxNewTokens: number;
  /** Pictures of the next prompt (sent and pending). */
  pictures: number;
  onLongestEdgeChange: (edge: number | null) => void;
  disabled: boolean;
}

/** Tokens used against the model's context, what the next picture adds, and the "Longest image edge" setting. */
export function ContextMeter({ usage, maxNewTokens, pictures, onLongestEdgeChange, disabled }: ContextMeterProps) {
  const edgeId = useId();
  const meterId = useId();
  if (!usage) return null;
  const reading = readContext(usage, maxNewTokens, pictures);
  const choices = longestEdgeChoices(usage.tileSize, usage.defaultLongestImageEdge);
  return (
    <div className={`context-meter${reading.overBy > 0 ? ' over' : ''}`} data-testid="context-meter">
      <div className="context-line">
        <label htmlFor={meterId} className="context-summary" data-testid="context-summary">
          {reading.summary}
        </label>
        <meter id={meterId} min={0} max={usage.contextTokens} value={Math.min(usage.usedTokens, usage.contextTokens)} high={usage.contextTokens - maxNewTokens} />
        <span className="field inline-field edge-field">
          <label htmlFor={edgeId}>Longest image edge</label>
          <select
            id={edgeId}
            data-testid="longest-edge"
            value={usage.longestImageEdge}
            disabled={disabled}
            onChange={(event) => {
              const edge = Number(event.target.value);
              onLongestEdgeChange(edge === usage.defaultLongestImageEdge ? null : edge);
            }}
          >
            {choices.map((edge) => (
              <option key={edge} value={edge}>
                {edge} px{edge === usage.defaultLongestImageEdge ? ' (model default)' : ''}
              </option>
            ))}
          </select>
        </span>
      </div>
      <p className="muted small context-detail" data-testid="context-detail">
        {reading.detail}
      </p>
      {reading.advice && (
        <p className="status warning small" role="status" data-testid="context-warning">
          {reading.advice}
        </p>
      )}
    </div>
  );
}
