import { useId, useMemo, useState, type KeyboardEvent } from 'react';
import { ColorLegend } from './ColorLegend';
import { normalise, viridis } from './colormap';
import { formatCount, formatScore } from './format';
import { describeHead, headCount, headDetails, kvHeadOf, moveSelection, rankHeads, scoreRange } from './heatmap-model';
import type { HeadPosition } from './types';
import './views.css';

export interface HeadHeatmapProps {
  /** Mean visual-head score per [layer][query head]. */
  scores: number[][];
  /** KV heads per layer (GQA groups); query heads h*G .. h*G+G-1 share KV head h. */
  kvHeads: number;
  /** Prefix tokens kept per [layer][KV head] under the current policy, for the tooltip. */
  capacities?: number[][];
  selected?: HeadPosition;
  onSelect: (layer: number, head: number) => void;
  /** Accessible name of the grid. */
  label?: string;
  /** What the values are, for the legend (default "Visual-head score"; e.g. an attention share). */
  valueLabel?: string;
  /** The value's short name in the details box (default "Score"; "Attention" when the cells are attention shares). */
  valueName?: string;
}

// Cell size in SVG user units; the SVG scales with its container width.
const cellWidth = 26;
const cellHeight = 14;
const leftMargin = 34;
const topMargin = 18;

/**
 * Layers x query heads grid of visual-head scores (viridis, legend below). Click or arrow keys select a
 * head; hovering shows its score, rank, KV head and that KV head's budget beside the grid
 * (the selected head's when none is hovered), in a box of its own that covers no cell, axis or caption.
 */
export function HeadHeatmap({ scores, kvHeads, capacities, selected, onSelect, label = 'Visual-head scores by layer and head', valueLabel = 'Visual-head score', valueName = 'Score' }: HeadHeatmapProps) {
  const idPrefix = useId();
  const [hovered, setHovered] = useState<HeadPosition | null>(null);
  const layers = scores.length;
  const heads = headCount(scores);
  const ranks = useMemo(() => rankHeads(scores), [scores]);
  const range = useMemo(() => scoreRange(scores), [scores]);

  if (layers === 0 || heads === 0) {
    return (
      <div className="vw-empty" role="status">
        No scores yet — run Find visual heads.
      </div>
    );
  }

  const groupSize = kvHeads > 0 ? heads / kvHeads : heads;
  const width = leftMargin + heads * cellWidth + 2;
  const height = topMargin + layers * cellHeight + 2;
  const cellId = (layer: number, head: number) => `${idPrefix}-cell-${layer}-${head}`;

  // The details follow the mouse; without one they show the selection (keyboard or click).
  const shown = hovered ?? selected ?? null;
  const shownDetails = shown ? headDetails(shown, scores, ranks, kvHeads, capacities) : null;
  const selectedDetails = selected ? headDetails(selected, scores, ranks, kvHeads, capacities) : null;

  const onKeyDown = (event: KeyboardEvent<HTMLDivElement>) => {
    const next = moveSelection(selected, event.key, layers, heads);
    if (!next) return;
    event.preventDefault();
    onSelect(next.layer, next.head);
  };

  return (
    <div className="vw-heatmap">
      <div className="vw-heatmap-body">
        <div
          className="vw-heatmap-grid"
          role="grid"
          tabIndex={0}
          aria-label={`${label}: ${layers} layers by ${heads} heads. Arrow keys move the selection.`}
          aria-activedescendant={selected ? cellId(selected.layer, selected.head) : undefined}
          onKeyDown={onKeyDown}
          onMouseLeave={() => setHovered(null)}
          style={{ maxWidth: `${Math.round(width * 1.6)}px` }}
        >
          <svg viewBox={`0 0 ${width} ${height}`} width="100%" role="presentation">
            <g aria-hidden="true" className="vw-axis-text">
              {Array.from({ length: heads }, (_, head) => (
                <text key={head} x={leftMargin + head * cellWidth + cellWidth / 2} y={topMargin - 5} textAnchor="middle">
                  {head}
                </text>
              ))}
              {scores.map((_, layer) =>
                layer % 5 === 0 || layer === layers - 1 ? (
                  <text key={layer} x={leftMargin - 5} y={topMargin + layer * cellHeight + cellHeight * 0.75} textAnchor="end">
                    {layer}
                  </text>
                ) : null,
              )}
            </g>
            {scores.map((row, layer) => (
              <g key={layer} role="row">
                {row.map((score, head) => (
                  <rect
                    key={head}
                    id={cellId(layer, head)}
                    role="gridcell"
                    aria-selected={selected?.layer === layer && selected.head === head}
                    aria-label={`Layer ${layer}, head ${head}, score ${formatScore(score)}`}
                    x={leftMargin + head * cellWidth}
                    y={topMargin + layer * cellHeight}
                    width={cellWidth - 1}
                    height={cellHeight - 1}
                    fill={viridis(normalise(score, range.min, range.max))}
                    onMouseEnter={() => setHovered({ layer, head })}
                    onClick={() => onSelect(layer, head)}
                  />
                ))}
              </g>
            ))}
            {/* KV-group separators: query heads between two lines share one KV head's cache. */}
            <g aria-hidden="true" className="vw-group-lines">
              {Number.isInteger(groupSize) &&
                Array.from({ length: kvHeads - 1 }, (_, g) => {
                  const x = leftMargin + (g + 1) * groupSize * cellWidth - 0.5;
                  return <line key={g} x1={x} x2={x} y1={topMargin - 2} y2={topMargin + layers * cellHeight} />;
                })}
            </g>
            {selected && selected.layer < layers && selected.head < heads && (
              <rect
                aria-hidden="true"
                className="vw-selected-cell"
                x={leftMargin + selected.head * cellWidth - 1}
                y={topMargin + selected.layer * cellHeight - 1}
                width={cellWidth + 1}
                height={cellHeight + 1}
              />
            )}
          </svg>
        </div>
        {shownDetails ? (
          <div className="vw-head-details" data-testid="head-details">
            <strong>
              Layer {shownDetails.layer}, head {shownDetails.head}
            </strong>
            <dl>
              <dt>{valueName}</dt>
              <dd>{formatScore(shownDetails.score)}</dd>
              <dt>Rank</dt>
              <dd>
                {shownDetails.rank} of {shownDetails.totalHeads}
              </dd>
              <dt>KV head</dt>
              <dd>{kvHeadOf(shownDetails.head, heads, kvHeads)}</dd>
              {shownDetails.capacity !== undefined && (
                <>
                  <dt>KV budget</dt>
                  <dd>{formatCount(shownDetails.capacity)} tokens</dd>
                </>
              )}
            </dl>
          </div>
        ) : (
          <p className="vw-head-details vw-head-details-hint" data-testid="head-details">
            Point at a head or select one for its score, rank and KV budget.
          </p>
        )}
      </div>
      <p className="vw-caption">
        Rows are layers (0 at the top), columns query heads; lines separate the {kvHeads} KV-head groups.
      </p>
      <ColorLegend label={valueLabel} minLabel={formatScore(range.min)} maxLabel={formatScore(range.max)} />
      <p className="vw-sr-only" aria-live="polite">
        {selectedDetails ? `Selected: ${describeHead(selectedDetails)}` : ''}
      </p>
    </div>
  );
}
