import type { GpuContext } from '../gpu';
import { kernelParams } from '../params';
import type { FidelityStep } from '../../sparsemm/fidelity';
import { logitReductions } from './sampling';
import { fidelityParams } from '../kernel-params';

/** u32 fields per step record in the output buffer; must match shaders/fidelity.wgsl (kl, agree, rank, top-1). */
export const fidelityRecordFields = 4;

export interface StepFidelityArgs {
  vocab: number;
  /** f32 [.., vocab]: the full cache's logits; this step's row starts at element referenceOffset. */
  reference: GPUBuffer;
  referenceOffset: number;
  /** f32 [vocab]: the compressed cache's logits of the same step. */
  compressed: GPUBuffer;
  /** The reference answer's token at this step. */
  referenceToken: number;
  /** u32 [steps, 4]: record `step` is written. */
  out: GPUBuffer;
  step: number;
}

/**
 * One step's KL(full || compressed), top-1 agreement, rank of the reference token under the compressed logits and the
 * compressed top-1, into record `step` of `out` (shaders/fidelity.wgsl; one workgroup).
 */
export function stepFidelity(ctx: GpuContext, args: StepFidelityArgs): void {
  const { vocab, reference, referenceOffset, compressed, referenceToken, out, step } = args;
  if (!Number.isInteger(vocab) || vocab < 1) throw new Error(`stepFidelity: vocab must be a positive integer, got ${vocab}`);
  if (!Number.isInteger(referenceToken) || referenceToken < 0 || referenceToken >= vocab) {
    throw new Error(`stepFidelity: reference token ${referenceToken} is outside the vocabulary (${vocab})`);
  }
  if ((referenceOffset + vocab) * 4 > reference.size) throw new Error(`stepFidelity: reference row at ${referenceOffset} runs past its buffer`);
  if ((step + 1) * fidelityRecordFields * 4 > out.size) throw new Error(`stepFidelity: record ${step} runs past the output buffer`);
  const pipeline = ctx.pipelines.get('fidelity', 'step_fidelity', {}, logitReductions);
  ctx.record().dispatch(pipeline, kernelParams(fidelityParams, { vocab, reference_offset: referenceOffset, ref_token: referenceToken, out_step: step }), [reference, compressed, out], 1);
}

/** One read-back step record: the fidelity numbers plus the compressed cache's own top-1 token. */
export interface StepRecord extends FidelityStep {
  compressedTop1: number;
}

/** Decodes `count` records read back from stepFidelity's output (u32 [count, 4]). */
export function decodeStepRecords(words: Uint32Array, count: number): StepRecord[] {
  const kl = new Float32Array(words.buffer, words.byteOffset, words.length);
  return Array.from({ length: count }, (_, i) => {
    const base = i * fidelityRecordFields;
    return { kl: kl[base], top1Agrees: words[base + 1] === 1, referenceRank: words[base + 2], compressedTop1: words[base + 3] };
  });
}
