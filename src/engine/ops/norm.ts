import type { GpuContext } from '../gpu';
import { kernelParams } from '../params';
import { normParams } from '../kernel-params';

/** Llama RMSNorm over each row: out = x * rsqrt(mean(x^2) + eps) * weight. x, out f32 [rows, dim] (distinct buffers); weight packed bf16 [dim]. */
export function rmsNorm(ctx: GpuContext, x: GPUBuffer, weight: GPUBuffer, out: GPUBuffer, rows: number, dim: number, eps: number): void {
  if (out === x) throw new Error('rmsNorm: out must be a different buffer from x');
  const pipeline = ctx.pipelines.get('norm', 'rms_norm');
  ctx.record().dispatch(pipeline, kernelParams(normParams, { rows, dim, eps }), [x, weight, out], rows);
}

/** LayerNorm over each row (biased variance, as torch). x, out f32 [rows, dim] (distinct buffers); weight and bias packed bf16 [dim]. */
export function layerNorm(ctx: GpuContext, x: GPUBuffer, weight: GPUBuffer, bias: GPUBuffer, out: GPUBuffer, rows: number, dim: number, eps: number): void {
  if (out === x) throw new Error('layerNorm: out must be a different buffer from x');
  const pipeline = ctx.pipelines.get('norm', 'layer_norm');
  ctx.record().dispatch(pipeline, kernelParams(normParams, { rows, dim, eps }), [x, weight, out, bias], rows);
}
