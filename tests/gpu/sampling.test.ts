import { describe, expect, it } from 'vitest';
import { argmax, readSampled, sampledWords, SeededRng, sampleTopP } from '../../src/engine/ops/sampling';
import { argmax as argmaxReference, hasNonFinite, sampleTopPReference } from '../reference/cpu-ops';
import { empty, gpuContext, randomArray, storage } from '../helpers/gpu';

describe('argmax kernel', () => {
  for (const vocab of [1, 3, 17, 1000, 49_153]) {
    it(`vocab ${vocab}`, async () => {
      const ctx = await gpuContext();
      const logits = randomArray(vocab, vocab, 10);
      const out = empty(ctx, sampledWords);
      argmax(ctx, storage(ctx, logits), out, vocab);
      expect((await ctx.readU32(out, 1))[0]).toBe(argmaxReference(logits));
    });
  }

  it('lowest index wins ties, even when the tied maxima are far apart', async () => {
    const ctx = await gpuContext();
    const logits = randomArray(5000, 4);
    // Ties in different invocations' strides and different reduction subtrees.
    for (const i of [4999, 3071, 1301, 257]) logits[i] = 3;
    const out = empty(ctx, sampledWords);
    argmax(ctx, storage(ctx, logits), out, logits.length);
    expect((await ctx.readU32(out, 1))[0]).toBe(257);
    const allEqual = new Float32Array(300).fill(-2);
    argmax(ctx, storage(ctx, allEqual), out, allEqual.length);
    expect((await ctx.readU32(out, 1))[0]).toBe(0);
  });
});

describe('top-p sampling kernel', () => {
  it('matches the CPU rule over many (temperature, top-p, uniform) draws', async () => {
    const ctx = await gpuContext();
    const rng = new SeededRng(1234);
    const out = empty(ctx, sampledWords);
    const seen = new Set<number>();
    for (const vocab of [5, 300, 5000]) {
      const logits = randomArray(vocab, vocab + 1, 4);
      const buffer = storage(ctx, logits);
      for (const [temperature, topP] of [
        [1, 0.9],
        [0.7, 0.5],
        [1.5, 0.95],
        [1, 1],
        [0.3, 0.2],
      ]) {
        for (let draw = 0; draw < 6; draw++) {
          // The kernel sees the uniform as f32; give the reference the same value.
          const uniform = Math.fround(rng.next() * 0.999);
          sampleTopP(ctx, buffer, out, vocab, temperature, topP, uniform);
          const got = (await ctx.readU32(out, 1))[0];
          expect(got, `vocab ${vocab}, T ${temperature}, top-p ${topP}, u ${uniform}`).toBe(sampleTopPReference(logits, temperature, topP, uniform));
          seen.add(got);
        }
      }
    }
    // The draws really sample (not always the argmax).
    expect(seen.size).toBeGreaterThan(20);
  });

  it('keeps only the top token when top-p is tiny, and handles tied probabilities by index', async () => {
    const ctx = await gpuContext();
    const out = empty(ctx, sampledWords);
    const logits = randomArray(1000, 8, 2);
    logits[600] = 5;
    sampleTopP(ctx, storage(ctx, logits), out, logits.length, 1, 1e-4, 0.99);
    expect((await ctx.readU32(out, 1))[0]).toBe(600);

    // Four equal top logits, each ~1/4 of the mass: top-p 0.3 keeps the first two of them (by index).
    const tied = new Float32Array(2000).fill(-30);
    for (const i of [1700, 40, 999, 1500]) tied[i] = 2;
    const buffer = storage(ctx, tied);
    for (const [uniform, want] of [
      [0.1, 40],
      [0.6, 999],
    ] as const) {
      sampleTopP(ctx, buffer, out, tied.length, 1, 0.3, uniform);
      const got = (await ctx.readU32(out, 1))[0];
      expect(got).toBe(want);
      expect(got).toBe(sampleTopPReference(tied, 1, 0.3, uniform));
    }
  });

  it('SeededRng is deterministic and uniform-looking', () => {
    const a = new SeededRng(7);
    const b = new SeededRng(7);
    const values = Array.from({ length: 1000 }, () => a.next());
    expect(values.map(() => b.next())).toEqual(values);
    expect(values.every((v) => v >= 0 && v < 1)).toBe(true);
    const mean = values.reduce((s, v) => s + v, 0) / values.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.05);
  });
});

describe('the non-finite flag of the sampling kernels', () => {
  const cases: { name: string; vocab: number; bad: [number, number][] }[] = [
    { name: 'finite logits', vocab: 1000, bad: [] },
    { name: 'NaN at index 0', vocab: 1000, bad: [[0, Number.NaN]] },
    { name: 'NaN at the last index (odd vocab)', vocab: 4999, bad: [[4998, Number.NaN]] },
    { name: '+Infinity in the middle', vocab: 777, bad: [[389, Number.POSITIVE_INFINITY]] },
    { name: '-Infinity only', vocab: 300, bad: [[7, Number.NEGATIVE_INFINITY]] },
    { name: 'every logit NaN', vocab: 257, bad: Array.from({ length: 257 }, (_, i): [number, number] => [i, Number.NaN]) },
  ];
  for (const { name, vocab, bad } of cases) {
    it(`${name}: argmax and top-p flag it as the CPU reference does, in the token's readback`, async () => {
      const ctx = await gpuContext();
      const logits = randomArray(vocab, vocab + 3, 6);
      for (const [i, value] of bad) logits[i] = value;
      const want = hasNonFinite(logits);
      expect(want).toBe(bad.length > 0);
      const buffer = storage(ctx, logits);
      const out = empty(ctx, sampledWords);
      argmax(ctx, buffer, out, vocab);
      const greedy = await readSampled(ctx, out);
      expect(greedy.nonFinite).toBe(want);
      if (!want) expect(greedy.tokenId).toBe(argmaxReference(logits));
      sampleTopP(ctx, buffer, out, vocab, 0.8, 0.9, 0.37);
      const sampled = await readSampled(ctx, out);
      expect(sampled.nonFinite).toBe(want);
      if (!want) expect(sampled.tokenId).toBe(sampleTopPReference(logits, 0.8, 0.9, Math.fround(0.37)));
    });
  }
});
