import type { GpuContext } from './gpu';
import type { SafetensorsFile } from '../model-io/safetensors';

/** Thrown when a tensor cannot be bound as one storage buffer on this GPU; nothing has been allocated at that point. */
export class WeightTooLargeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WeightTooLargeError';
  }
}

/** Bytes a tensor of `elements` bf16 values takes packed two per u32 (an odd count is padded by one bf16). */
export function packedBf16Bytes(elements: number): number {
  return Math.ceil(elements / 2) * 4;
}

/**
 * The one rule for whether a tensor fits this adapter: as packed bf16 it must be bindable as one storage buffer
 * (maxStorageBufferBindingSize) and allocatable (maxBufferSize). Throws WeightTooLargeError naming the first that
 * does not; checked before anything is allocated.
 */
export function checkTensorsFit(
  limits: Pick<GPUSupportedLimits, 'maxStorageBufferBindingSize' | 'maxBufferSize'>,
  tensors: Iterable<readonly [string, { elementCount: number; shape: readonly number[] }]>,
): void {
  for (const [name, info] of tensors) {
    const bytes = packedBf16Bytes(info.elementCount);
    if (bytes > limits.maxStorageBufferBindingSize) {
      throw new WeightTooLargeError(
        `Tensor "${name}" [${info.shape.join(', ')}] needs ${bytes} bytes as bf16, above this GPU's maxStorageBufferBindingSize ` +
          `(${limits.maxStorageBufferBindingSize} bytes): this model cannot run on this adapter.`,
      );
    }
    if (bytes > limits.maxBufferSize) {
      throw new WeightTooLargeError(`Tensor "${name}" needs ${bytes} bytes, above this GPU's maxBufferSize (${limits.maxBufferSize} bytes).`);
    }
  }
}

/**
 * The model's tensors on the GPU as packed bf16 (element 2i in the low half of word i), computed in f32 by the kernels.
 * Every buffer is counted under the allocator's 'weights' category.
 */
export class GpuWeights {
  private constructor(
    private readonly ctx: GpuContext,
    private readonly buffers: Map<string, GPUBuffer>,
    /** Bytes allocated for all tensors (what the allocator counts for them under 'weights'). */
    readonly totalBytes: number,
  ) {}

  /**
   * Uploads `names` from the file. Every tensor is checked against the device's maxStorageBufferBindingSize (and
   * maxBufferSize) BEFORE anything is allocated, so a model that cannot run here is refused with a clear message and
   * leaves no buffers behind. Tensors stored as F32/F16 are rounded to bf16.
   */
  static async upload(ctx: GpuContext, file: SafetensorsFile, names: readonly string[]): Promise<GpuWeights> {
    checkTensorsFit(ctx.device.limits, names.map((name) => [name, file.get(name)] as const));
    const buffers = new Map<string, GPUBuffer>();
    let totalBytes = 0;
    try {
      for (const name of names) {
        const bits = file.toBf16(name);
        const bytes = packedBf16Bytes(bits.length);
        const buffer = await ctx.allocator.createChecked('weights', bytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, name);
        buffers.set(name, buffer);
        totalBytes += buffer.size;
        // writeBuffer wants a multiple of 4 bytes: an odd bf16 count is copied into a padded array.
        const padded = bits.length % 2 === 0 ? bits : padToEven(bits);
        ctx.upload(buffer, padded);
      }
    } catch (error) {
      for (const buffer of buffers.values()) ctx.allocator.destroy(buffer);
      throw error;
    }
    return new GpuWeights(ctx, buffers, totalBytes);
  }

  has(name: string): boolean {
    return this.buffers.has(name);
  }

  get(name: string): GPUBuffer {
    const buffer = this.buffers.get(name);
    if (!buffer) throw new Error(`Weight "${name}" was not uploaded.`);
    return buffer;
  }

  /** Bytes the named tensors take on the GPU (in whatever format they were uploaded). */
  bytesOf(names: Iterable<string>): number {
    let bytes = 0;
    for (const name of names) bytes += this.get(name).size;
    return bytes;
  }

  destroy(): void {
    for (const buffer of this.buffers.values()) this.ctx.allocator.destroy(buffer);
    this.buffers.clear();
  }
}

function padToEven(bits: Uint16Array): Uint16Array {
  const out = new Uint16Array(bits.length + 1);
  out.set(bits);
  return out;
}
