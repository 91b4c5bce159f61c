import { describe, expect, it } from 'vitest';
import { anls, answerWords, levenshtein, normalizeAnswer, wordAccuracy } from '../../src/sparsemm/ocr-metrics';

describe('levenshtein', () => {
  it('counts inserts, deletes and substitutions', () => {
    expect(levenshtein('', '')).toBe(0);
    expect(levenshtein('abc', '')).toBe(3);
    expect(levenshtein('', 'abcd')).toBe(4);
    expect(levenshtein('kitten', 'sitting')).toBe(3);
    expect(levenshtein('sitting', 'kitten')).toBe(3);
    expect(levenshtein('flaw', 'lawn')).toBe(2);
    expect(levenshtein('same', 'same')).toBe(0);
  });
});

describe('ANLS (DocVQA)', () => {
  it('normalizes case and white space before comparing', () => {
    expect(normalizeAnswer('  Total\tDue \n 42  ')).toBe('total due 42');
    expect(anls('  TOTAL   due 42 ', 'total due 42')).toBe(1);
  });

  it('gives 1 - NL for a near miss and 0 at or past the threshold', () => {
    // One substitution in 7 characters.
    expect(anls('invoise', 'invoice')).toBeCloseTo(1 - 1 / 7, 12);
    // kitten -> sitting: 3 edits over 7 characters, NL 0.4286 < 0.5.
    expect(anls('kitten', 'sitting')).toBeCloseTo(1 - 3 / 7, 12);
    // NL exactly 0.5 scores 0 (the rule is NL < threshold).
    expect(anls('ab', 'ax')).toBe(0);
    expect(anls('abcd', 'wxyz')).toBe(0);
  });

  it('scores an empty answer 0 against text, and 1 when both are empty', () => {
    expect(anls('', 'hello')).toBe(0);
    expect(anls('   ', 'hello')).toBe(0);
    expect(anls('', '')).toBe(1);
  });

  it('penalizes a longer answer by its extra characters', () => {
    // "the date is 12 may" against "12 may": 12 inserted characters over 18, NL 0.667 -> 0.
    expect(anls('the date is 12 May', '12 may')).toBe(0);
    // "12 may." : one extra character over 7.
    expect(anls('12 May.', '12 may')).toBeCloseTo(1 - 1 / 7, 12);
  });

  it('takes the best of several accepted answers and refuses none', () => {
    expect(anls('2019', ['two thousand nineteen', '2019'])).toBe(1);
    expect(() => anls('x', [])).toThrow(/no ground-truth/);
  });
});

describe('word accuracy', () => {
  it('is 1 for the exact reading, ignoring case and edge punctuation', () => {
    expect(answerWords('Hello, World!  ok')).toEqual(['hello', 'world', 'ok']);
    expect(wordAccuracy('HELLO world.', 'hello, world')).toBe(1);
  });

  it('counts the share of truth words found, each predicted word once', () => {
    expect(wordAccuracy('quick brown fax', 'quick brown fox')).toBeCloseTo(2 / 3, 12);
    expect(wordAccuracy('the', 'the the cat')).toBeCloseTo(1 / 3, 12);
    expect(wordAccuracy('cat the the', 'the the cat')).toBe(1);
  });

  it('handles empty strings and a longer answer', () => {
    expect(wordAccuracy('', 'some words')).toBe(0);
    expect(wordAccuracy('', '')).toBe(1);
    expect(wordAccuracy('anything', '')).toBe(0);
    // A longer answer that contains every word keeps word accuracy 1 (ANLS gives it 0).
    expect(wordAccuracy('the text says invoice total 42 dollars', 'invoice total 42')).toBe(1);
    expect(anls('the text says invoice total 42 dollars', 'invoice total 42')).toBe(0);
  });
});
