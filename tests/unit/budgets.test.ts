import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  adakvCapacities,
  defaultBudgetParams,
  headCapacities,
  keptLengths,
  pyramidLayerCapacities,
  roundHalfEven,
  sparsemmRawCapacities,
  streamingKeptPositions,
  totalKeptTokens,
  type BudgetParams,
} from '../../src/sparsemm/budgets';
import { randomHeadScores } from '../../src/sparsemm/random';
import { headScoreMatrix, parseScoreFile } from '../../src/sparsemm/score-file';

import { llavaScorePath } from '../helpers/reference-data';

function params(overrides: Partial<BudgetParams>): BudgetParams {
  return { ...defaultBudgetParams, ...overrides };
}

const sum2d = (m: number[][]): number => m.flat().reduce((a, b) => a + b, 0);

describe('roundHalfEven (torch.round)', () => {
  it('rounds .5 to the even neighbour and everything else to the nearest', () => {
    expect([0.5, 1.5, 2.5, 3.5, 2.4999, 2.5001, 7, -0.5, -1.5].map(roundHalfEven)).toEqual([0, 2, 2, 4, 2, 3, 7, 0, -2]);
  });
});

describe('sparsemm capacities', () => {
  // L=2, Hq=4, Hkv=2 (groups of 2), budget 40, window 8 -> base 32; ratio 0.25 -> min_cache = int(8.0) = 8;
  // remain = (32 - 8) * L * Hq // G = 24 * 2 * 4 // 2 = 96.
  // Scores (total 8) normalise to [.125 .125 .25 0] and [0 0 .375 .125];
  // KV sums: layer 0 -> [.25, .25], layer 1 -> [0, .5]; caps = round(s * 96 + 8) = [32, 32], [8, 56].
  const scores = [
    [1, 1, 2, 0],
    [0, 0, 3, 1],
  ];
  const p = params({ budget: 40, window: 8, ratio: 0.25 });

  it('splits the budget by normalised score with GQA group sums (hand-computed)', () => {
    const result = headCapacities('sparsemm', { layers: 2, qHeads: 4, kvHeads: 2, promptLength: 1000, params: p, headScores: scores });
    expect(result.compress).toBe(true);
    expect(result.attentionDependent).toBe(false);
    expect(result.rawCapacity).toEqual([
      [32, 32],
      [8, 56],
    ]);
    expect(result.capacity).toEqual(result.rawCapacity);
    expect(result.prefixLength).toBe(992);
    expect(result.windowLength).toBe(8);
    // Every head's kept length adds the window; the total is base * L * Hkv + window * L * Hkv here.
    expect(keptLengths(result)).toEqual([
      [40, 40],
      [16, 64],
    ]);
    expect(totalKeptTokens(result)).toBe(160);
  });

  it('clamps a capacity to the prefix without giving the excess to other heads; compresses at promptLength == budget', () => {
    // promptLength 40 = budget: prefix 32, so the 56-token head keeps 32; the others are unchanged.
    const result = headCapacities('sparsemm', { layers: 2, qHeads: 4, kvHeads: 2, promptLength: 40, params: p, headScores: scores });
    expect(result.compress).toBe(true);
    expect(result.capacity).toEqual([
      [32, 32],
      [8, 32],
    ]);
    expect(result.rawCapacity[1][1]).toBe(56);
  });

  it('compresses nothing when the prompt is shorter than the budget (every head keeps the whole prompt)', () => {
    const result = headCapacities('sparsemm', { layers: 2, qHeads: 4, kvHeads: 2, promptLength: 39, params: p, headScores: scores });
    expect(result.compress).toBe(false);
    expect(result.prefixLength).toBe(31);
    expect(result.capacity).toEqual([
      [31, 31],
      [31, 31],
    ]);
    expect(keptLengths(result).flat().every((kept) => kept === 39)).toBe(true);
    // A prompt shorter than the window: nothing compressed, all of it kept.
    const tiny = headCapacities('sparsemm', { layers: 2, qHeads: 4, kvHeads: 2, promptLength: 5, params: p, headScores: scores });
    expect(tiny.capacity.flat()).toEqual([0, 0, 0, 0]);
    expect(keptLengths(tiny).flat()).toEqual([5, 5, 5, 5]);
  });

  it('rounds exact halves to even like torch.round', () => {
    // L=1, Hq=Hkv=2, base 10, ratio 0 -> min_cache 0, remain 20. Scores [1, 7] -> [.125, .875] -> 2.5, 17.5 -> 2, 18.
    const caps = sparsemmRawCapacities([[1, 7]], 1, 2, 2, params({ budget: 42, window: 32, ratio: 0 }));
    expect(caps).toEqual([[2, 18]]);
  });

  it('truncates min_cache = int(base * ratio) in float64 (100 * 0.29 = 28.999999999999996 -> 28)', () => {
    // base 100, ratio 0.29: all-zero scores but one, so every other head gets exactly min_cache.
    const caps = sparsemmRawCapacities([[1, 0, 0, 0]], 1, 4, 4, params({ budget: 132, window: 32, ratio: 0.29 }));
    // remain = (100 - 28) * 1 * 4 = 288; head 0 gets 288 + 28 = 316.
    expect(caps).toEqual([[316, 28, 28, 28]]);
  });

  it('asks for scores and rejects unusable ones', () => {
    const base = { layers: 2, qHeads: 4, kvHeads: 2, promptLength: 1000, params: p };
    expect(() => headCapacities('sparsemm', base)).toThrow(/needs head scores/);
    expect(() => headCapacities('sparsemm', { ...base, headScores: [[1, 1, 1]] })).toThrow(/1 x 3 but the model has 2 layers x 4/);
    // All zero: an even split, exactly what equal scores give (the official code would divide by zero).
    const zero = headCapacities('sparsemm', { ...base, headScores: [[0, 0, 0, 0], [0, 0, 0, 0]] });
    expect(zero.capacity).toEqual(headCapacities('sparsemm', { ...base, headScores: [[1, 1, 1, 1], [1, 1, 1, 1]] }).capacity);
    expect(() => headCapacities('sparsemm', { ...base, headScores: [[0, -1, 0, 2], [0, 0, 0, 0]] })).toThrow(/non-negative/);
  });
});

