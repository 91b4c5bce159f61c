/**
 * The SigLIP-style vision tower of Idefics3 / SmolVLM, run tile after tile, each tile's output going through the
 * connector. Checked against transformers' modeling_idefics3.py (4.46) and modeling_siglip.py:
 * - Vision embeddings (Idefics3VisionEmbeddings): Conv2d(num_channels -> hidden, kernel = stride = patch_size,
 *   padding "valid") WITH bias, flattened to [patches, hidden] row-major over the patch grid; plus
 *   position_embedding(position_ids) (nn.Embedding(num_patches, hidden)). Position ids are bucketised for partially
 *   masked images: fractional coords arange(0, 1 - 1e-6, 1 / nb_patches) bucketed into boundaries
 *   arange(1/side, 1, 1/side) with right=True. For a full tile (nb_patches == side) coordinate i/side falls in bucket i,
 *   so the ids are exactly 0..num_patches-1. Every tile the Idefics3 processor produces is image_size x image_size
 *   (it resizes to multiples of max_image_size and splits; the global image is resized to image_size square), so its
 *   pixel_attention_mask is all ones and the patch mask is full: no masking and ids 0..N-1. We therefore support only
 *   full tiles (the CLI checks the mask). Idefics3Model also drops all-zero "padding" images: only batching several
 *   samples creates them; a single prompt's tiles are all real.
 * - Vision encoder layer (Idefics3EncoderLayer = SiglipEncoderLayer): pre-LN. h += out_proj(attn(layer_norm1(h)));
 *   h += fc2(gelu(fc1(layer_norm2(h)))). LayerNorm eps = vision_config.layer_norm_eps (1e-6), with weight and bias.
 *   q/k/v/out_proj are Linear WITH bias; attention is bidirectional (no mask for full tiles), scale head_dim**-0.5,
 *   softmax in f32. The MLP activation is vision_config.hidden_act = gelu_pytorch_tanh (tanh approximation).
 * - post_layernorm (LayerNorm, same eps) on the encoder output, before the connector.
 */
import type { GpuContext } from './gpu';
import type { GpuWeights } from './weights';
import { allocateModelBuffer, BufferScope } from './model-buffers';
import { connectTile } from './connector';
import { add } from './ops/add';
import { embedding } from './ops/embedding';
import { matmul } from './ops/matmul';
import { layerNorm } from './ops/norm';
import { geluTanh } from './ops/activation';
import { patchify } from './ops/vision-prep';
import { prefillAttention } from './ops/attention';
import type { ModelConfig } from '../model-io/config';
import { idefics3Names } from '../model-io/idefics3';

/**
 * Vision tower + connector for every tile: pixelValues f32 [numTiles, C, S, S] -> a new buffer (in `category`) of
 * image features f32 [numTiles * imageSeqLen, textHidden] that the caller frees (ctx.allocator.destroy).
 * Tiles run one after another through the encoder (attention is within a tile), which bounds the activations to one tile.
 */
