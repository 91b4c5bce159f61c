import { params, type GpuContext } from '../gpu';

/** In-place softmax over each row of x (f32 [rows, cols]); max-subtracted. A row that is all -inf becomes zeros. */
export function softmax(ctx: GpuContext, x: GPUBuffer, rows: number, cols: number): void {
  const pipeline = ctx.pipelines.get('softmax');
  ctx.record().dispatch(pipeline, params([rows, cols]), [x], rows);
}
