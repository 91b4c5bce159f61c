import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  accumulateSamples,
  decodeScoreFile,
  encodeScoreFile,
  type HeadScoreStore,
  loadCachedScores,
  matchingChunk,
  readingOrderText,
  saveCachedScores,
  scoreCacheKey,
  scoreSample,
  type ScoredStep,
} from '../../src/sparsemm/head-scoring';
import { headScoreMatrix, ScoreFileError } from '../../src/sparsemm/score-file';
import { llavaScorePath } from '../helpers/reference-data';

const eos = 99;

describe('the "occurs in exactly one chunk" rule', () => {
  const chunks = ['silver apple', 'river', 'Garden road'];

  it('matches a token contained in exactly one chunk (substring, after stripping)', () => {
    expect(matchingChunk(' silver', chunks)).toBe(0);
    expect(matchingChunk('river', chunks)).toBe(1); // "silver" does not contain "river"
    expect(matchingChunk('road\n', chunks)).toBe(2);
    expect(matchingChunk('den r', chunks)).toBe(2); // a piece spanning a space inside one chunk
  });

  it('rejects tokens found in several chunks, in none, or blank', () => {
    expect(matchingChunk('ver', chunks)).toBe(-1); // silver and river
    expect(matchingChunk('e', chunks)).toBe(-1);
    expect(matchingChunk('zebra', chunks)).toBe(-1);
    expect(matchingChunk('garden', chunks)).toBe(-1); // case-sensitive, as Python's `in`
    expect(matchingChunk('  ', chunks)).toBe(-1);
    expect(matchingChunk('', ['only chunk'])).toBe(-1);
  });
});

describe('scoring one sample (official hit_score: += 1/|chunk tokens| when a head\'s top-1 key is inside)', () => {
  // 2 layers x 2 heads, top1 row-major [l0h0, l0h1, l1h0, l1h1]. Chunk A covers 4 positions, chunk B 2.
  const chunks = [
    { text: 'silver apple', positions: [10, 11, 12, 13] },
    { text: 'river', positions: [20, 21] },
  ];
  const steps: ScoredStep[] = [
    { tokenId: 1, text: ' silver', top1: [10, 5, 13, 20] }, // A: heads 0 and 2 hit (+0.25); head 3 looks at B: no
    { tokenId: 2, text: 'river', top1: [20, 21, 10, 3] }, // B: heads 0 and 1 hit (+0.5)
    { tokenId: 3, text: 'e', top1: [10, 10, 10, 10] }, // in both chunks: not scored
    { tokenId: 4, text: ' apple', top1: [100, 12, 0, 11] }, // A: heads 1 and 3 (+0.25)
    { tokenId: eos, text: '<end_of_utterance>', top1: [20, 20, 20, 20] }, // EOS: the loop ends
    { tokenId: 2, text: 'river', top1: [20, 20, 20, 20] }, // after EOS: not scored
  ];

  it('adds 1/|positions| per hit step, with no further normalisation', () => {
    const { scores, matchedChunk } = scoreSample(steps, chunks, 2, 2, [eos]);
    expect(Array.from(scores)).toEqual([0.75, 0.75, 0.25, 0.25]);
    expect(matchedChunk).toEqual([0, 1, -1, 0, -1, -1]);
  });

  it('without an EOS list every step counts (teacher forcing feeds no EOS)', () => {
    const { scores } = scoreSample(steps, chunks, 2, 2);
    expect(Array.from(scores)).toEqual([1.25, 1.25, 0.75, 0.75]);
  });

  it('a chunk whose box covers no image token scores nothing', () => {
    const { scores, matchedChunk } = scoreSample([{ tokenId: 1, text: 'river', top1: [0, 0, 0, 0] }], [{ text: 'river', positions: [] }], 2, 2);
    expect(Array.from(scores)).toEqual([0, 0, 0, 0]);
    expect(matchedChunk).toEqual([-1]);
  });

  it('refuses a step with the wrong number of heads', () => {
    expect(() => scoreSample([{ tokenId: 1, text: 'x', top1: [1, 2, 3] }], chunks, 2, 2)).toThrow(/top-1/);
  });

  it('collects samples into the official file; a head\'s score is the mean of its list', () => {
    const first = scoreSample(steps, chunks, 2, 2, [eos]);
    const second = scoreSample([{ tokenId: 2, text: 'river', top1: [21, 0, 0, 20] }], chunks, 2, 2, [eos]);
    const file = accumulateSamples(2, 2, [first, second]);
    expect(file).toEqual({ '0-0': [0.75, 0.5], '0-1': [0.75, 0], '1-0': [0.25, 0], '1-1': [0.25, 0.5] });
    expect(headScoreMatrix(file, 2, 2)).toEqual([[0.625, 0.375], [0.125, 0.375]]);
  });
});

