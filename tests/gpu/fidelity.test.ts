import { describe, expect, it } from 'vitest';
import { decodeStepRecords, fidelityRecordFields, stepFidelity } from '../../src/engine/ops/fidelity';
import { stepFidelityReference } from '../reference/cpu-fidelity';
import { empty, gpuContext, randomArray, storage } from '../helpers/gpu';
import type { GpuContext } from '../../src/engine/gpu';

const sentinel = 0xdeadbeef;

/** An output buffer of `steps` records filled with a sentinel, so writes to the wrong record show. */
function recordBuffer(ctx: GpuContext, steps: number): GPUBuffer {
  return storage(ctx, new Uint32Array(steps * fidelityRecordFields).fill(sentinel), 'fidelity records');
}

/** KL tolerance: f32 sums over the vocabulary against float64, absolute for KL ~ 0 and relative for larger ones. */
function expectKlClose(got: number, want: number, what: string): void {
  expect(Math.abs(got - want), `${what}: KL ${got} vs ${want}`).toBeLessThanOrEqual(2e-5 + 1e-3 * want);
}

describe('step fidelity kernel', () => {
  for (const vocab of [1, 3, 17, 257, 1001, 49_153]) {
    it(`matches the CPU reference, vocab ${vocab}`, async () => {
      const ctx = await gpuContext();
      const reference = randomArray(vocab, vocab, 6);
      // A perturbed copy: nearby distributions (small KL) as well as far ones.
      const noise = randomArray(vocab, vocab + 7, 1);
      const compressed = reference.map((r, i) => r + noise[i] * (i % 2 === 0 ? 0.3 : 2));
      const referenceToken = vocab > 2 ? Math.floor(vocab / 3) : 0;
      const out = recordBuffer(ctx, 1);
      stepFidelity(ctx, { vocab, reference: storage(ctx, reference), referenceOffset: 0, compressed: storage(ctx, compressed), referenceToken, out, step: 0 });
      const [got] = decodeStepRecords(await ctx.readU32(out, fidelityRecordFields), 1);
      const want = stepFidelityReference(reference, compressed, referenceToken);
      expectKlClose(got.kl, want.kl, `vocab ${vocab}`);
      expect({ ...got, kl: 0 }).toEqual({ ...want, kl: 0 });
      if (vocab > 100) expect(want.kl).toBeGreaterThan(0.01);
    });
  }

  it('gives KL exactly 0, agreement and rank 1 for identical logits', async () => {
    const ctx = await gpuContext();
    for (const vocab of [1, 5, 999, 49_153]) {
      const logits = randomArray(vocab, 3 * vocab, 12);
      const token = logits.indexOf(Math.max(...logits));
      const out = recordBuffer(ctx, 1);
      // Two buffers with the same values, as the full and the uncompressed cache produce.
      stepFidelity(ctx, { vocab, reference: storage(ctx, logits), referenceOffset: 0, compressed: storage(ctx, logits.slice()), referenceToken: token, out, step: 0 });
      const [got] = decodeStepRecords(await ctx.readU32(out, fidelityRecordFields), 1);
      expect(got).toEqual({ kl: 0, top1Agrees: true, referenceRank: 1, compressedTop1: token });
    }
  });

  it('reads the reference row at its offset, writes only its record, and ranks with ties by index', async () => {
    const ctx = await gpuContext();
    const vocab = 301;
    const steps = 3;
    const rows = randomArray(vocab * steps, 99, 4);
    const compressed = rows.slice(vocab, 2 * vocab);
    // Three tokens tie for the compressed top-1: the lowest index wins, so token 250 ranks third, 40 first.
    for (const i of [250, 40, 180]) compressed[i] = 9;
    const out = recordBuffer(ctx, steps);
    const reference = storage(ctx, rows);
    const compressedBuffer = storage(ctx, compressed);
    stepFidelity(ctx, { vocab, reference, referenceOffset: vocab, compressed: compressedBuffer, referenceToken: 250, out, step: 1 });
    const words = await ctx.readU32(out, steps * fidelityRecordFields);
    expect([...words.subarray(0, 4), ...words.subarray(8, 12)]).toEqual(new Array(8).fill(sentinel));
    const [, got] = decodeStepRecords(words, 2);
    const want = stepFidelityReference(rows.subarray(vocab, 2 * vocab), compressed, 250);
    expect(want.referenceRank).toBe(3);
    expect(want.compressedTop1).toBe(40);
    expectKlClose(got.kl, want.kl, 'offset row');
    expect({ ...got, kl: 0 }).toEqual({ ...want, kl: 0 });
  });

  it('refuses a token outside the vocabulary and rows past the buffers', async () => {
    const ctx = await gpuContext();
    const logits = storage(ctx, new Float32Array(10));
    const out = empty(ctx, fidelityRecordFields);
    const args = { vocab: 10, reference: logits, referenceOffset: 0, compressed: logits, referenceToken: 0, out, step: 0 };
    expect(() => stepFidelity(ctx, { ...args, referenceToken: 10 })).toThrow(/outside the vocabulary/);
    expect(() => stepFidelity(ctx, { ...args, referenceOffset: 1 })).toThrow(/runs past/);
    expect(() => stepFidelity(ctx, { ...args, step: 1 })).toThrow(/record 1 runs past/);
  });
});
