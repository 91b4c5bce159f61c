import type { WeightFormat } from '../worker/api';
import { formatBytes } from './format';

/** The model panel's weight formats, in the order of its picker, each with what it is (src/model-io/quantize.ts). */
export const weightFormatChoices: readonly { format: WeightFormat; label: string }[] = [
  { format: 'bf16', label: 'bf16 (exact)' },
  { format: 'q8', label: 'q8 (8-bit blocks)' },
  { format: 'q4', label: 'q4 (4-bit blocks)' },
];

/** An option's text: the format, and the GPU memory its weights need once a load of this model has told it. */
export function weightFormatOptionText(label: string, bytes: number | undefined): string {
  return bytes === undefined ? label : `${label}, ${formatBytes(bytes)}`;
}
