/**
 * Which format a weight buffer holds (bf16, q8, q4; layouts in src/model-io/quantize.ts). The buffer carries it: the
 * GEMV and GEMM wrappers ask weightFormatOf(buffer) and compile their module with that format's read functions
 * (shaders/weights_<format>.wgsl), so the forward pass passes weights as before and cannot read a tensor in the wrong
 * format. A buffer nobody marked is bf16 (every tensor the model does not quantize, and test buffers).
 */
import type { WeightFormat } from '../model-io/quantize';

export type { WeightFormat } from '../model-io/quantize';

const formats = new WeakMap<GPUBuffer, WeightFormat>();

/** Records that `buffer` holds a tensor in `format` (GpuWeights.upload does it for the quantized ones). */
export function markWeightFormat(buffer: GPUBuffer, format: WeightFormat): GPUBuffer {
  if (format === 'bf16') formats.delete(buffer);
  else formats.set(buffer, format);
  return buffer;
}

export function weightFormatOf(buffer: GPUBuffer): WeightFormat {
  return formats.get(buffer) ?? 'bf16';
}

/** The shaders/ file with the read functions of `format` (placed in a GEMV / GEMM module as part of its prelude). */
export function weightReadShader(format: WeightFormat): string {
  return `weights_${format}`;
}

/** Refuses a quantized weight whose input dimension is not a whole number of blocks (the loader never makes one). */
export function checkWeightShape(op: string, format: WeightFormat, inFeatures: number): void {
  if (format !== 'bf16' && inFeatures % 32 !== 0) throw new Error(`${op}: a ${format} weight needs inFeatures % 32 == 0, got ${inFeatures}`);
}
