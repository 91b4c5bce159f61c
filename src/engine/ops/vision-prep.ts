import type { GpuContext } from '../gpu';
import { kernelParams } from '../params';
import { patchifyParams, shuffleParams } from '../kernel-params';

const workgroupSize = 256;

/**
 * Cuts images into patch rows: pixels f32 [tiles, channels, height, width] ->
 * out f32 [tiles * (height/patch) * (width/patch), channels * patch * patch], each row in (c, ky, kx) order,
 * patches row-major over the grid. matmul(out, conv weight [hidden, C, p, p] viewed as [hidden, C*p*p], conv bias)
 * then equals SigLIP's Conv2d(kernel = stride = patch) patch embedding.
 */
export function patchify(
  ctx: GpuContext,
  pixels: GPUBuffer,
  out: GPUBuffer,
  tiles: number,
  channels: number,
  height: number,
  width: number,
  patch: number,
): void {
  if (height % patch !== 0 || width % patch !== 0) throw new Error(`patchify: ${height}x${width} is not a multiple of the patch size ${patch}`);
  const gridW = width / patch;
  const patchesPerTile = (height / patch) * gridW;
  const patchLen = channels * patch * patch;
  const total = tiles * patchesPerTile * patchLen;
  const pipeline = ctx.pipelines.get('vision_prep', 'patchify');
  ctx.record().dispatch(
    pipeline,
    kernelParams(patchifyParams, { total, channels, height, width, patch_size: patch, grid_w: gridW, patches_per_tile: patchesPerTile, patch_len: patchLen }),
    [pixels, out],
    Math.ceil(total / workgroupSize),
  );
}

/**
 * Idefics3Connector.pixel_shuffle: x f32 [tiles, seq, dim] -> out f32 [tiles, seq / scale^2, dim * scale^2].
 * seq must be a square whose side is a multiple of scale.
 */
export function pixelShuffle(ctx: GpuContext, x: GPUBuffer, out: GPUBuffer, tiles: number, seq: number, dim: number, scale: number): void {
  const side = Math.round(Math.sqrt(seq));
  if (side * side !== seq || side % scale !== 0) {
    throw new Error(`pixelShuffle: seq ${seq} must be a square whose side is a multiple of ${scale}`);
  }
  const outSide = side / scale;
  const outSeq = outSide * outSide;
  const outDim = dim * scale * scale;
  const total = tiles * outSeq * outDim;
  const pipeline = ctx.pipelines.get('vision_prep', 'pixel_shuffle');
  ctx.record().dispatch(
    pipeline,
    kernelParams(shuffleParams, { total, seq, dim, scale, side, out_side: outSide, out_seq: outSeq, out_dim: outDim }),
    [x, out],
    Math.ceil(total / workgroupSize),
  );
}
