import { argmax } from './cpu-ops';

/** Log-softmax in float64. */
function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const lse = Math.log(sum);
  return Float64Array.from(logits, (l) => l - max - lse);
}

/**
 * CPU reference of shaders/fidelity.wgsl in float64: KL(softmax(reference) || softmax(compressed)) (clamped at 0),
 * whether the argmaxes agree, the 1-based rank of referenceToken under the compressed logits (ties: lower index first)
 * and the compressed argmax.
 */
export function stepFidelityReference(
  reference: ArrayLike<number>,
  compressed: ArrayLike<number>,
  referenceToken: number,
): { kl: number; top1Agrees: boolean; referenceRank: number; compressedTop1: number } {
  const logP = logSoftmax(reference);
  const logQ = logSoftmax(compressed);
  let kl = 0;
  for (let i = 0; i < logP.length; i++) kl += Math.exp(logP[i]) * (logP[i] - logQ[i]);
  const target = compressed[referenceToken];
  let above = 0;
  for (let i = 0; i < compressed.length; i++) if (compressed[i] > target || (compressed[i] === target && i < referenceToken)) above += 1;
  const compressedTop1 = argmax(compressed);
  return { kl: Math.max(kl, 0), top1Agrees: argmax(reference) === compressedTop1, referenceRank: above + 1, compressedTop1 };
}
