import type { GpuContext } from '../gpu';
import { kernelParams } from '../params';
import { activationParams } from '../kernel-params';

const workgroupSize = 256;

/** out = silu(gate) * up over `count` f32 values (Llama MLP). out must be a third buffer. */
export function swiglu(ctx: GpuContext, gate: GPUBuffer, up: GPUBuffer, out: GPUBuffer, count: number): void {
  if (out === gate || out === up) throw new Error('swiglu: out must not alias an input (WebGPU forbids a buffer bound read-only and writable at once)');
  const pipeline = ctx.pipelines.get('activation', 'swiglu');
  ctx.record().dispatch(pipeline, kernelParams(activationParams, { count }), [gate, up, out], Math.ceil(count / workgroupSize));
}

/** out = gelu_pytorch_tanh(x) over `count` f32 values (SigLIP MLP). */
export function geluTanh(ctx: GpuContext, x: GPUBuffer, out: GPUBuffer, count: number): void {
  if (out === x) throw new Error('geluTanh: out must not alias x (WebGPU forbids a buffer bound read-only and writable at once)');
  const pipeline = ctx.pipelines.get('activation', 'gelu_tanh');
  ctx.record().dispatch(pipeline, kernelParams(activationParams, { count }), [x, out], Math.ceil(count / workgroupSize));
}
