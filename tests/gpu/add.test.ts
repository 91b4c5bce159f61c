import { describe, expect, it } from 'vitest';
import { add } from '../../src/engine/ops/add';
import { empty, gpuContext, maxAbsDiff, randomArray, storage } from '../helpers/gpu';

describe('add kernel', () => {
  it('matches the CPU sum, including a count that is not a multiple of the workgroup', async () => {
    const ctx = await gpuContext();
    const count = 1000;
    const a = randomArray(count, 1);
    const b = randomArray(count, 2);
    const out = empty(ctx, count);
    add(ctx, storage(ctx, a), storage(ctx, b), out, count);
    const got = await ctx.readF32(out, count);
    const want = a.map((v, i) => v + b[i]);
    expect(maxAbsDiff(got, want)).toBe(0);
  });
});
