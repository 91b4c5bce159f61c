/**
 * The Idefics3 connector and the merge of image features into the prompt, checked against transformers'
 * modeling_idefics3.py (4.46):
 * - Connector (Idefics3Connector): pixel_shuffle(x, scale_factor) = view(b, h, w, d) -> view(b, h, w/s, d*s) ->
 *   permute(0,2,1,3) -> reshape(b, w/s, h/s, d*s*s) -> permute(0,2,1,3) -> reshape(b, seq/s^2, d*s^2); then
 *   modality_projection.proj = Linear(d*s^2 -> text hidden, bias=False). No other layer (no norm, no activation).
 * - Image features replace the embeddings at the input_ids == image_token_id positions (inputs_merger:
 *   inputs_embeds[mask] = features.view(-1, hidden)), in order: tile after tile (the processor puts the row/col tiles
 *   first and the global image last), 64 tokens per 512 px tile for SmolVLM.
 */
import type { GpuContext } from './gpu';
import type { GpuWeights } from './weights';
import { allocateModelBuffer } from './model-buffers';
import { matmul } from './ops/matmul';
import { pixelShuffle } from './ops/vision-prep';
import type { ModelConfig } from '../model-io/config';
import { idefics3Names } from '../model-io/idefics3';

/**
 * One tile's connector: the vision tower's output `visionOut` f32 [numPatches, visionHidden] -> pixel shuffle into
 * `shuffled` [imageSeqLen, visionHidden * s^2] -> the projection into `tileFeatures` f32 [imageSeqLen, textHidden].
 */
export function connectTile(ctx: GpuContext, weights: GpuWeights, config: ModelConfig, visionOut: GPUBuffer, shuffled: GPUBuffer, tileFeatures: GPUBuffer): void {
  const { vision, text, scaleFactor, imageSeqLen } = config;
  const shuffledDim = vision.hiddenSize * scaleFactor * scaleFactor;
  pixelShuffle(ctx, visionOut, shuffled, 1, vision.numPatches, vision.hiddenSize, scaleFactor);
  matmul(ctx, shuffled, weights.get(idefics3Names.connectorProj), null, tileFeatures, imageSeqLen, shuffledDim, text.hiddenSize);
}

/** The pictures' precomputed features side by side in one new 'activations' buffer [imageTokens, textHidden]. */
export function joinImageFeatures(ctx: GpuContext, config: ModelConfig, parts: readonly GPUBuffer[], imageTokens: number): GPUBuffer {
  const rowBytes = config.text.hiddenSize * 4;
  const total = parts.reduce((n, part) => n + part.size, 0);
  if (total !== imageTokens * rowBytes) {
    throw new Error(`generate: the prompt has ${imageTokens} image tokens but the given image features hold ${total / rowBytes} rows`);
  }
  const joined = allocateModelBuffer(ctx, 'activations', total, 'image features (joined)');
  const recorder = ctx.record();
  let offset = 0;
  for (const part of parts) {
    recorder.copy(part, 0, joined, offset, part.size);
    offset += part.size;
  }
  return joined;
}

/** Contiguous runs of the image token in the prompt (one per tile for Idefics3 prompts). */
export function imageTokenRuns(inputIds: ArrayLike<number>, imageTokenId: number): { start: number; length: number }[] {
  const runs: { start: number; length: number }[] = [];
  for (let i = 0; i < inputIds.length; i++) {
    if (inputIds[i] !== imageTokenId) continue;
    const last = runs[runs.length - 1];
    if (last && last.start + last.length === i) last.length += 1;
    else runs.push({ start: i, length: 1 });
  }
  return runs;
}

/** Copies the image features into the embedded prompt `hidden` [tokens, textHidden] at the image-token runs, in order. */
export function mergeImageFeatures(ctx: GpuContext, imageFeatures: GPUBuffer, hidden: GPUBuffer, imageRuns: readonly { start: number; length: number }[], dim: number): void {
  let featureRow = 0;
  for (const run of imageRuns) {
    ctx.record().copy(imageFeatures, featureRow * dim * 4, hidden, run.start * dim * 4, run.length * dim * 4);
    featureRow += run.length;
  }
}