describe('sparsemm on the official LLaVA-NeXT-Vicuna-7B score file (L=32, H=K=32, budget 256)', () => {
  const file = parseScoreFile(readFileSync(llavaScorePath, 'utf8'));
  const scores = headScoreMatrix(file, 32, 32);
  const result = headCapacities('sparsemm', { layers: 32, qHeads: 32, kvHeads: 32, promptLength: 100_000, params: defaultBudgetParams, headScores: scores });

  it('matches a straightforward transcription of the DESIGN.md formula', () => {
    // DESIGN.md §3: s /= sum(s); s_kv = s (no GQA here); base = 256 - 32 = 224; min_cache = floor(224 * 0.1) = 22;
    // remain = (224 - 22) * 32 * 32 = 206848; cap = round(s_kv * remain + min_cache).
    const means = Object.values(file).map((list) => list.reduce((a, b) => a + b, 0) / list.length);
    const total = means.reduce((a, b) => a + b, 0);
    const expected: number[][] = [];
    for (let layer = 0; layer < 32; layer++) {
      expected.push(means.slice(layer * 32, layer * 32 + 32).map((m) => roundHalfEven((m / total) * 206848 + 22)));
    }
    expect(result.capacity).toEqual(expected);
  });

  it('matches values computed by a Python transcription of the official SparseMM.__init__', () => {
    // python3: means in file order, norm = m / sum(means), caps = round(norm * 206848 + 22) (Python round = half-even).
    expect(result.capacity[0]).toEqual([27, 22, 33, 223, 26, 23, 25, 399, 28, 32, 24, 379, 23, 23, 27, 22, 55, 22, 23, 28, 22, 57, 24, 1041, 503, 22, 24, 25, 24, 31, 607, 39]);
    expect(result.capacity.map((row) => row[7])).toEqual([
      399, 22, 38, 26, 25, 30, 25, 24, 23, 26, 48, 410, 25, 24, 2536, 25, 39, 27, 27, 315, 26, 25, 35, 713, 24, 67, 25, 43, 663, 26, 34, 25,
    ]);
    expect(sum2d(result.capacity)).toBe(229369);
    expect(Math.max(...result.capacity.flat())).toBe(5337);
  });

  it('keeps the invariants: every head >= min_cache, total = remain + min_cache * L * K up to rounding', () => {
    expect(Math.min(...result.capacity.flat())).toBe(22);
    const ideal = (224 - 22) * 32 * 32 + 22 * 32 * 32; // = 224 * 1024 = 229376
    expect(Math.abs(sum2d(result.capacity) - ideal)).toBeLessThanOrEqual((32 * 32) / 2);
  });

  it('clamps the big visual heads to the prefix of a short prompt', () => {
    const short = headCapacities('sparsemm', { layers: 32, qHeads: 32, kvHeads: 32, promptLength: 1000, params: defaultBudgetParams, headScores: scores });
    expect(short.capacity[0][23]).toBe(968); // raw 1041 > prefix 968
    expect(short.capacity[0][7]).toBe(399);
    expect(Math.max(...short.capacity.flat())).toBe(968);
  });
});

