import { describe, expect, it } from 'vitest';
import { firstDifference, parseBudgetList, parsePolicyList, summarizeFidelity, SweepInputError, sweepPolicies } from '../../src/sparsemm/fidelity';

describe('fidelity summary', () => {
  it('averages agreement and KL over the steps', () => {
    const summary = summarizeFidelity([
      { kl: 0, top1Agrees: true, referenceRank: 1 },
      { kl: 0.5, top1Agrees: false, referenceRank: 3 },
      { kl: 0.25, top1Agrees: true, referenceRank: 1 },
      { kl: 0.05, top1Agrees: true, referenceRank: 1 },
    ]);
    expect(summary).toEqual({ top1Agreement: 0.75, agreedSteps: 3, steps: 4, meanKl: 0.2, maxKl: 0.5 });
  });

  it('gives agreement 1 and KL 0 for identical steps and for no steps', () => {
    const same = summarizeFidelity([{ kl: 0, top1Agrees: true, referenceRank: 1 }, { kl: 0, top1Agrees: true, referenceRank: 1 }]);
    expect(same.top1Agreement).toBe(1);
    expect(same.meanKl).toBe(0);
    expect(same.maxKl).toBe(0);
    expect(summarizeFidelity([])).toEqual({ top1Agreement: 1, agreedSteps: 0, steps: 0, meanKl: 0, maxKl: 0 });
  });

  it('refuses a negative or NaN KL', () => {
    expect(() => summarizeFidelity([{ kl: -0.1, top1Agrees: true, referenceRank: 1 }])).toThrow(RangeError);
    expect(() => summarizeFidelity([{ kl: Number.NaN, top1Agrees: true, referenceRank: 1 }])).toThrow(RangeError);
  });
});

describe('first difference', () => {
  it('is null for the same answer and the first differing index otherwise', () => {
    expect(firstDifference([1, 2, 3], [1, 2, 3])).toBeNull();
    expect(firstDifference([], [])).toBeNull();
    expect(firstDifference([1, 2, 3], [1, 9, 3])).toBe(1);
    expect(firstDifference([1, 2, 3], [7])).toBe(0);
  });

  it('is the shorter length when one answer is a prefix of the other', () => {
    expect(firstDifference([1, 2, 3], [1, 2])).toBe(2);
    expect(firstDifference([1, 2], [1, 2, 3, 4])).toBe(2);
    expect(firstDifference([], [5])).toBe(0);
  });
});

describe('budget list', () => {
  it('parses, sorts and accepts commas or spaces', () => {
    expect(parseBudgetList('256,64, 128', 32)).toEqual([64, 128, 256]);
    expect(parseBudgetList('40 100000', 32)).toEqual([40, 100000]);
  });

  it('refuses an empty list, non-numbers, budgets within the window and repeats', () => {
    expect(() => parseBudgetList('', 32)).toThrow(/empty/);
    expect(() => parseBudgetList(' , ', 32)).toThrow(SweepInputError);
    expect(() => parseBudgetList('64,abc', 32)).toThrow(/"abc" is not a whole number/);
    expect(() => parseBudgetList('64.5', 32)).toThrow(/not a whole number/);
    expect(() => parseBudgetList('-64', 32)).toThrow(/not a whole number/);
    expect(() => parseBudgetList('32,64', 32)).toThrow(/Budget 32 must exceed the observation window \(32/);
    expect(() => parseBudgetList('64,64', 32)).toThrow(/listed twice/);
  });
});

describe('policy list', () => {
  it('parses known policies in the given order, case-insensitively', () => {
    expect(parsePolicyList('SparseMM,snapkv adakv')).toEqual(['sparsemm', 'snapkv', 'adakv']);
    expect(sweepPolicies).not.toContain('full');
    expect(parsePolicyList(sweepPolicies.join(','))).toEqual(sweepPolicies);
  });

  it('refuses an empty list, unknown names, full and repeats', () => {
    expect(() => parsePolicyList('')).toThrow(/empty/);
    expect(() => parsePolicyList('sparsemm,h2o')).toThrow(/Unknown policy "h2o": choose from snapkv/);
    expect(() => parsePolicyList('constructor')).toThrow(/Unknown policy/);
    expect(() => parsePolicyList('full')).toThrow(/reference/);
    expect(() => parsePolicyList('snapkv,SNAPKV')).toThrow(/listed twice/);
  });
});
