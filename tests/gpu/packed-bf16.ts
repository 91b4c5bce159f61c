import { f32ArrayToBf16, roundToBf16 } from '../../src/model-io/bf16';

/**
 * Test weights as the engine stores them: bf16, two per u32 (element 2i in the low half), plus the bf16-rounded f32
 * values for the CPU reference, so that a comparison only sees arithmetic differences.
 */
export function packedBf16(values: Float32Array): { packed: Uint32Array; rounded: Float32Array } {
  const bits = f32ArrayToBf16(values);
  const padded = new Uint16Array(bits.length + (bits.length % 2));
  padded.set(bits);
  return { packed: new Uint32Array(padded.buffer), rounded: roundToBf16(values) };
}