describe('snapkv, full and streamingllm capacities', () => {
  const shape = { layers: 3, qHeads: 4, kvHeads: 2 };
  const p = params({ budget: 48, window: 16 });

  it('snapkv keeps base = budget - window in every head once the prompt reaches the budget', () => {
    const long = headCapacities('snapkv', { ...shape, promptLength: 48, params: p });
    expect(long.compress).toBe(true);
    expect(long.capacity).toEqual([
      [32, 32],
      [32, 32],
      [32, 32],
    ]);
    const short = headCapacities('snapkv', { ...shape, promptLength: 47, params: p });
    expect(short.compress).toBe(false);
    expect(short.capacity.flat()).toEqual(new Array(6).fill(31));
  });

  it('full never compresses', () => {
    const full = headCapacities('full', { ...shape, promptLength: 5000, params: p });
    expect(full.compress).toBe(false);
    expect(full.capacity.flat()).toEqual(new Array(6).fill(4984));
    expect(totalKeptTokens(full)).toBe(5000 * 6);
  });

  it('streamingllm keeps the sinks and the most recent tokens', () => {
    // budget 16, window 4, 2 sinks, prompt 100: recent = 16 - 2 = 14 -> positions 86..99 (the last 4 are the window).
    const sp = params({ budget: 16, window: 4, sinkTokens: 2 });
    expect(Array.from(streamingKeptPositions(100, sp))).toEqual([0, 1, ...Array.from({ length: 14 }, (_, i) => 86 + i)]);
    // Exactly the budget: everything, no duplicates.
    expect(Array.from(streamingKeptPositions(16, sp))).toEqual(Array.from({ length: 16 }, (_, i) => i));
    // Shorter than the budget: everything.
    expect(streamingKeptPositions(10, sp).length).toBe(10);
    // More sinks than base (12): clamped so that the window is still kept.
    const kept = Array.from(streamingKeptPositions(100, params({ budget: 16, window: 4, sinkTokens: 50 })));
    expect(kept).toEqual([...Array.from({ length: 12 }, (_, i) => i), 96, 97, 98, 99]);
    const caps = headCapacities('streamingllm', { ...shape, promptLength: 100, params: sp });
    expect(caps.capacity.flat()).toEqual(new Array(6).fill(12));
  });
});

