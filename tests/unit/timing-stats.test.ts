import { describe, expect, it } from 'vitest';
import {
  compareStepTimes,
  describeTimingComparison,
  formatMedianWithSpread,
  median,
  quantile,
  summarizeStepTimes,
} from '../../src/sparsemm/timing-stats';

describe('median and quantiles', () => {
  it('match numpy (linear interpolation)', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(Number.isNaN(median([]))).toBe(true);
    // np.quantile([1, 2, 3, 4], [0.25, 0.75]) == [1.75, 3.25]
    expect(quantile([4, 3, 2, 1], 0.25)).toBeCloseTo(1.75, 12);
    expect(quantile([1, 2, 3, 4], 0.75)).toBeCloseTo(3.25, 12);
    expect(quantile([7], 0.25)).toBe(7);
    expect(() => quantile([1], 1.5)).toThrow(RangeError);
  });

  it('summarizes step times with the interquartile range', () => {
    const s = summarizeStepTimes([10, 12, 11, 13, 100]);
    expect(s.medianMs).toBe(12);
    expect(s.q1Ms).toBe(11);
    expect(s.q3Ms).toBe(13);
    expect(s.iqrMs).toBe(2);
    expect(formatMedianWithSpread(s)).toBe('12.0 ms (IQR 2.0)');
  });
});

describe('the spread rule', () => {
  it('reads "no measurable difference" when the medians differ inside the spread', () => {
    // The case: medians 1.57x apart, but the step times overlap widely.
    const full = [962, 791, 500, 620, 700, 880];
    const sparse = [480, 610, 420, 700, 530, 750];
    const c = compareStepTimes(full, sparse);
    expect(c.speedup).toBeGreaterThan(1.2);
    expect(c.verdict).toBe('no-measurable-difference');
    expect(describeTimingComparison(c)).toBe('no measurable difference');
  });

  it('gives a ratio when the middle halves do not overlap', () => {
    const full = [10, 10.5, 11, 10.2, 10.8, 10.4];
    const fast = [5, 5.2, 5.1, 5.3, 4.9, 5.0];
    const c = compareStepTimes(full, fast);
    expect(c.verdict).toBe('faster');
    expect(describeTimingComparison(c)).toMatch(/^2\.0\dx faster$/);
    const slow = compareStepTimes(fast, full);
    expect(slow.verdict).toBe('slower');
    expect(describeTimingComparison(slow)).toMatch(/^2\.0\dx slower$/);
  });

  it('treats identical distributions as no difference and refuses a verdict from too few steps', () => {
    const same = [5, 6, 7, 8];
    expect(compareStepTimes(same, same).verdict).toBe('no-measurable-difference');
    const fewer = compareStepTimes([962, 791], [100, 110]);
    expect(fewer.verdict).toBe('too-few-steps');
    expect(describeTimingComparison(fewer)).toBe('too few steps to tell (2 < 4)');
    expect(describeTimingComparison(fewer, 'prefills')).toBe('too few prefills to tell (2 < 4)');
  });

  it('needs the boxes apart, not touching: equal quartiles at the edge read no difference', () => {
    // Candidate q3 (5) equals baseline q1 (5): the boxes share a point.
    const c = compareStepTimes([4, 5, 6, 7, 8], [2, 3, 4, 5, 6]);
    expect(c.baseline.q1Ms).toBe(5);
    expect(c.candidate.q3Ms).toBe(5);
    expect(c.verdict).toBe('no-measurable-difference');
  });

  it('gives no verdict and no figure without steps (a one-token answer)', () => {
    const none = compareStepTimes([], []);
    expect(none.verdict).toBe('too-few-steps');
    expect(Number.isNaN(none.speedup)).toBe(true);
    expect(describeTimingComparison(none)).toBe('too few steps to tell (0 < 4)');
    expect(formatMedianWithSpread(none.baseline)).toBe('—');
    // One side short is enough to withhold the verdict, however far apart the medians are.
    expect(compareStepTimes([100, 100, 100, 100], [1, 1, 1]).verdict).toBe('too-few-steps');
  });
});
