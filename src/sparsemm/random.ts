/**
 * Seeded randomness for the `random` budget policy (the paper's ablation: random head scores fed to
 * the SparseMM allocation formula). The official code draws `random.random()` once per query head
 * with Python's unseeded global RNG, so its numbers cannot be reproduced; we use a small seeded
 * generator instead so that a run (and a test) is repeatable from its seed.
 */

/**
 * mulberry32: a 32-bit state generator, plenty for drawing a few thousand head scores.
 * Returns a function yielding floats uniformly in [0, 1) with 32 bits of randomness.
 */
export function mulberry32(seed: number): () => number {
  if (!Number.isFinite(seed)) throw new RangeError(`RNG seed must be a finite number, got ${seed}`);
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` values uniform in [-scale, scale) from mulberry32(seed): the synthetic weights, activations and K/V of the
 * benchmarks, and the tests' random inputs.
 */
export function randomF32(count: number, seed: number, scale: number): Float32Array {
  const next = mulberry32(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (next() * 2 - 1) * scale;
  return out;
}

/**
 * Random per-query-head scores, drawn in row-major (layer, head) order like the official
 * `[random.random() for _ in range(num_hidden_layers * num_attention_heads)]`.
 */
export function randomHeadScores(layers: number, qHeads: number, seed: number): number[][] {
  const next = mulberry32(seed);
  const scores: number[][] = [];
  for (let layer = 0; layer < layers; layer++) {
    const row: number[] = [];
    for (let head = 0; head < qHeads; head++) row.push(next());
    scores.push(row);
  }
  return scores;
}

/**
 * Equal per-query-head scores: what SparseMM uses for a model without visual-head scores. The allocation formula then
 * gives every head the same share, i.e. an even split of the budget (callers say so to the person).
 */
export function uniformHeadScores(layers: number, qHeads: number): number[][] {
  return Array.from({ length: layers }, () => new Array<number>(qHeads).fill(1));
}
