/**
 * The fidelity sweep as an SVG (the paper's accuracy-efficiency figure on one question): top-1 agreement and mean KL
 * against KV-cache bytes, one line per policy over its budgets, and the full cache as the reference point
 * (agreement 1, KL 0 at its own size). Drawn by bench-plot's panelsSvg on a log2 byte axis.
 */
import type { FidelitySweepResult } from '../session/fidelity-types';
import { policyLabel } from '../sparsemm/policies';
import { panelsSvg, type Panel, type Series } from './bench-plot';

/** "12 KiB", "1.5 MiB": bytes in the binary unit that keeps the number short. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${Number(value.toPrecision(3))} ${units[unit]}`;
}

/** Powers of two from below `min` to above `max` (about six of them at most, every other one when the range is wide). */
function byteTicks(min: number, max: number): number[] {
  const low = Math.floor(Math.log2(min));
  const high = Math.ceil(Math.log2(max));
  const step = Math.max(1, Math.ceil((high - low) / 6));
  const ticks: number[] = [];
  for (let e = low; e <= high; e += step) ticks.push(2 ** e);
  return ticks;
}

export function fidelitySvg(result: FidelitySweepResult, subtitle?: string): string {
  if (result.rows.length === 0) throw new Error('fidelitySvg: no rows to plot');
  const policies = [...new Set(result.rows.map((row) => row.policy))];
  const seriesOf = (value: (row: FidelitySweepResult['rows'][number]) => number, fullValue: number): Series[] => [
    { label: 'Full cache', points: [{ x: result.reference.kvBytes, y: fullValue }] },
    ...policies.map((policy) => ({
      label: policyLabel(policy),
      points: result.rows
        .filter((row) => row.policy === policy)
        .map((row) => ({ x: row.kvBytes, y: value(row) }))
        .sort((a, b) => a.x - b.x),
    })),
  ];
  const panels: Panel[] = [
    { title: 'Top-1 agreement with the full cache', yLabel: 'top-1 agreement', series: seriesOf((row) => row.top1Agreement, 1) },
    { title: 'Mean KL(full || policy)', yLabel: 'mean KL (nats)', series: seriesOf((row) => row.meanKl, 0) },
  ];
  const bytes = [result.reference.kvBytes, ...result.rows.map((row) => row.kvBytes)];
  const min = Math.min(...bytes);
  const max = Math.max(...bytes);
  const ticks = byteTicks(min, max);
  return panelsSvg(panels, { domain: [ticks[0], Math.max(ticks[ticks.length - 1], max)], ticks, label: 'KV cache (bytes)', format: formatBytes }, {
    title: `KV policies against the full cache (${result.reference.tokenIds.length} reference tokens)`,
    subtitle,
  });
}
