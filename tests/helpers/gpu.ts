import { createNodeGpuContext } from '../../src/engine/node-gpu';
import type { GpuContext } from '../../src/engine/gpu';
import { randomF32 } from '../../src/sparsemm/random';

let shared: Promise<GpuContext> | null = null;

/** One dawn.node device per test file (SwiftShader here, a real GPU where there is one). */
export function gpuContext(): Promise<GpuContext> {
  shared ??= createNodeGpuContext();
  return shared;
}

/** A storage buffer holding `data`, counted as scratch. */
export function storage(ctx: GpuContext, data: Float32Array | Uint32Array | Int32Array, label = 'test'): GPUBuffer {
  const buffer = ctx.allocator.create(
    'scratch',
    data.byteLength,
    GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    label,
  );
  ctx.upload(buffer, data);
  return buffer;
}

/** An empty storage buffer of `count` 4-byte elements. */
export function empty(ctx: GpuContext, count: number, label = 'test-out'): GPUBuffer {
  return ctx.allocator.create(
    'scratch',
    count * 4,
    GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    label,
  );
}

/** Deterministic pseudo-random values in [-scale, scale) (the benchmarks' mulberry32 generator). */
export function randomArray(count: number, seed: number, scale = 1): Float32Array {
  return randomF32(count, seed, scale);
}

/** Largest absolute difference between two arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}
