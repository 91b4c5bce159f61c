import { params, type GpuContext } from '../gpu';
import type { PipelineSpec } from '../pipelines';

/** Up to this many rows (decode, a few tokens) use the GEMV kernels; more rows use the tiled GEMM. */
export const gemvMaxRows = 4;
const gemvFeaturesPerWorkgroup = 8; // 256 invocations, a team of 32 per output feature
const gemmTile = 64;

// A 4-byte placeholder bound where the kernel expects a bias when there is none (has_bias = 0 keeps it unread).
const noBiasBuffers = new WeakMap<GpuContext, GPUBuffer>();

function noBias(ctx: GpuContext): GPUBuffer {
  let buffer = noBiasBuffers.get(ctx);
  if (!buffer) {
    buffer = ctx.allocator.create('scratch', 4, GPUBufferUsage.STORAGE, 'matmul no-bias placeholder');
    noBiasBuffers.set(ctx, buffer);
  }
  return buffer;
}

/** Every pipeline matmul may use on this device (model load compiles them ahead): the GEMM, each GEMV row count and load width. */
export function matmulPipelines(ctx: GpuContext): PipelineSpec[] {
  const specs: PipelineSpec[] = [gemmPipeline(ctx)];
  for (let rows = 1; rows <= gemvMaxRows; rows++) {
    for (const entryPoint of ['gemv_vec4', 'gemv_word']) specs.push({ shader: 'matmul', entryPoint, constants: { ROWS: rows } });
  }
  return specs;
}

/**
 * The GEMM's K slice: 32 when the device has 16 KiB of workgroup memory (every WebGPU adapter does: it is the spec's
 * minimum), 16 otherwise. Tiles are 2 x 64 x TILE_K f32.
 */
export function gemmKSlice(ctx: GpuContext): number {
  return ctx.device.limits.maxComputeWorkgroupStorageSize >= 2 * gemmTile * 32 * 4 ? 32 : 16;
}

function gemmPipeline(ctx: GpuContext): PipelineSpec {
  return { shader: 'matmul', entryPoint: 'gemm', constants: { TILE_K: gemmKSlice(ctx) } };
}

/**
 * out = x W^T (+ bias): x f32 [rows, inFeatures], weight packed bf16 [outFeatures, inFeatures] (PyTorch Linear
 * layout, inFeatures even), bias packed bf16 [outFeatures] or null, out f32 [rows, outFeatures] (not aliasing x).
 * rows <= gemvMaxRows runs the decode GEMV (16-byte coalesced weight loads when inFeatures % 8 == 0), more rows the
 * tiled GEMM.
 */
export function matmul(
  ctx: GpuContext,
  x: GPUBuffer,
  weight: GPUBuffer,
  bias: GPUBuffer | null,
  out: GPUBuffer,
  rows: number,
  inFeatures: number,
  outFeatures: number,
): void {
  if (inFeatures % 2 !== 0) throw new Error(`matmul: inFeatures ${inFeatures} must be even (two bf16 per packed word)`);
  if (out === x) throw new Error('matmul: out must be a different buffer from x');
  if (rows === 0 || outFeatures === 0) return;
  const block = params([rows, inFeatures, outFeatures, bias ? 1 : 0]);
  const buffers = [x, weight, bias ?? noBias(ctx), out];
  if (rows <= gemvMaxRows) {
    const entry = inFeatures % 8 === 0 ? 'gemv_vec4' : 'gemv_word';
    const pipeline = ctx.pipelines.get('matmul', entry, { ROWS: rows });
    ctx.record().dispatch(pipeline, block, buffers, Math.ceil(outFeatures / gemvFeaturesPerWorkgroup));
  } else {
    const gemm = gemmPipeline(ctx);
    const pipeline = ctx.pipelines.get(gemm.shader, gemm.entryPoint, gemm.constants);
    ctx.record().dispatch(pipeline, block, buffers, [Math.ceil(outFeatures / gemmTile), Math.ceil(rows / gemmTile), 1]);
  }
}
