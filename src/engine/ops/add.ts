import type { GpuContext } from '../gpu';
import { kernelParams } from '../params';
import { addParams } from '../kernel-params';

const workgroupSize = 256;

/** out = a + b over `count` f32 values. */
export function add(ctx: GpuContext, a: GPUBuffer, b: GPUBuffer, out: GPUBuffer, count: number): void {
  const pipeline = ctx.pipelines.get('add');
  ctx.record().dispatch(pipeline, kernelParams(addParams, { count }), [a, b, out], Math.ceil(count / workgroupSize));
}
