import type { GpuContext } from './gpu';

/** Where a model's working buffers are counted by the allocator. */
export type ModelBufferCategory = 'activations' | 'scratch' | 'imageFeatures';

const bufferUsage = (): GPUBufferUsageFlags => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Allocates a storage buffer after checking it can be bound whole. */
export function allocateModelBuffer(ctx: GpuContext, category: ModelBufferCategory, bytes: number, label: string): GPUBuffer {
  const limit = ctx.device.limits.maxStorageBufferBindingSize;
  if (bytes > limit) {
    throw new Error(`${label} needs ${bytes} bytes, above this GPU's maxStorageBufferBindingSize (${limit} bytes): the input is too large for this adapter.`);
  }
  return ctx.allocator.create(category, bytes, bufferUsage(), label);
}

/** Per-call activation buffers, freed together (after submitting what was recorded). */
export class BufferScope {
  private readonly buffers: GPUBuffer[] = [];

  constructor(private readonly ctx: GpuContext) {}

  f32(count: number, label: string): GPUBuffer {
    const buffer = allocateModelBuffer(this.ctx, 'activations', count * 4, label);
    this.buffers.push(buffer);
    return buffer;
  }

  u32(count: number, label: string): GPUBuffer {
    const buffer = allocateModelBuffer(this.ctx, 'scratch', count * 4, label);
    this.buffers.push(buffer);
    return buffer;
  }

  release(): void {
    this.ctx.submit();
    for (const buffer of this.buffers) this.ctx.allocator.destroy(buffer);
    this.buffers.length = 0;
  }
}
