/** Pure rows of the metrics table and the merged per-step chart data. */
import type { CompareMeasurements } from '../../worker/api';
import { decodeVerdict, prefillVerdict, spreadText } from '../compare-text';
import { formatBytes, formatCount, formatMs, formatRate, formatRatio } from './format';
import type { RunMetrics } from './types';

/** How a metric compares between two runs. */
type Comparison = 'lower-is-better-size' | 'lower-is-better-time' | 'higher-is-better' | 'count' | 'none';

interface MetricDefinition {
  name: string;
  value: (run: RunMetrics) => number;
  format: (run: RunMetrics) => string;
  comparison: Comparison;
}

/** A run stopped before its first token measured no first token, no decode and no cache: '—', never a 0 that reads as a result. */
const noToken = '— (stopped before the first token)';
/** With one token there was no decode step (the first comes from the prefill). */
const noDecode = '— (no decode step)';
const ifDecoded = (r: RunMetrics, value: number): number => (r.generatedTokens > 1 ? value : NaN);
const ifGenerated = (r: RunMetrics, value: number): number => (r.generatedTokens > 0 ? value : NaN);

const definitions: readonly MetricDefinition[] = [
  { name: 'Policy', value: () => NaN, format: (r) => (r.budget === undefined ? r.policy : `${r.policy}, budget ${formatCount(r.budget)}`), comparison: 'none' },
  {
    name: 'Prompt tokens',
    value: (r) => r.promptTokens,
    format: (r) => `${formatCount(r.promptTokens)} (${formatCount(r.textTokens)} text + ${formatCount(r.imageTokens)} image)`,
    comparison: 'count',
  },
  { name: 'Prefill', value: (r) => r.prefillMs, format: (r) => formatMs(r.prefillMs), comparison: 'lower-is-better-time' },
  // The two parts of the prefill: what the picture costs and what the prompt costs, before the first token.
  { name: 'Vision encoding', value: (r) => r.visionMs, format: (r) => (r.imageTokens > 0 ? formatMs(r.visionMs) : '— (no image)'), comparison: 'lower-is-better-time' },
  { name: 'Text prefill', value: (r) => r.textPrefillMs, format: (r) => formatMs(r.textPrefillMs), comparison: 'lower-is-better-time' },
  {
    name: 'Time to first token',
    value: (r) => ifGenerated(r, r.timeToFirstTokenMs),
    format: (r) => (r.generatedTokens > 0 ? formatMs(r.timeToFirstTokenMs) : noToken),
    comparison: 'lower-is-better-time',
  },
  {
    name: 'Decode per token',
    value: (r) => ifDecoded(r, r.decodeMsPerToken),
    format: (r) => (r.generatedTokens > 1 ? formatMs(r.decodeMsPerToken) : noDecode),
    comparison: 'lower-is-better-time',
  },
  {
    name: 'Tokens per second',
    value: (r) => ifDecoded(r, r.tokensPerSecond),
    format: (r) => (r.generatedTokens > 1 ? `${formatRate(r.tokensPerSecond)} tok/s` : noDecode),
    comparison: 'higher-is-better',
  },
  { name: 'KV cache', value: (r) => ifGenerated(r, r.kvBytes), format: (r) => (r.generatedTokens > 0 ? formatBytes(r.kvBytes) : noToken), comparison: 'lower-is-better-size' },
  {
    name: 'GPU memory in all',
    value: (r) => ifGenerated(r, r.totalGpuBytes),
    format: (r) => (r.generatedTokens > 0 ? formatBytes(r.totalGpuBytes) : noToken),
    comparison: 'lower-is-better-size',
  },
  { name: 'Generated tokens', value: (r) => r.generatedTokens, format: (r) => formatCount(r.generatedTokens), comparison: 'count' },
];

/**
 * How the second run compares with the first, in words for times ("1.6x faster") and as
 * second/first for sizes, rates and counts ("0.05x"). Empty when it cannot be computed.
 */
export function compareValues(first: number, second: number, comparison: Comparison): string {
  if (comparison === 'none' || !Number.isFinite(first) || !Number.isFinite(second)) return '';
  if (comparison === 'lower-is-better-time') {
    if (!(first > 0 && second > 0)) return '';
    // Within half a percent the difference is below what wall-clock timing can resolve.
    if (Math.abs(first / second - 1) < 0.005) return 'same';
    return first > second ? `${formatRatio(first / second)} faster` : `${formatRatio(second / first)} slower`;
  }
  if (!(first > 0)) return '';
  return formatRatio(second / first);
}