describe('teacher-forcing ground truth', () => {
  it('orders chunks top to bottom, then left to right on a line', () => {
    const text = readingOrderText([
      { text: 'third', box: { x: 10, y: 200, height: 20 } },
      { text: 'second', box: { x: 300, y: 12, height: 30 } },
      { text: 'first', box: { x: 20, y: 10, height: 20 } },
    ]);
    expect(text).toBe('first\nsecond\nthird');
  });
});

describe('score files per model: cache key, store, shape checks', () => {
  const memoryStore = (): HeadScoreStore & { entries: Map<string, string> } => {
    const entries = new Map<string, string>();
    return {
      entries,
      get: async (key) => entries.get(key) ?? null,
      put: async (key, text) => void entries.set(key, text),
      delete: async (key) => void entries.delete(key),
    };
  };
  const shape = { layers: 2, heads: 2 };
  const file = { '0-0': [0.5], '0-1': [0], '1-0': [0.25], '1-1': [1] };

  it('keys are stable, distinct per source and URL-safe', () => {
    expect(scoreCacheKey('hub/HuggingFaceTB/SmolVLM-256M-Instruct@main')).toBe(scoreCacheKey('hub/HuggingFaceTB/SmolVLM-256M-Instruct@main'));
    expect(scoreCacheKey('hub/a/b@main')).not.toBe(scoreCacheKey('hub/a/c@main'));
    expect(scoreCacheKey('url/http://x/y?z')).toMatch(/^visual-head-scores\/v\d+\/[A-Za-z0-9%._-]+\.json$/);
    expect(() => scoreCacheKey(' ')).toThrow();
  });

  it('round-trips through a store and drops an entry that no longer fits the model', async () => {
    const store = memoryStore();
    expect(await loadCachedScores(store, 'hub/a/b@main', shape)).toBeNull();
    await saveCachedScores(store, 'hub/a/b@main', file, shape);
    expect(await loadCachedScores(store, 'hub/a/b@main', shape)).toEqual(file);
    // The same source id now serves a 3-layer model: the cached file is refused and removed.
    expect(await loadCachedScores(store, 'hub/a/b@main', { layers: 3, heads: 2 })).toBeNull();
    expect(store.entries.size).toBe(0);
  });

  it('refuses to save or import a file of another shape, naming both shapes', async () => {
    await expect(saveCachedScores(memoryStore(), 'hub/a/b@main', file, { layers: 2, heads: 3 })).rejects.toThrow(ScoreFileError);
    expect(() => encodeScoreFile(file, { layers: 1, heads: 2 })).toThrow(/covers 2 layers x 2 heads/);
    expect(() => decodeScoreFile('{"0-0": [1], "0-1": "x"}', shape)).toThrow(ScoreFileError);
  });

  it('the official LLaVA-v1.6 file imports for a 32 x 32 model and is refused for SmolVLM (30 x 9)', () => {
    const text = readFileSync(llavaScorePath, 'utf8');
    expect(Object.keys(decodeScoreFile(text, { layers: 32, heads: 32 }))).toHaveLength(1024);
    expect(() => decodeScoreFile(text, { layers: 30, heads: 9 })).toThrow(/32 layers x 32 heads .* 30 layers x 9 query heads: this file was made for another model/);
  });
});
