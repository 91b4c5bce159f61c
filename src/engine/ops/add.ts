import { params, type GpuContext } from '../gpu';

const workgroupSize = 256;

/** out = a + b over `count` f32 values. */
export function add(ctx: GpuContext, a: GPUBuffer, b: GPUBuffer, out: GPUBuffer, count: number): void {
  const pipeline = ctx.pipelines.get('add');
  ctx.record().dispatch(pipeline, params([count]), [a, b, out], Math.ceil(count / workgroupSize));
}
