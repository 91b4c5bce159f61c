import type { GpuContext } from '../gpu';
import { kernelParams } from '../params';
import { embeddingParams } from '../kernel-params';

const workgroupSize = 256;

/** out[t, :] = table[ids[t], :]: table packed bf16 [vocab, dim] (dim even), ids u32 [tokens], out f32 [tokens, dim]. */
export function embedding(ctx: GpuContext, table: GPUBuffer, ids: GPUBuffer, out: GPUBuffer, tokens: number, dim: number): void {
  if (dim % 2 !== 0) throw new Error(`embedding: dim ${dim} must be even (two bf16 per packed word)`);
  const halfDim = dim / 2;
  const pipeline = ctx.pipelines.get('embedding');
  ctx.record().dispatch(pipeline, kernelParams(embeddingParams, { tokens, half_dim: halfDim }), [table, ids, out], Math.ceil((tokens * halfDim) / workgroupSize));
}