describe('pyramidkv schedule', () => {
  // budget 72, window 8 -> base 64; beta 20 -> min = 64 // 20 = 3, max = 128 - 3 = 125.
  const p = params({ budget: 72, window: 8 });

  it('decreases linearly by layer for a long prompt', () => {
    // steps = (125 - 3) // 3 = 40 -> [125, 85, 45, 5].
    expect(pyramidLayerCapacities(4, 10_000, p)).toEqual([125, 85, 45, 5]);
    const caps = headCapacities('pyramidkv', { layers: 4, qHeads: 2, kvHeads: 2, promptLength: 10_000, params: p });
    expect(caps.capacity).toEqual([
      [125, 125],
      [85, 85],
      [45, 45],
      [5, 5],
    ]);
  });

  it('shrinks the top to the prefix when the prompt is short (max = prefix, min = 2 * base - max)', () => {
    // prompt 100 -> prefix 92 <= 125: max 92, min 128 - 92 = 36, steps = 56 // 3 = 18 -> [92, 74, 56, 38].
    expect(pyramidLayerCapacities(4, 100, p)).toEqual([92, 74, 56, 38]);
  });

  it('uses floor division for the negative step of a prompt below the budget, where nothing is compressed', () => {
    // prompt 50 -> prefix 42: max 42, min 86, steps = -44 // 3 = -15 (not -14) -> [42, 57, 72, 87].
    expect(pyramidLayerCapacities(4, 50, p)).toEqual([42, 57, 72, 87]);
    const caps = headCapacities('pyramidkv', { layers: 4, qHeads: 2, kvHeads: 1, promptLength: 50, params: p });
    expect(caps.compress).toBe(false);
    expect(caps.capacity.flat()).toEqual([42, 42, 42, 42]);
  });

  it('handles a single layer (the official code would divide by zero)', () => {
    expect(pyramidLayerCapacities(1, 10_000, p)).toEqual([125]);
  });

  it('honours beta', () => {
    // beta 4: min = 16, max = 112, 3 layers: steps = 96 // 2 = 48 -> [112, 64, 16].
    expect(pyramidLayerCapacities(3, 10_000, params({ budget: 72, window: 8, pyramidBeta: 4 }))).toEqual([112, 64, 16]);
  });
});

describe('adakv capacities', () => {
  it('counts the normalised top entries per head (hand-computed)', () => {
    // base 5 (budget 7, window 2), floor ratio 0.2 -> floor = int(1.0) = 1. Two KV heads, 10 picks in all.
    // Head 0: 16 x 1/16, top-5 mass 5/16 -> every entry 1/16 * 5/16 = 0.0195.
    // Head 1: [.5 .2 .1 .08 .06 .03 .02 .01 0 x8], top-5 mass .94 -> [.47 .188 .094 .0752 .0564 .0282 .0188 .0094 ...].
    // Top 10 overall: head 1's six entries above 0.0195, then four of head 0 -> counts [4, 6]
    // -> caps round(4 * .8 + 1) = round(4.2) = 4, round(6 * .8 + 1) = round(5.8) = 6.
    // (Without the normalisation head 0's 0.0625 would beat head 1's tail: counts [6, 4].)
    const head0 = new Float32Array(16).fill(1 / 16);
    const head1 = new Float32Array([0.5, 0.2, 0.1, 0.08, 0.06, 0.03, 0.02, 0.01, 0, 0, 0, 0, 0, 0, 0, 0]);
    const p = params({ budget: 7, window: 2, adakvFloorRatio: 0.2 });
    expect(adakvCapacities([head0, head1], p)).toEqual([4, 6]);
    // The order of positions does not matter, only the sorted scores.
    expect(adakvCapacities([head0, head1.slice().reverse()], p)).toEqual([4, 6]);
  });

  it('rounds halves to even', () => {
    // base 2, floor ratio 0.5 -> floor 1. Head 0 [.4 .3 .2 .1] x (.7/1) = [.28 .21 .14 .07];
    // head 1 [.85 .05 .05 .05] x .9 = [.765 .045 ...]. Top 4: .765, .28, .21, .14 -> counts [3, 1]
    // -> round(3 * .5 + 1) = round(2.5) = 2, round(1.5) = 2.
    const p = params({ budget: 4, window: 2, adakvFloorRatio: 0.5 });
    expect(adakvCapacities([new Float32Array([0.4, 0.3, 0.2, 0.1]), new Float32Array([0.05, 0.85, 0.05, 0.05])], p)).toEqual([2, 2]);
  });

  it('keeps everything when base exceeds the prefix', () => {
    expect(adakvCapacities([new Float32Array(3), new Float32Array(3)], params({ budget: 40, window: 32 }))).toEqual([3, 3]);
  });

  it('is flagged attention-dependent in headCapacities, with base as the plan', () => {
    const caps = headCapacities('adakv', { layers: 2, qHeads: 2, kvHeads: 2, promptLength: 500, params: params({ budget: 64, window: 16 }) });
    expect(caps.attentionDependent).toBe(true);
    expect(caps.capacity.flat()).toEqual([48, 48, 48, 48]);
  });
});

