import type { GpuContext } from '../gpu';
import { kernelParams } from '../params';
import { samplingParams } from '../kernel-params';

/** The prelude of the kernels that reduce a row of logits (shaders/logit_reductions.wgsl). */
export const logitReductions = 'logit_reductions';

/** u32 elements the sampling kernels write: [token id, 1 if any logit was NaN or +-Inf else 0]. */
export const sampledWords = 2;

/**
 * out[0] = index of the largest logit (f32 [vocab]); the lowest index wins ties; out[1] = the non-finite flag
 * (out holds sampledWords u32). One workgroup.
 */
export function argmax(ctx: GpuContext, logits: GPUBuffer, out: GPUBuffer, vocab: number): void {
  const pipeline = ctx.pipelines.get('sampling', 'argmax', {}, logitReductions);
  ctx.record().dispatch(pipeline, kernelParams(samplingParams, { vocab, temperature: 0, top_p: 0, uniform: 0 }), [logits, out], 1);
}

/**
 * Temperature + nucleus sampling; out[0] = the sampled token. Deterministic given `uniform` (in [0, 1), drawn by the
 * caller from a SeededRng). The rule, shared with the CPU reference in the tests:
 * p = softmax(logits / temperature); rank tokens by p (ties: lower index first); keep a token when the mass ranked
 * before it is < topP (the top token is always kept); then walk the kept tokens in vocabulary order and return the
 * first whose running mass exceeds uniform * (kept mass). out[1] = the non-finite flag, as argmax.
 */
export function sampleTopP(ctx: GpuContext, logits: GPUBuffer, out: GPUBuffer, vocab: number, temperature: number, topP: number, uniform: number): void {
  if (!(temperature > 0)) throw new Error(`sampleTopP: temperature must be > 0 (use argmax for greedy), got ${temperature}`);
  if (!(uniform >= 0 && uniform < 1)) throw new Error(`sampleTopP: uniform must be in [0, 1), got ${uniform}`);
  const pipeline = ctx.pipelines.get('sampling', 'sample_top_p', {}, logitReductions);
  ctx.record().dispatch(pipeline, kernelParams(samplingParams, { vocab, temperature, top_p: topP, uniform }), [logits, out], 1);
}

/** Reads what argmax / sampleTopP wrote: the token and whether the logits held a NaN or an infinity (one readback). */
export async function readSampled(ctx: GpuContext, out: GPUBuffer): Promise<{ tokenId: number; nonFinite: boolean }> {
  const [tokenId, flag] = await ctx.readU32(out, sampledWords);
  return { tokenId, nonFinite: flag !== 0 };
}

/** A small seeded PRNG (mulberry32) so that sampled generations are reproducible from a seed. */
export class SeededRng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1) with 32 random bits. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}
