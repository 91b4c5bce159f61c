/** Number formatting for the views: durations, ratios and scores. Bytes come from the shell's helper. */
import { formatBytes } from '../format';

export { formatBytes };

/** 0.4213 -> "0.42 ms", 12.34 -> "12.3 ms", 1234 -> "1.23 s", 75000 -> "1 min 15 s". */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  const totalSeconds = Math.round(ms / 1000);
  return `${Math.floor(totalSeconds / 60)} min ${totalSeconds % 60} s`;
}

/** Drops trailing zeros of a fixed-point string: "1.60" -> "1.6", "2.00" -> "2". */
function trimZeros(text: string): string {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

/** A ratio as "0.05x", "1.6x", "12x"; very small ratios keep two significant digits ("0.0031x"). */
export function formatRatio(ratio: number): string {
  if (!Number.isFinite(ratio) || ratio < 0) return '—';
  if (ratio === 0) return '0x';
  if (ratio >= 100) return `${ratio.toFixed(0)}x`;
  if (ratio >= 0.01) return `${trimZeros(ratio.toFixed(2))}x`;
  return `${trimZeros(ratio.toPrecision(2))}x`;
}

/** Tokens per second: 3 significant figures are plenty for a rate measured with wall clocks. */
export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond) || perSecond < 0) return '—';
  return perSecond >= 100 ? perSecond.toFixed(0) : trimZeros(perSecond.toPrecision(3));
}

/** Visual-head scores are small means (often < 0.01): 3 significant digits, exponent for tiny ones. */
export function formatScore(score: number): string {
  if (!Number.isFinite(score)) return '—';
  if (score === 0) return '0';
  const magnitude = Math.abs(score);
  if (magnitude < 1e-4) return score.toExponential(2);
  return trimZeros(score.toPrecision(3));
}

/** 1234567 -> "1,234,567". */
export function formatCount(value: number): string {
  return Number.isFinite(value) ? value.toLocaleString('en-US') : '—';
}