export function encodeImage(
  ctx: GpuContext,
  weights: GpuWeights,
  config: ModelConfig,
  pixelValues: Float32Array,
  numTiles: number,
  category: 'activations' | 'imageFeatures',
): GPUBuffer {
  const { vision, text, scaleFactor, imageSeqLen } = config;
  const { hiddenSize: dim, numPatches: patches, patchSize: patch, imageSize: size, numChannels: channels } = vision;
  const tileValues = channels * size * size;
  if (!Number.isInteger(numTiles) || numTiles < 1) throw new Error(`encodeImage: numTiles must be a positive integer, got ${numTiles}`);
  if (pixelValues.length !== numTiles * tileValues) {
    throw new Error(`encodeImage: expected ${numTiles} x ${channels} x ${size} x ${size} = ${numTiles * tileValues} pixel values, got ${pixelValues.length}`);
  }
  const w = (name: string): GPUBuffer => weights.get(name);
  const patchLen = channels * patch * patch;
  const shuffledDim = dim * scaleFactor * scaleFactor;
  const features = allocateModelBuffer(ctx, category, numTiles * imageSeqLen * text.hiddenSize * 4, 'image features');
  const scope = new BufferScope(ctx);
  try {
    const pixels = scope.f32(tileValues, 'vision pixels');
    const patchRows = scope.f32(patches * patchLen, 'vision patches');
    const positionIds = scope.u32(patches, 'vision position ids');
    const positions = scope.f32(patches * dim, 'vision position embeddings');
    let hidden = scope.f32(patches * dim, 'vision hidden');
    let hiddenNext = scope.f32(patches * dim, 'vision hidden next');
    const normed = scope.f32(patches * dim, 'vision normed');
    const q = scope.f32(patches * dim, 'vision q');
    const k = scope.f32(patches * dim, 'vision k');
    const v = scope.f32(patches * dim, 'vision v');
    const attention = scope.f32(patches * dim, 'vision attention');
    const projected = scope.f32(patches * dim, 'vision projected');
    const inner = scope.f32(patches * vision.intermediateSize, 'vision mlp inner');
    const innerActivated = scope.f32(patches * vision.intermediateSize, 'vision mlp activated');
    const shuffled = scope.f32(imageSeqLen * shuffledDim, 'pixel shuffle');
    const tileFeatures = scope.f32(imageSeqLen * text.hiddenSize, 'tile features');
    // Full tiles: position ids are 0..numPatches-1 (see the header comment on bucketised ids).
    ctx.upload(positionIds, Uint32Array.from({ length: patches }, (_, i) => i));

    for (let tile = 0; tile < numTiles; tile++) {
      // Uploads are queue-ordered before the next submit, so the previous tile must have been submitted (see below).
      ctx.upload(pixels, pixelValues.subarray(tile * tileValues, (tile + 1) * tileValues));
      patchify(ctx, pixels, patchRows, 1, channels, size, size, patch);
      matmul(ctx, patchRows, w(idefics3Names.patchEmbedWeight), w(idefics3Names.patchEmbedBias), hiddenNext, patches, patchLen, dim);
      embedding(ctx, w(idefics3Names.positionEmbedding), positionIds, positions, patches, dim);
      add(ctx, hiddenNext, positions, hidden, patches * dim);

      for (let layer = 0; layer < vision.numLayers; layer++) {
        const lw = (part: string): GPUBuffer => w(idefics3Names.visionLayer(layer, part));
        layerNorm(ctx, hidden, lw('layer_norm1.weight'), lw('layer_norm1.bias'), normed, patches, dim, vision.layerNormEps);
        matmul(ctx, normed, lw('self_attn.q_proj.weight'), lw('self_attn.q_proj.bias'), q, patches, dim, dim);
        matmul(ctx, normed, lw('self_attn.k_proj.weight'), lw('self_attn.k_proj.bias'), k, patches, dim, dim);
        matmul(ctx, normed, lw('self_attn.v_proj.weight'), lw('self_attn.v_proj.bias'), v, patches, dim, dim);
        prefillAttention(ctx, q, k, v, attention, {
          queries: patches, keys: patches, numHeads: vision.numHeads, numKvHeads: vision.numHeads, headDim: vision.headDim, causal: false,
        });
        matmul(ctx, attention, lw('self_attn.out_proj.weight'), lw('self_attn.out_proj.bias'), projected, patches, dim, dim);
        add(ctx, hidden, projected, hiddenNext, patches * dim);
        [hidden, hiddenNext] = [hiddenNext, hidden];
        layerNorm(ctx, hidden, lw('layer_norm2.weight'), lw('layer_norm2.bias'), normed, patches, dim, vision.layerNormEps);
        matmul(ctx, normed, lw('mlp.fc1.weight'), lw('mlp.fc1.bias'), inner, patches, dim, vision.intermediateSize);
        geluTanh(ctx, inner, innerActivated, patches * vision.intermediateSize);
        matmul(ctx, innerActivated, lw('mlp.fc2.weight'), lw('mlp.fc2.bias'), projected, patches, vision.intermediateSize, dim);
        add(ctx, hidden, projected, hiddenNext, patches * dim);
        [hidden, hiddenNext] = [hiddenNext, hidden];
        if (layer % 8 === 7) ctx.submit(); // keeps one submit well under the uniform arena's dispatch limit
      }
      layerNorm(ctx, hidden, w(idefics3Names.postLayerNormWeight), w(idefics3Names.postLayerNormBias), normed, patches, dim, vision.layerNormEps);
      connectTile(ctx, weights, config, normed, shuffled, tileFeatures);
      const tileBytes = imageSeqLen * text.hiddenSize * 4;
      ctx.record().copy(tileFeatures, 0, features, tile * tileBytes, tileBytes);
      ctx.submit();
    }
  } catch (error) {
    ctx.allocator.destroy(features);
    throw error;
  } finally {
    scope.release();
  }
  return features;
}
