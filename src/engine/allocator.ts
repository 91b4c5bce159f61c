/** Every GPU buffer of the engine is made here, so that the bytes the UI and the benchmark report are measured, not estimated. */
/** imageFeatures: vision-tower features a chat keeps for its pictures between turns (freed with the conversation). */
export type MemoryCategory = 'weights' | 'kv' | 'activations' | 'scratch' | 'imageFeatures';
export const memoryCategories: readonly MemoryCategory[] = ['weights', 'kv', 'activations', 'scratch', 'imageFeatures'];

/** The usage of every storage buffer the engine makes: bound by kernels, written by uploads, read back. */
export const storageBufferUsage = (): GPUBufferUsageFlags => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export type BytesByCategory = Record<MemoryCategory, number>;

interface Allocation {
  category: MemoryCategory;
  size: number;
}

export class GpuOutOfMemoryError extends Error {
  /** `advice` (what would need less memory) follows the message; GpuWeights re-throws with the weight formats' sizes. */
  constructor(
    readonly label: string,
    readonly size: number,
    advice?: string,
  ) {
    super(`The GPU ran out of memory allocating ${label} (${(size / 2 ** 20).toFixed(1)} MiB).${advice ? ` ${advice}` : ''}`);
    this.name = 'GpuOutOfMemoryError';
  }
}

export class GpuAllocator {
  private readonly live = new Map<GPUBuffer, Allocation>();
  private readonly bytes: BytesByCategory = { weights: 0, kv: 0, activations: 0, scratch: 0, imageFeatures: 0 };
  private peak = 0;

  constructor(private readonly device: GPUDevice) {}

  /** Sizes are rounded up to 4 bytes, as WebGPU requires for storage and copies. */
  create(category: MemoryCategory, size: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
    const alignedSize = Math.max(4, Math.ceil(size / 4) * 4);
    if (alignedSize > this.device.limits.maxBufferSize) {
      throw new Error(
        `${label} needs ${alignedSize} bytes, above this GPU's maxBufferSize (${this.device.limits.maxBufferSize}).`,
      );
    }
    const buffer = this.device.createBuffer({ size: alignedSize, usage, label });
    this.live.set(buffer, { category, size: alignedSize });
    this.bytes[category] += alignedSize;
    this.peak = Math.max(this.peak, this.totalBytes());
    return buffer;
  }

  /** Like create, but waits for the out-of-memory error scope, for the large buffers (weights, KV cache). */
  async createChecked(category: MemoryCategory, size: number, usage: GPUBufferUsageFlags, label: string): Promise<GPUBuffer> {
    this.device.pushErrorScope('out-of-memory');
    let buffer: GPUBuffer;
    try {
      buffer = this.create(category, size, usage, label);
    } catch (createError) {
      // Pop the scope we pushed, or it would swallow later, unrelated errors.
      await this.device.popErrorScope();
      throw createError;
    }
    const error = await this.device.popErrorScope();
    if (error) {
      this.destroy(buffer);
      throw new GpuOutOfMemoryError(label, size);
    }
    return buffer;
  }

  destroy(buffer: GPUBuffer | undefined | null): void {
    if (!buffer) return;
    const allocation = this.live.get(buffer);
    if (!allocation) return;
    this.live.delete(buffer);
    this.bytes[allocation.category] -= allocation.size;
    buffer.destroy();
  }

  /** Frees every buffer of one category, or all of them. */
  destroyAll(category?: MemoryCategory): void {
    for (const [buffer, allocation] of [...this.live]) {
      if (category === undefined || allocation.category === category) this.destroy(buffer);
    }
  }

  bytesByCategory(): BytesByCategory {
    return { ...this.bytes };
  }

  totalBytes(): number {
    return memoryCategories.reduce((total, category) => total + this.bytes[category], 0);
  }

  peakBytes(): number {
    return this.peak;
  }

  liveBufferCount(): number {
    return this.live.size;
  }
}
