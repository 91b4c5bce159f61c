/**
 * Step-time statistics shared by Compare and the benchmark: the median, the interquartile range (the spread), and
 * the rule that decides whether two sets of step times differ measurably.
 *
 * Why a rule at all: on a shared machine (and on SwiftShader, a CPU emulation) one decode step can take twice as long
 * as the next for reasons that have nothing to do with the KV policy. A ratio of two medians is only worth printing as
 * "1.2x faster" when the gap between them is larger than that step-to-step noise.
 */

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/**
 * The q-quantile (0 <= q <= 1) by linear interpolation between order statistics, as numpy's default
 * (`np.quantile(..., method="linear")`) computes it; NaN for no values.
 */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must be in [0, 1], got ${q}`);
  const sorted = [...values].sort((a, b) => a - b);
  const position = q * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(sorted.length - 1, below + 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (position - below);
}

/** Median and quartiles of one set of step times (ms). */
export interface StepTimeSummary {
  count: number;
  medianMs: number;
  /** First and third quartiles; their difference is the interquartile range. */
  q1Ms: number;
  q3Ms: number;
  iqrMs: number;
}

export function summarizeStepTimes(stepMs: readonly number[]): StepTimeSummary {
  const q1Ms = quantile(stepMs, 0.25);
  const q3Ms = quantile(stepMs, 0.75);
  return { count: stepMs.length, medianMs: median(stepMs), q1Ms, q3Ms, iqrMs: q3Ms - q1Ms };
}

/** Fewer steps than this on either side: the quartiles say nothing, so no verdict is given. */
export const MIN_STEPS_FOR_VERDICT = 4;

export type TimingVerdict = 'faster' | 'slower' | 'no-measurable-difference' | 'too-few-steps';

export interface TimingComparison {
  baseline: StepTimeSummary;
  candidate: StepTimeSummary;
  /** baseline median / candidate median: above 1 means the candidate is faster. NaN without steps. */
  speedup: number;
  verdict: TimingVerdict;
}

/**
 * Compares a candidate's step times with a baseline's (both measured under the same conditions, ideally interleaved).
 *
 * The rule: the difference is measurable only when the two middle halves do not overlap, i.e. the candidate's
 * quartile box [q1, q3] lies wholly below (faster) or wholly above (slower) the baseline's. When the boxes overlap,
 * the gap between the medians is inside the step-to-step spread and the verdict is "no measurable difference",
 * whatever the ratio of the medians.
 */
export function compareStepTimes(baselineMs: readonly number[], candidateMs: readonly number[]): TimingComparison {
  const baseline = summarizeStepTimes(baselineMs);
  const candidate = summarizeStepTimes(candidateMs);
  const speedup = baseline.medianMs / candidate.medianMs;
  let verdict: TimingVerdict;
  if (baseline.count < MIN_STEPS_FOR_VERDICT || candidate.count < MIN_STEPS_FOR_VERDICT) verdict = 'too-few-steps';
  else if (candidate.q3Ms < baseline.q1Ms) verdict = 'faster';
  else if (candidate.q1Ms > baseline.q3Ms) verdict = 'slower';
  else verdict = 'no-measurable-difference';
  return { baseline, candidate, speedup, verdict };
}

/**
 * One line for a person: "1.42x faster", "1.10x slower", "no measurable difference", "too few steps to tell".
 * `samples` names what was timed, for the too-few case ("steps", "prefills").
 */
export function describeTimingComparison(comparison: TimingComparison, samples = 'steps'): string {
  switch (comparison.verdict) {
    case 'faster':
      return `${comparison.speedup.toFixed(2)}x faster`;
    case 'slower':
      return `${(1 / comparison.speedup).toFixed(2)}x slower`;
    case 'no-measurable-difference':
      return 'no measurable difference';
    case 'too-few-steps':
      return `too few ${samples} to tell (${Math.min(comparison.baseline.count, comparison.candidate.count)} < ${MIN_STEPS_FOR_VERDICT})`;
  }
}

/** "12.3 ms (IQR 1.1)": a median with its spread, for tables and the Compare panel. */
export function formatMedianWithSpread(summary: StepTimeSummary, digits = 1): string {
  if (summary.count === 0) return '—';
  return `${summary.medianMs.toFixed(digits)} ms (IQR ${summary.iqrMs.toFixed(digits)})`;
}
