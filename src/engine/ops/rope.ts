import type { GpuContext } from '../gpu';
import { kernelParams } from '../params';
import { ropeParams } from '../kernel-params';

const workgroupSize = 256;
/** The prelude with sin_cos (shaders/rope_angle.wgsl), shared with the fused q/k/v GEMV. */
export const ropePrelude = 'rope_angle';

/**
 * RoPE inverse frequencies as torch's LlamaRotaryEmbedding computes them, in f32:
 * inv_freq[i] = 1 / theta ** (float(2i) / headDim).
 */
export function ropeInverseFrequencies(headDim: number, theta: number): Float32Array {
  const half = headDim / 2;
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const exponent = Math.fround((2 * i) / headDim);
    invFreq[i] = Math.fround(1 / Math.fround(Math.pow(theta, exponent)));
  }
  return invFreq;
}

// The inverse-frequency table is tiny and constant per (headDim, theta): uploaded once per device.
function invFreqBuffer(ctx: GpuContext, headDim: number, theta: number): GPUBuffer {
  const key = `rope inv_freq ${headDim}:${theta}`;
  return ctx.constant(key, () => {
    const data = ropeInverseFrequencies(headDim, theta);
    const buffer = ctx.allocator.create('weights', data.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, key);
    ctx.upload(buffer, data);
    return buffer;
  });
}

/**
 * Rotates x (f32 [tokens, heads, headDim]) in place, Llama rotate_half layout (pairs i and i + headDim/2),
 * angle = positions[t] * inv_freq[i] in f32 as torch does. positions: u32 [tokens].
 */
export function rope(ctx: GpuContext, x: GPUBuffer, positions: GPUBuffer, tokens: number, heads: number, headDim: number, theta: number): void {
  if (headDim % 2 !== 0) throw new Error(`rope: headDim ${headDim} must be even`);
  const half = headDim / 2;
  const pipeline = ctx.pipelines.get('rope', 'main', {}, ropePrelude);
  ctx.record().dispatch(pipeline, kernelParams(ropeParams, { tokens, heads, half_dim: half }), [x, positions, invFreqBuffer(ctx, headDim, theta)], Math.ceil((tokens * heads * half) / workgroupSize));
}
