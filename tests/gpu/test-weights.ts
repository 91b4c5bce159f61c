import type { GpuContext } from '../../src/engine/gpu';
import { markWeightFormat } from '../../src/engine/weight-format';
import { dequantizeTensor, quantizeTensor, type WeightFormat } from '../../src/model-io/quantize';
import { storage } from '../helpers/gpu';
import { packedBf16 } from './packed-bf16';

/**
 * A test weight [rows, cols] in `format` as the engine stores it (bf16 packed two per u32; q8 / q4 in the block layout
 * of src/model-io/quantize.ts, made from the bf16-rounded values as the loader makes them), plus the f32 weights the
 * GPU computes with (the CPU reference's weights): bf16-rounded, or dequantized.
 */
export interface TestWeight {
  format: WeightFormat;
  words: Uint32Array;
  rounded: Float32Array;
}

export function testWeight(format: WeightFormat, values: Float32Array, rows: number, cols: number): TestWeight {
  const bf16 = packedBf16(values);
  if (format === 'bf16') return { format, words: bf16.packed, rounded: bf16.rounded };
  const tensor = quantizeTensor(format, bf16.rounded, rows, cols);
  return { format, words: tensor.words, rounded: dequantizeTensor(tensor) };
}

/** The weight's GPU buffer, marked with its format (what GpuWeights.upload does). */
export function weightBuffer(ctx: GpuContext, weight: TestWeight): GPUBuffer {
  return markWeightFormat(storage(ctx, weight.words, `${weight.format} weight`), weight.format);
}
