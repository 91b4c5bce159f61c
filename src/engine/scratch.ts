import type { GpuAllocator } from './allocator';

// A function, not a constant: in Node, GPUBufferUsage exists only once dawn.node's globals are installed.
const storageUsage = (): GPUBufferUsageFlags => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Bytes of the placeholder: a storage binding must hold at least one element of the array it is bound as. */
const placeholderBytes = 16;

/**
 * The buffers one GpuContext keeps for its kernels between calls (GpuContext.scratch / .placeholder / .constant): all
 * counted by the context's allocator, all freed with the context.
 */
export class ScratchBuffers {
  private readonly growing = new Map<string, GPUBuffer>();
  private readonly constants = new Map<string, GPUBuffer>();
  private unused: GPUBuffer | null = null;

  constructor(
    private readonly allocator: GpuAllocator,
    /** Submits what was recorded (before a buffer that recorded commands may use is destroyed). */
    private readonly submit: () => void,
  ) {}

  /**
   * A 'scratch' buffer per purpose that only grows. Growing submits what was recorded first, so the old buffer is
   * never destroyed while an unsubmitted command still refers to it.
   */
  scratch(purpose: string, bytes: number): GPUBuffer {
    const existing = this.growing.get(purpose);
    if (existing && existing.size >= bytes) return existing;
    if (existing) {
      this.submit();
      this.allocator.destroy(existing);
    }
    const buffer = this.allocator.create('scratch', Math.max(bytes, 256), storageUsage(), `scratch: ${purpose}`);
    this.growing.set(purpose, buffer);
    return buffer;
  }

  /** A small storage buffer bound where a kernel expects a binding it does not read (a flag of its parameters says so). */
  placeholder(): GPUBuffer {
    this.unused ??= this.allocator.create('scratch', placeholderBytes, GPUBufferUsage.STORAGE, 'unused-binding placeholder');
    return this.unused;
  }

  /** The buffer `make` creates for `key`, made once (a constant table, e.g. RoPE's inverse frequencies per head dim). */
  constant(key: string, make: () => GPUBuffer): GPUBuffer {
    let buffer = this.constants.get(key);
    if (!buffer) {
      buffer = make();
      this.constants.set(key, buffer);
    }
    return buffer;
  }
}
