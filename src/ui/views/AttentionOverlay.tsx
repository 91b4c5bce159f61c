import { useId, useState } from 'react';
import { ColorLegend } from './ColorLegend';
import { viridis } from './colormap';
import { formatScore } from './format';
import { expectedTokenCount, fitDisplaySize, overlayCells, tileCount } from './overlay-model';
import type { ImageTokenGeometry } from './types';
import './views.css';

export interface AttentionOverlayProps {
  /** Object URL (or any URL) of the original picture. */
  imageUrl: string;
  /** Original picture size in pixels. */
  imageWidth: number;
  imageHeight: number;
  /** Size the processor resized the picture to before tiling (the tiles cover exactly this). */
  resizedWidth: number;
  resizedHeight: number;
  geometry: ImageTokenGeometry;
  /** One attention weight per image token in prompt order: tile 0 row-major, tile 1, ..., then the global image. */
  weights: Float32Array;
  /** Show the global image's map instead of the tiles' (initial value when uncontrolled). */
  showGlobal: boolean;
  /** Makes the toggle controlled; without it the component keeps the toggle state itself. */
  onShowGlobalChange?: (showGlobal: boolean) => void;
  /** Whose attention this is, e.g. "Layer 12, head 4". */
  headLabel?: string;
  /** Largest displayed size in CSS pixels (default 560 x 560). */
  maxDisplayWidth?: number;
  maxDisplayHeight?: number;
}

// The strongest token is drawn at this opacity, so the picture stays visible under it.
const maxOpacity = 0.8;

/** The picture with one head's attention over its image tokens drawn where each token came from. */
export function AttentionOverlay({
  imageUrl,
  imageWidth,
  imageHeight,
  resizedWidth,
  resizedHeight,
  geometry,
  weights,
  showGlobal,
  onShowGlobalChange,
  headLabel,
  maxDisplayWidth = 560,
  maxDisplayHeight = 560,
}: AttentionOverlayProps) {
  const toggleId = useId();
  const [localShowGlobal, setLocalShowGlobal] = useState(showGlobal);
  const effectiveShowGlobal = onShowGlobalChange ? showGlobal : localShowGlobal;
  const setShowGlobal = onShowGlobalChange ?? setLocalShowGlobal;

  const expected = expectedTokenCount(geometry);
  const hasTiles = tileCount(geometry) > 0;
  const display = fitDisplaySize(imageWidth, imageHeight, maxDisplayWidth, maxDisplayHeight);
  const validSizes = display.width > 0 && resizedWidth > 0 && resizedHeight > 0 && geometry.tokensPerSide > 0;
  const problem = !validSizes
    ? 'The image or its processed size is unknown.'
    : weights.length !== expected
      ? `Expected ${expected} image-token weights for ${geometry.rows} x ${geometry.cols} tiles + global of ${geometry.tokensPerSide}x${geometry.tokensPerSide} tokens, got ${weights.length}.`
      : null;
  const cells = problem
    ? []
    : overlayCells(geometry, { displayWidth: display.width, displayHeight: display.height, resizedWidth, resizedHeight }, weights, effectiveShowGlobal);
  const largest = cells.reduce((most, cell) => Math.max(most, cell.weight), 0);
  const mapName = effectiveShowGlobal || !hasTiles ? 'global image' : `${geometry.rows} x ${geometry.cols} tiles`;
  const title = `${headLabel ? `${headLabel}: attention` : 'Attention'} over the ${mapName}`;

  return (
    <figure className="vw-overlay">
      <div className="vw-overlay-controls">
        <input
          id={toggleId}
          type="checkbox"
          checked={effectiveShowGlobal || !hasTiles}
          disabled={!hasTiles}
          onChange={(event) => setShowGlobal(event.target.checked)}
        />
        <label htmlFor={toggleId}>Show the global image's map{hasTiles ? '' : ' (the image was not split into tiles)'}</label>
      </div>
      {problem ? (
        <p className="vw-error" role="alert">
          {problem}
        </p>
      ) : (
        <div className="vw-overlay-stage" style={{ width: display.width, height: display.height }}>
          <img src={imageUrl} width={display.width} height={display.height} alt={`The input picture, ${imageWidth} x ${imageHeight} pixels`} />
          <svg
            className="vw-overlay-map"
            width={display.width}
            height={display.height}
            viewBox={`0 0 ${display.width} ${display.height}`}
            role="img"
            aria-label={title}
          >
            {cells.map((cell) => (
              <rect
                key={cell.tokenIndex}
                x={cell.x}
                y={cell.y}
                width={cell.width}
                height={cell.height}
                fill={viridis(cell.normalised)}
                fillOpacity={cell.normalised * maxOpacity}
              >
                <title>{`${cell.tileRow < 0 ? 'Global image' : `Tile row ${cell.tileRow}, col ${cell.tileCol}`}, token (${cell.tokenRow}, ${cell.tokenCol}): ${formatScore(cell.weight)}`}</title>
              </rect>
            ))}
            {!effectiveShowGlobal && hasTiles && (
              <g className="vw-tile-lines" aria-hidden="true">
                {Array.from({ length: geometry.cols - 1 }, (_, i) => {
                  const x = ((i + 1) * display.width) / geometry.cols;
                  return <line key={`c${i}`} x1={x} x2={x} y1={0} y2={display.height} />;
                })}
                {Array.from({ length: geometry.rows - 1 }, (_, i) => {
                  const y = ((i + 1) * display.height) / geometry.rows;
                  return <line key={`r${i}`} x1={0} x2={display.width} y1={y} y2={y} />;
                })}
              </g>
            )}
          </svg>
        </div>
      )}
      <figcaption>{title}</figcaption>
      <ColorLegend label="Attention weight (colour and opacity)" minLabel="0" maxLabel={formatScore(largest)} />
    </figure>
  );
}
