import type { GpuContext } from './gpu';
import { GpuOutOfMemoryError } from './allocator';
import { markWeightFormat } from './weight-format';
import { bf16ArrayToF32 } from '../model-io/bf16';
import { quantizeTensor, type WeightFormat, weightFormats, weightTensorBytes } from '../model-io/quantize';
import type { SafetensorsFile } from '../model-io/safetensors';
import type { PlannedTensor } from '../model-io/weight-plan';

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

/** The weight bytes of each format (VlmModel.load gives them to an upload, for its out-of-memory advice). */
export type WeightBytesByFormat = Record<WeightFormat, number>;

/** The file's tensors as bf16 (what a plain upload makes of them). */
function bf16Planned(name: string, info: { elementCount: number; shape: readonly number[] }): PlannedTensor {
  return { name, source: name, format: 'bf16', shape: info.shape, bytes: packedBf16Bytes(info.elementCount) };
}

/** checkPlannedFit for tensors uploaded as bf16 (checked before anything is allocated). */
export function checkTensorsFit(
  limits: Pick<GPUSupportedLimits, 'maxStorageBufferBindingSize' | 'maxBufferSize'>,
  tensors: Iterable<readonly [string, { elementCount: number; shape: readonly number[] }]>,
): void {
  checkPlannedFit(limits, [...tensors].map(([name, info]) => bf16Planned(name, info)));
}

/**
 * The one rule for whether tensors fit this adapter, in their planned formats: each must be bindable
 * (maxStorageBufferBindingSize) and allocatable (maxBufferSize) at its planned size; throws WeightTooLargeError naming
 * the first that is not. A
 * quantized tensor too large in its format is refused naming the format, and a bf16 one that q8 / q4 would shrink below
 * the limit says so.
 */
export function checkPlannedFit(limits: Pick<GPUSupportedLimits, 'maxStorageBufferBindingSize' | 'maxBufferSize'>, tensors: readonly PlannedTensor[]): void {
  for (const tensor of tensors) {
    const limit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    if (tensor.bytes <= limit) continue;
    const limitName = tensor.bytes > limits.maxStorageBufferBindingSize ? 'maxStorageBufferBindingSize' : 'maxBufferSize';
    const [rows, cols] = tensor.shape.length === 2 ? tensor.shape : [1, tensor.shape.reduce((n, d) => n * d, 1)];
    const fits = weightFormats.filter((format) => format !== tensor.format && tensor.shape.length === 2 && cols % 32 === 0 && weightTensorBytes(format, rows, cols) <= limit);
    const advice = fits.length > 0 && tensor.format === 'bf16' ? ` It would fit as ${fits.join(' or ')}: load the model with that weight format.` : ' This model cannot run on this adapter.';
    throw new WeightTooLargeError(
      `Tensor "${tensor.name}" [${tensor.shape.join(', ')}] needs ${tensor.bytes} bytes as ${tensor.format}, above this GPU's ${limitName} ` +
        `(${limitName === 'maxBufferSize' ? limits.maxBufferSize : limits.maxStorageBufferBindingSize} bytes).${advice}`,
    );
  }
}

/**
 * The model's tensors on the GPU, each in its planned format (src/model-io/weight-plan.ts): packed bf16 (element 2i in
 * the low half of word i), or q8 / q4 blocks (src/model-io/quantize.ts) made here from the bf16 values, on the CPU,
 * and marked with their format for the kernels (weight-format.ts). Every buffer is counted under the allocator's
 * 'weights' category.
 */
export class GpuWeights {
  private constructor(
    private readonly ctx: GpuContext,
    private readonly buffers: Map<string, GPUBuffer>,
    /** Bytes allocated for all tensors (what the allocator counts for them under 'weights'). */
    readonly totalBytes: number,
  ) {}

  /** Uploads `names` from the file in bf16 (uploadPlan with every tensor bf16). */
  static upload(ctx: GpuContext, file: SafetensorsFile, names: readonly string[]): Promise<GpuWeights> {
    return GpuWeights.uploadPlan(ctx, file, names.map((name) => bf16Planned(name, file.get(name))));
  }

  /**
   * Uploads the planned tensors. Every tensor is checked against the device's maxStorageBufferBindingSize (and
   * maxBufferSize) BEFORE anything is allocated, so a model that cannot run here is refused with a clear message and
   * leaves no buffers behind; an allocation that fails half-way frees what was made and, with `byFormat`, says which
   * weight format would need less. Tensors stored as F32/F16 are rounded to bf16 (and quantized from that).
   */
  static async uploadPlan(ctx: GpuContext, file: SafetensorsFile, tensors: readonly PlannedTensor[], byFormat?: WeightBytesByFormat): Promise<GpuWeights> {
    checkPlannedFit(ctx.device.limits, tensors);
    const buffers = new Map<string, GPUBuffer>();
    let totalBytes = 0;
    try {
      for (const tensor of tensors) {
        const words = tensorWords(file, tensor);
        const buffer = await ctx.allocator.createChecked('weights', tensor.bytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, tensor.name);
        buffers.set(tensor.name, markWeightFormat(buffer, tensor.format));
        totalBytes += buffer.size;
        ctx.upload(buffer, words);
      }
    } catch (error) {
      for (const buffer of buffers.values()) ctx.allocator.destroy(buffer);
      if (error instanceof GpuOutOfMemoryError && byFormat) throw new GpuOutOfMemoryError(error.label, error.size, formatAdvice(tensors, byFormat));
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

/** A tensor's words as the GPU holds them: packed bf16 (an odd count padded by one bf16), or quantized blocks. */
function tensorWords(file: SafetensorsFile, tensor: PlannedTensor): Uint16Array | Uint32Array {
  const bits = file.toBf16(tensor.source);
  if (tensor.format === 'bf16') return bits.length % 2 === 0 ? bits : padToEven(bits);
  const [rows, cols] = tensor.shape;
  try {
    return quantizeTensor(tensor.format, bf16ArrayToF32(bits), rows, cols).words;
  } catch (error) {
    throw new Error(`Tensor "${tensor.name}" cannot be stored as ${tensor.format}: ${error instanceof Error ? error.message : String(error)}. Load the model in bf16.`);
  }
}

/** "The weights in q8 need 140.2 MiB; q4 needs 80.1 MiB: choose q4 (or a smaller model)." */
function formatAdvice(tensors: readonly PlannedTensor[], byFormat: WeightBytesByFormat): string {
  const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  const format = tensors.find((t) => t.format !== 'bf16')?.format ?? 'bf16';
  const needed = tensors.reduce((n, t) => n + t.bytes, 0);
  const smaller = weightFormats.filter((other) => byFormat[other] < needed).map((other) => `${other} needs ${mib(byFormat[other])}`);
  const choice = smaller.length > 0 ? `; ${smaller.join(', ')}: choose ${weightFormats.filter((other) => byFormat[other] < needed).at(-1)} (fewer bytes per weight)` : ': no weight format needs less';
  return `The weights in ${format} need ${mib(needed)}${choice}.`;
}

function padToEven(bits: Uint16Array): Uint16Array {
  const out = new Uint16Array(bits.length + 1);
  out.set(bits);
  return out;
}
