/**
 * CPU reference of the visual-head probe: for each generated (or fed) token, the top-1 key of every (layer, query head)
 * over all keys of the row that produced it. Built on cpu-model.ts without changing it: step i re-runs the CPU prefill
 * over the prompt plus the i tokens before it and takes its last query (the same query, keys and positions as the i-th
 * KV-cached decode step), which is slow but plainly correct for the tiny fixture.
 */
import type { ModelConfig } from '../../src/model-io/config';
import { argmax } from './cpu-ops';
import { cpuEncodeImage, cpuPrefill, type CpuWeights } from './cpu-model';

export interface CpuProbeRun {
  tokenIds: number[];
  /** Per step, [layers * heads] top-1 key positions (lowest position on ties). */
  top1PerStep: Uint32Array[];
}

/** Top-1 key of the last query per head: q [tokens, heads, headDim] and k [tokens, kvHeads, headDim] of one layer. */
function lastQueryTop1(q: Float32Array, k: Float32Array, tokens: number, heads: number, kvHeads: number, headDim: number): number[] {
  const group = heads / kvHeads;
  const out: number[] = [];
  for (let h = 0; h < heads; h++) {
    const g = Math.floor(h / group);
    const qRow = q.subarray(((tokens - 1) * heads + h) * headDim, ((tokens - 1) * heads + h + 1) * headDim);
    let best = -Infinity;
    let bestIndex = 0;
    for (let j = 0; j < tokens; j++) {
      const kRow = k.subarray((j * kvHeads + g) * headDim, (j * kvHeads + g + 1) * headDim);
      let dot = 0;
      for (let d = 0; d < headDim; d++) dot += qRow[d] * kRow[d];
      if (dot > best) {
        best = dot;
        bestIndex = j;
      }
    }
    out.push(bestIndex);
  }
  return out;
}

/**
 * Greedy (forced === undefined: argmax, stop after an EOS token or maxNewTokens) or teacher-forced (the given tokens)
 * generation, with the probe's top-1 keys of every step.
 */
export function cpuProbeRun(
  weights: CpuWeights,
  config: ModelConfig,
  inputIds: Uint32Array,
  pixelValues: Float32Array,
  numTiles: number,
  options: { maxNewTokens: number; eosTokenIds: number[]; forced?: number[] },
): CpuProbeRun {
  const { text } = config;
  const features = numTiles > 0 ? cpuEncodeImage(weights, config, pixelValues, numTiles) : null;
  const tokenIds: number[] = [];
  const top1PerStep: Uint32Array[] = [];
  const steps = options.forced ? options.forced.length : options.maxNewTokens;
  for (let step = 0; step < steps; step++) {
    const ids = Uint32Array.from([...inputIds, ...tokenIds]);
    const top1 = new Uint32Array(text.numLayers * text.numHeads);
    const { logits } = cpuPrefill(weights, config, ids, features, (layer, q, k) => {
      top1.set(lastQueryTop1(q, k, ids.length, text.numHeads, text.numKvHeads, text.headDim), layer * text.numHeads);
    });
    const token = options.forced ? options.forced[step] : argmax(logits);
    tokenIds.push(token);
    top1PerStep.push(top1);
    if (!options.forced && options.eosTokenIds.includes(token)) break;
  }
  return { tokenIds, top1PerStep };
}
