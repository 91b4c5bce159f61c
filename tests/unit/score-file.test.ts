import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { llavaScorePath } from '../helpers/reference-data';
import {
  HeadScoreAccumulator,
  ScoreFileError,
  headScoreMatrix,
  numpyMean,
  numpyPairwiseSum,
  parseScoreFile,
  scoreFileShape,
  serializeScoreFile,
  validateScoreFile,
} from '../../src/sparsemm/score-file';

const llavaText = readFileSync(llavaScorePath, 'utf8');

describe('parseScoreFile / validateScoreFile', () => {
  it('reads the official LLaVA file (32 x 32 heads, two samples each)', () => {
    const file = parseScoreFile(llavaText);
    expect(Object.keys(file)).toHaveLength(1024);
    expect(scoreFileShape(file)).toEqual({ layers: 32, heads: 32 });
    expect(file['0-2']).toEqual([5.747126436781609e-6, 0.001428733922160041]);
  });

  it('rejects malformed files with messages that say what is wrong', () => {
    const bad: [string, RegExp][] = [
      ['{"0-0": [1]', /not valid JSON/],
      ['[1, 2]', /must be a JSON object/],
      ['{}', /no heads/],
      ['{"0_1": [1]}', /"0_1" is not of the form/],
      ['{"a-1": [1]}', /"a-1" is not of the form/],
      ['{"0-1": 0.5}', /"0-1" must be an array/],
      ['{"0-1": []}', /"0-1" is empty/],
      ['{"0-1": [0.5, "x"]}', /"0-1"\[1\] is "x", not a finite number/],
      ['{"0-1": [null]}', /"0-1"\[0\] is null/],
    ];
    for (const [text, message] of bad) {
      expect(() => parseScoreFile(text), text).toThrow(ScoreFileError);
      expect(() => parseScoreFile(text), text).toThrow(message);
    }
    expect(() => validateScoreFile({ '0-0': [Number.NaN] })).toThrow(/not a finite number/);
    expect(() => validateScoreFile({ '0-0': [Infinity] })).toThrow(/not a finite number/);
  });
});

describe('headScoreMatrix', () => {
  it('averages each head and places it by its key, whatever the key order', () => {
    const file = validateScoreFile({ '1-1': [4, 8], '0-0': [1], '0-1': [0, 1, 2], '1-0': [0.5, 0.5] });
    expect(headScoreMatrix(file, 2, 2)).toEqual([
      [1, 1],
      [0.5, 6],
    ]);
  });

  it('refuses a file made for another model, naming both shapes', () => {
    const file = parseScoreFile(llavaText);
    expect(() => headScoreMatrix(file, 30, 9)).toThrow(ScoreFileError);
    expect(() => headScoreMatrix(file, 30, 9)).toThrow('score file covers 32 layers x 32 heads (1024 entries) but the model has 30 layers x 9 query heads');
  });

  it('names missing heads and catches aliased keys', () => {
    expect(() => headScoreMatrix(validateScoreFile({ '0-0': [1], '1-1': [1] }), 2, 2)).toThrow('score file lacks heads 0-1, 1-0');
    expect(() => headScoreMatrix(validateScoreFile({ '0-0': [1], '0-1': [1], '00-1': [2] }), 1, 2)).toThrow(/3 entries, expected 2/);
  });

  it('averages the LLaVA file as np.mean does', () => {
    const matrix = headScoreMatrix(parseScoreFile(llavaText), 32, 32);
    expect(matrix[0][2]).toBe((5.747126436781609e-6 + 0.001428733922160041) / 2);
    expect(matrix[0][0]).toBe(0.0006077544977698808 / 2);
  });
});

describe('numpy-compatible summation', () => {
  it('sums short lists in order', () => {
    // 2^53 + 1 rounds back to 2^53 (ties to even), so a plain loop loses the ones.
    expect(numpyPairwiseSum([2 ** 53, 1, 1, 1, 1, 1, -(2 ** 53)])).toBe(0);
  });

  it('uses eight interleaved partial sums from eight items on, like numpy', () => {
    // Partials a0..a7 combine as ((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7)) = ((2^53) + 2) + 4 = 2^53 + 6, then + a8 = 6;
    // a sequential loop would give 0.
    expect(numpyPairwiseSum([2 ** 53, 1, 1, 1, 1, 1, 1, 1, -(2 ** 53)])).toBe(6);
  });

  it('splits long lists in halves that are multiples of 8, and agrees with exact sums', () => {
    const values = Array.from({ length: 1000 }, (_, i) => (i % 7) * 0.25);
    expect(numpyPairwiseSum(values)).toBe(values.reduce((a, b) => a + b, 0));
    // 300 items: halves of 144 (150 - 150 % 8) and 156; the 144 split again into 72 + 72.
    // Items 0..71 (72 >= 8): lane 0 holds 2^53 and adds eight ones, each 2^53 + 1 rounding back to 2^53 (ties to
    // even); lanes 1..7 hold 9 ones each. ((2^53 + 9) + 18) + 36: 2^53 + 9 rounds to 2^53 + 8, then + 18 + 36
    // = 2^53 + 62 exactly. Items 72..143 add 72, the second half -2^53: total 134 (a plain loop gives 0).
    const tricky = [2 ** 53, ...new Array<number>(143).fill(1), -(2 ** 53), ...new Array<number>(155).fill(0)];
    expect(numpyPairwiseSum(tricky)).toBe(134);
    expect(numpyMean([1, 2, 3, 4])).toBe(2.5);
    expect(() => numpyMean([])).toThrow(RangeError);
  });
});

describe('serializeScoreFile and HeadScoreAccumulator', () => {
  it('writes row-major key order and round-trips', () => {
    const file = validateScoreFile({ '1-0': [3], '0-1': [2], '0-0': [1], '1-1': [4] });
    const text = serializeScoreFile(file);
    expect(text).toBe('{"0-0":[1],"0-1":[2],"1-0":[3],"1-1":[4]}');
    expect(parseScoreFile(text)).toEqual(file);
  });

  it('round-trips the official file byte-for-byte in its values and order', () => {
    const file = parseScoreFile(llavaText);
    const again = parseScoreFile(serializeScoreFile(file));
    expect(Object.keys(again)).toEqual(Object.keys(file));
    expect(again).toEqual(file);
  });

  it('appends one score per head per sample', () => {
    const acc = new HeadScoreAccumulator(2, 3);
    expect(() => acc.toFile()).toThrow(/no samples/);
    acc.addSample([
      [1, 0, 0],
      [0, 0.5, 0],
    ]);
    acc.addSample(new Float64Array([0, 0, 1, 0, 0.25, 3]));
    expect(acc.sampleCount).toBe(2);
    const file = acc.toFile();
    expect(Object.keys(file)).toEqual(['0-0', '0-1', '0-2', '1-0', '1-1', '1-2']);
    expect(file['1-1']).toEqual([0.5, 0.25]);
    expect(acc.means()).toEqual([
      [0.5, 0, 0.5],
      [0, 0.375, 1.5],
    ]);
    expect(() => acc.addSample([1, 2])).toThrow(/2 head scores, expected 2 x 3 = 6/);
    expect(() => acc.addSample([0, 0, 0, 0, 0, Number.NaN])).toThrow(/not a finite number/);
    expect(acc.sampleCount).toBe(2);
  });
});
