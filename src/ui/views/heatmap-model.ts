/** Pure helpers of the head heatmap: ranks, GQA grouping, keyboard movement, tooltip text. */
import { formatCount, formatScore } from './format';
import type { HeadPosition } from './types';

/** Query heads per row: the widest row (rows should all be equally long; a short row shows gaps). */
export function headCount(scores: readonly (readonly number[])[]): number {
  return scores.reduce((most, row) => Math.max(most, row.length), 0);
}

/**
 * Rank of every head among all heads, 1 = highest score. Equal scores share a rank and the next rank
 * skips ("1, 2, 2, 4"), so a tooltip never claims an order the numbers do not have. Non-finite scores
 * rank last.
 */
export function rankHeads(scores: readonly (readonly number[])[]): number[][] {
  const flat: number[] = [];
  for (const row of scores) for (const s of row) flat.push(Number.isFinite(s) ? s : -Infinity);
  const sorted = flat.slice().sort((a, b) => b - a);
  // First index of each value in the descending order = (number of strictly larger values).
  const firstIndex = new Map<number, number>();
  sorted.forEach((value, index) => {
    if (!firstIndex.has(value)) firstIndex.set(value, index);
  });
  return scores.map((row) => row.map((s) => (firstIndex.get(Number.isFinite(s) ? s : -Infinity) ?? 0) + 1));
}

/** The KV head a query head reads under GQA (repeat_kv layout: consecutive query heads share one). */
export function kvHeadOf(head: number, qHeads: number, kvHeads: number): number {
  if (kvHeads <= 0 || qHeads <= 0) return 0;
  return Math.min(kvHeads - 1, Math.floor((head * kvHeads) / qHeads));
}

/** Finite min and max over all scores (0..0 when there are none). The scale starts at 0 for non-negative scores. */
export function scoreRange(scores: readonly (readonly number[])[]): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const row of scores) {
    for (const s of row) {
      if (!Number.isFinite(s)) continue;
      if (s < min) min = s;
      if (s > max) max = s;
    }
  }
  if (min > max) return { min: 0, max: 0 };
  return { min: Math.min(0, min), max };
}

/**
 * The selection after a key press in the grid, or null when the key does not move it.
 * Arrows move one cell (Up/Down = layer, Left/Right = head) and stop at the edges; Home/End go to the
 * first/last head of the layer, PageUp/PageDown to the first/last layer. With nothing selected any of
 * these keys selects layer 0, head 0.
 */
export function moveSelection(current: HeadPosition | undefined, key: string, layers: number, heads: number): HeadPosition | null {
  if (layers <= 0 || heads <= 0) return null;
  const moves = ['ArrowUp', 'ArrowDown', 'ArrowLeft', 'ArrowRight', 'Home', 'End', 'PageUp', 'PageDown'];
  if (!moves.includes(key)) return null;
  if (!current) return { layer: 0, head: 0 };
  let { layer, head } = current;
  switch (key) {
    case 'ArrowUp':
      layer -= 1;
      break;
    case 'ArrowDown':
      layer += 1;
      break;
    case 'ArrowLeft':
      head -= 1;
      break;
    case 'ArrowRight':
      head += 1;
      break;
    case 'Home':
      head = 0;
      break;
    case 'End':
      head = heads - 1;
      break;
    case 'PageUp':
      layer = 0;
      break;
    case 'PageDown':
      layer = layers - 1;
      break;
  }
  return { layer: Math.max(0, Math.min(layers - 1, layer)), head: Math.max(0, Math.min(heads - 1, head)) };
}

/** Everything the tooltip says about one head. */
export interface HeadDetails {
  layer: number;
  head: number;
  score: number;
  rank: number;
  totalHeads: number;
  kvHead: number;
  /** Prefix tokens its KV head keeps under the current policy; undefined when no policy is given. */
  capacity?: number;
}

export function headDetails(
  position: HeadPosition,
  scores: readonly (readonly number[])[],
  ranks: readonly (readonly number[])[],
  kvHeads: number,
  capacities?: readonly (readonly number[])[],
): HeadDetails | null {
  const { layer, head } = position;
  const row = scores[layer];
  if (!row || head < 0 || head >= row.length) return null;
  const qHeads = headCount(scores);
  const kvHead = kvHeadOf(head, qHeads, kvHeads);
  const totalHeads = scores.reduce((n, r) => n + r.length, 0);
  const capacity = capacities?.[layer]?.[kvHead];
  return { layer, head, score: row[head], rank: ranks[layer][head], totalHeads, kvHead, capacity };
}

/** One-line description, used for the tooltip's accessible text and the screen-reader live region. */
export function describeHead(details: HeadDetails): string {
  const parts = [
    `Layer ${details.layer}, head ${details.head}`,
    `score ${formatScore(details.score)}`,
    `rank ${details.rank} of ${details.totalHeads}`,
    `KV head ${details.kvHead}`,
  ];
  if (details.capacity !== undefined) parts.push(`KV budget ${formatCount(details.capacity)} tokens`);
  return parts.join(', ');
}
