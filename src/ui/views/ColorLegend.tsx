import { viridisGradientCss } from './colormap';
import './views.css';

export interface ColorLegendProps {
  /** What the colour measures, e.g. "Visual-head score". */
  label: string;
  /** Text at the dark (low) end. */
  minLabel: string;
  /** Text at the bright (high) end. */
  maxLabel: string;
}

/** A horizontal viridis bar with its end values: every heatmap shows one so colours can be read back. */
export function ColorLegend({ label, minLabel, maxLabel }: ColorLegendProps) {
  return (
    <figure className="vw-legend" aria-label={`${label} colour scale from ${minLabel} (dark) to ${maxLabel} (bright)`}>
      <figcaption className="vw-legend-title">{label}</figcaption>
      <div className="vw-legend-bar" style={{ backgroundImage: viridisGradientCss() }} aria-hidden="true" />
      <div className="vw-legend-ends" aria-hidden="true">
        <span>{minLabel}</span>
        <span>{maxLabel}</span>
      </div>
    </figure>
  );
}
