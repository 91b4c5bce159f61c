/** Byte math of the benchmark: what one decode step must read, and what the allocator should count for a cache. */
import type { ModelConfig } from '../model-io/config';
import { kvElementBytes } from './kv-cache';
import { packedBf16Bytes } from './weights';

/** Bytes of weights one decode step reads: every text-layer tensor, the final norm, lm_head and one embedding row. */
export function decodeWeightBytes(config: ModelConfig): number {
  const t = config.text;
  const qDim = t.numHeads * t.headDim;
  const kvDim = t.numKvHeads * t.headDim;
  const perLayer =
    2 * packedBf16Bytes(t.hiddenSize) + // input + post-attention RMSNorm weights
    packedBf16Bytes(qDim * t.hiddenSize) + // q_proj
    2 * packedBf16Bytes(kvDim * t.hiddenSize) + // k_proj, v_proj
    packedBf16Bytes(t.hiddenSize * qDim) + // o_proj
    3 * packedBf16Bytes(t.intermediateSize * t.hiddenSize); // gate, up, down
  const embeddingRow = 2 * t.hiddenSize;
  return t.numLayers * perLayer + packedBf16Bytes(t.hiddenSize) + packedBf16Bytes(t.vocabSize * t.hiddenSize) + embeddingRow;
}

/** K and V bytes a decode step reads when the KV heads hold `lengths` tokens ([layer][kvHead], f16 rows of headDim). */
export function kvBytesRead(lengths: number[][], headDim: number): number {
  let rows = 0;
  for (const layer of lengths) for (const n of layer) rows += n;
  return rows * headDim * 2 * kvElementBytes;
}

/** The allocator's KV bytes for a layout: sum over layers and heads of (kept + maxNewTokens) rows, K and V, f16. */
export function expectedKvBytes(keptPerHead: number[][], maxNewTokens: number, headDim: number): number {
  let bytes = 0;
  for (const layer of keptPerHead) {
    const rows = layer.reduce((sum, kept) => sum + kept + maxNewTokens, 0);
    bytes += 2 * Math.max(4, rows * headDim * kvElementBytes);
  }
  return bytes;
}