describe('random policy', () => {
  const request = { layers: 4, qHeads: 6, kvHeads: 2, promptLength: 100_000, params: params({ seed: 7 }) };

  it('applies the SparseMM formula to seeded random head scores', () => {
    const caps = headCapacities('random', request);
    expect(caps.capacity).toEqual(sparsemmRawCapacities(randomHeadScores(4, 6, 7), 4, 6, 2, request.params));
    expect(headCapacities('random', request).capacity).toEqual(caps.capacity);
    expect(headCapacities('random', { ...request, params: params({ seed: 8 }) }).capacity).not.toEqual(caps.capacity);
    // min_cache 22 per head, the total within rounding of 224 per head.
    expect(Math.min(...caps.capacity.flat())).toBeGreaterThanOrEqual(22);
    expect(Math.abs(sum2d(caps.capacity) - 224 * 8)).toBeLessThanOrEqual(4);
  });

  it('draws uniform scores in [0, 1)', () => {
    const values = randomHeadScores(50, 40, 123).flat();
    expect(values.every((v) => v >= 0 && v < 1)).toBe(true);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.02);
    expect(new Set(values).size).toBe(values.length);
  });
});

describe('SmolVLM-256M shape (30 layers, 9 query heads, 3 KV heads)', () => {
  it('sums each group of three query heads', () => {
    // Layer l, head h scores 1 for h = 0..2 (group 0) and 0 elsewhere, except layer 29 head 8 (group 2) scores 30.
    // Total 30 * 3 + 30 = 120: group 0 of each layer holds 3/120, layer 29 group 2 holds 30/120.
    const scores = Array.from({ length: 30 }, (_, layer) => Array.from({ length: 9 }, (_, h) => (h < 3 ? 1 : layer === 29 && h === 8 ? 30 : 0)));
    const caps = headCapacities('sparsemm', { layers: 30, qHeads: 9, kvHeads: 3, promptLength: 10_000, params: defaultBudgetParams, headScores: scores });
    // remain = 202 * 30 * 3 = 18180. Group 0: round(3/120 * 18180 + 22) = round(476.5) = 476 (half to even);
    // layer 29 group 2: round(18180 / 4 + 22) = 4567; others 22.
    expect(caps.capacity[0]).toEqual([476, 22, 22]);
    expect(caps.capacity[29]).toEqual([476, 22, 4567]);
  });
});

describe('parameter validation', () => {
  const shape = { layers: 2, qHeads: 4, kvHeads: 2, promptLength: 100 };
  it('rejects impossible settings with clear errors', () => {
    expect(() => headCapacities('snapkv', { ...shape, params: params({ budget: 32, window: 32 }) })).toThrow(/budget \(32\) must exceed the window/);
    expect(() => headCapacities('snapkv', { ...shape, params: params({ kernel: 4 }) })).toThrow(/odd/);
    expect(() => headCapacities('snapkv', { ...shape, qHeads: 5, params: defaultBudgetParams })).toThrow(/multiple of kvHeads/);
    expect(() => headCapacities('snapkv', { ...shape, promptLength: -1, params: defaultBudgetParams })).toThrow(/promptLength/);
    expect(() => headCapacities('snapkv', { ...shape, params: params({ ratio: 1.5 }) })).toThrow(/ratio/);
  });
});
