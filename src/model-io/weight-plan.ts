/**
 * Which tensors go to the GPU in which format, and how many bytes each takes, before anything is read or allocated.
 * q8 / q4 quantize the text decoder's seven projections of every layer and lm_head (with tied embeddings, lm_head is
 * a quantized copy and embed_tokens stays bf16 for the embedding gather); embeddings, norms, the vision tower and the
 * connector stay bf16. A projection whose input dimension is not whole blocks of 32 stays bf16, and the plan says so.
 */
import type { ModelConfig } from './config';
import { configTensorShapes, idefics3Names, lmHeadName, requiredTensorNames } from './idefics3';
import { quantizationObstacle, type WeightFormat, weightFormats, weightTensorBytes } from './quantize';

/** The projections of a text layer that q8 / q4 quantize. */
export const quantizedLayerParts = [
  'self_attn.q_proj.weight', 'self_attn.k_proj.weight', 'self_attn.v_proj.weight', 'self_attn.o_proj.weight',
  'mlp.gate_proj.weight', 'mlp.up_proj.weight', 'mlp.down_proj.weight',
] as const;

export interface PlannedTensor {
  /** The name the forward pass asks the GPU weights for. */
  name: string;
  /** The file's tensor it is made from (differs for a tied lm_head's quantized copy). */
  source: string;
  format: WeightFormat;
  shape: readonly number[];
  /** GPU bytes (weightTensorBytes). */
  bytes: number;
}

export interface WeightPlan {
  format: WeightFormat;
  tensors: PlannedTensor[];
  /** The name of the lm_head weight among `tensors`. */
  lmHead: string;
  /** Tensors the format would quantize but that stay bf16, with the reason. */
  keptBf16: { name: string; reason: string }[];
  totalBytes: number;
}

/** The plan for `format`: `shapeOf` gives a file tensor's shape (undefined when absent). */
export function planWeights(config: ModelConfig, shapeOf: (name: string) => readonly number[] | undefined, format: WeightFormat): WeightPlan {
  const has = (name: string): boolean => shapeOf(name) !== undefined;
  const quantizable = new Set<string>();
  for (let layer = 0; layer < config.text.numLayers; layer++) for (const part of quantizedLayerParts) quantizable.add(idefics3Names.textLayer(layer, part));
  const fileLmHead = lmHeadName(config, has);
  const tensors: PlannedTensor[] = [];
  const keptBf16: { name: string; reason: string }[] = [];
  const place = (name: string, source: string, wanted: WeightFormat): void => {
    const shape = shapeOf(source);
    if (!shape) throw new Error(`The weights lack "${source}".`);
    let tensorFormat = wanted;
    if (wanted !== 'bf16') {
      const obstacle = quantizationObstacle(shape);
      if (obstacle) {
        keptBf16.push({ name, reason: obstacle });
        tensorFormat = 'bf16';
      }
    }
    const [rows, cols] = shape.length === 2 ? shape : [1, shape.reduce((n, d) => n * d, 1)];
    tensors.push({ name, source, format: tensorFormat, shape, bytes: weightTensorBytes(tensorFormat, rows, cols) });
  };
  // A tied lm_head is embed_tokens itself, which the embedding gather reads in bf16: it is placed (quantized) below.
  if (fileLmHead !== idefics3Names.embedTokens) quantizable.add(fileLmHead);
  for (const name of requiredTensorNames(config, has)) place(name, name, quantizable.has(name) ? format : 'bf16');
  // Tied embeddings: the gather reads embed_tokens in bf16; lm_head gets its own quantized copy.
  let lmHead = fileLmHead;
  if (format !== 'bf16' && fileLmHead === idefics3Names.embedTokens) {
    lmHead = idefics3Names.lmHead;
    place(lmHead, fileLmHead, format);
  }
  return { format, tensors, lmHead, keptBf16, totalBytes: tensors.reduce((n, t) => n + t.bytes, 0) };
}

/** GPU bytes of the model's weights in each format (what the model panel's picker shows). */
export function weightBytesByFormat(config: ModelConfig, shapeOf: (name: string) => readonly number[] | undefined): Record<WeightFormat, number> {
  return Object.fromEntries(weightFormats.map((format) => [format, planWeights(config, shapeOf, format).totalBytes])) as Record<WeightFormat, number>;
}

/**
 * The same from config.json alone, before the weights are downloaded (the shapes the config implies; the file's
 * shapes are checked against them at load, so a loadable file gives the same bytes).
 */
export function weightBytesFromConfig(config: ModelConfig): Record<WeightFormat, number> {
  const shapes = configTensorShapes(config);
  return weightBytesByFormat(config, (name) => shapes.get(name));
}

/** "lm_head.weight (input dimension 40 is not ...)" lines of a plan's bf16 exceptions, for a note to the user. */
export function describeKeptBf16(plan: WeightPlan): string | null {
  if (plan.keptBf16.length === 0) return null;
  const first = plan.keptBf16.slice(0, 3).map(({ name, reason }) => `${name} (${reason})`).join('; ');
  const more = plan.keptBf16.length > 3 ? ` and ${plan.keptBf16.length - 3} more` : '';
  return `${plan.keptBf16.length} tensor(s) stay bf16 in ${plan.format}: ${first}${more}.`;
}