export interface MetricRow {
  name: string;
  /** Formatted value per run, in the order of the runs; one value for a shared row. */
  values: string[];
  /** Second run vs the first; empty with fewer than two runs. */
  ratio: string;
  /** Work both runs share (the pictures' vision encoding): one value for both, no ratio. */
  shared?: boolean;
}

/** policy / full as "0.45x", two decimals (1.00x: the same); empty when it cannot be computed. */
function sizeRatio(policy: number, full: number): string {
  return Number.isFinite(policy) && full > 0 && policy >= 0 ? `${(policy / full).toFixed(2)}x` : '';
}

/**
 * The rows of a comparison (full cache first, the policy second): only what the policy changes gets a ratio — KV
 * bytes, bytes read per decode step, decode and text prefill (the verdicts of the spread rule), GPU memory — and its
 * fidelity; the prompt and the pictures' vision encoding are shared, one value without a ratio.
 */
export function comparisonRows(runs: readonly [RunMetrics, RunMetrics], comparison: CompareMeasurements): MetricRow[] {
  const [full, policy] = runs;
  const { vision, bytes } = comparison;
  const visionValue =
    full.imageTokens === 0
      ? '— (no image)'
      : vision.encoded > 0
        ? `${formatMs(vision.ms)}, once for both runs`
        : 'from the feature cache (vision tower not run)';
  const timed = (summary: CompareMeasurements['decode']['baseline']): string => (summary.count > 0 ? spreadText(summary) : '—');
  const each = (format: (run: RunMetrics) => string): string[] => runs.map(format);
  return [
    { name: 'Policy', values: each((r) => (r.budget === undefined ? r.policy : `${r.policy}, budget ${formatCount(r.budget)}`)), ratio: '' },
    {
      name: 'Prompt tokens',
      values: [`${formatCount(full.promptTokens)} (${formatCount(full.textTokens)} text + ${formatCount(full.imageTokens)} image)`],
      ratio: '',
      shared: true,
    },
    { name: 'Vision encoding', values: [visionValue], ratio: '', shared: true },
    {
      name: 'Text prefill (+ selection)',
      values: [timed(comparison.prefill.baseline), timed(comparison.prefill.candidate)],
      ratio: prefillVerdict(comparison),
    },
    { name: 'Decode per token', values: [timed(comparison.decode.baseline), timed(comparison.decode.candidate)], ratio: decodeVerdict(comparison) },
    { name: 'KV cache', values: each((r) => formatBytes(r.kvBytes)), ratio: sizeRatio(policy.kvBytes, full.kvBytes) },
    {
      name: 'Bytes read per decode step',
      values: [formatBytes(bytes.weightBytes + bytes.fullKvBytes), formatBytes(bytes.weightBytes + bytes.policyKvBytes)],
      ratio: `${bytes.ratio.toFixed(2)}x`,
    },
    { name: 'GPU memory in all', values: each((r) => formatBytes(r.totalGpuBytes)), ratio: sizeRatio(policy.totalGpuBytes, full.totalGpuBytes) },
    { name: 'Fidelity', values: ['reference', policy.fidelity ?? '—'], ratio: '' },
    { name: 'Generated tokens', values: each((r) => formatCount(r.generatedTokens)), ratio: '' },
  ];
}

export function metricRows(runs: readonly RunMetrics[]): MetricRow[] {
  return definitions.map((definition) => ({
    name: definition.name,
    values: runs.map((run) => definition.format(run)),
    ratio: runs.length >= 2 ? compareValues(definition.value(runs[0]), definition.value(runs[1]), definition.comparison) : '',
  }));
}

/** One chart row per generated-token count; run i contributes `kvBytes<i>` and `decodeMs<i>`. */
export type StepChartRow = { step: number } & Partial<Record<`kvBytes${number}` | `decodeMs${number}`, number>>;

/** Merges the runs' per-step series on the step number (runs may have generated different counts). */
export function stepChartRows(runs: readonly RunMetrics[]): StepChartRow[] {
  const byStep = new Map<number, StepChartRow>();
  runs.forEach((run, runIndex) => {
    for (const point of run.perStep) {
      let row = byStep.get(point.step);
      if (!row) {
        row = { step: point.step };
        byStep.set(point.step, row);
      }
      row[`kvBytes${runIndex}`] = point.kvBytes;
      row[`decodeMs${runIndex}`] = point.decodeMs;
    }
  });
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}
