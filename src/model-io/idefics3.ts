/**
 * What an Idefics3ForConditionalGeneration checkpoint holds: its tensor names (as SmolVLM's model.safetensors spells
 * them), the tensors the forward pass reads, and the shape checks the kernels rely on. Model-io owns this so that the
 * loader and the tiny-model writer need nothing from the engine.
 */
import type { ModelConfig } from './config';
import type { SafetensorsFile } from './safetensors';

/** Tensor names of an Idefics3ForConditionalGeneration checkpoint (as SmolVLM's model.safetensors spells them). */
export const idefics3Names = {
  patchEmbedWeight: 'model.vision_model.embeddings.patch_embedding.weight',
  patchEmbedBias: 'model.vision_model.embeddings.patch_embedding.bias',
  positionEmbedding: 'model.vision_model.embeddings.position_embedding.weight',
  visionLayer: (layer: number, part: string): string => `model.vision_model.encoder.layers.${layer}.${part}`,
  postLayerNormWeight: 'model.vision_model.post_layernorm.weight',
  postLayerNormBias: 'model.vision_model.post_layernorm.bias',
  connectorProj: 'model.connector.modality_projection.proj.weight',
  embedTokens: 'model.text_model.embed_tokens.weight',
  textLayer: (layer: number, part: string): string => `model.text_model.layers.${layer}.${part}`,
  finalNorm: 'model.text_model.norm.weight',
  lmHead: 'lm_head.weight',
} as const;

export const visionLayerParts = [
  'layer_norm1.weight', 'layer_norm1.bias',
  'self_attn.q_proj.weight', 'self_attn.q_proj.bias',
  'self_attn.k_proj.weight', 'self_attn.k_proj.bias',
  'self_attn.v_proj.weight', 'self_attn.v_proj.bias',
  'self_attn.out_proj.weight', 'self_attn.out_proj.bias',
  'layer_norm2.weight', 'layer_norm2.bias',
  'mlp.fc1.weight', 'mlp.fc1.bias',
  'mlp.fc2.weight', 'mlp.fc2.bias',
] as const;

export const textLayerParts = [
  'input_layernorm.weight',
  'self_attn.q_proj.weight', 'self_attn.k_proj.weight', 'self_attn.v_proj.weight', 'self_attn.o_proj.weight',
  'post_attention_layernorm.weight',
  'mlp.gate_proj.weight', 'mlp.up_proj.weight', 'mlp.down_proj.weight',
] as const;

/** The lm_head tensor: lm_head.weight, or embed_tokens when the checkpoint ties them (and omits lm_head). */
export function lmHeadName(config: ModelConfig, has: (name: string) => boolean): string {
  if (has(idefics3Names.lmHead)) return idefics3Names.lmHead;
  if (config.text.tieWordEmbeddings) return idefics3Names.embedTokens;
  throw new Error(`The weights have no "${idefics3Names.lmHead}" and tie_word_embeddings is false.`);
}

/** Every tensor the forward pass reads. */
export function requiredTensorNames(config: ModelConfig, has: (name: string) => boolean): string[] {
  const names: string[] = [idefics3Names.patchEmbedWeight, idefics3Names.patchEmbedBias, idefics3Names.positionEmbedding];
  for (let l = 0; l < config.vision.numLayers; l++) for (const part of visionLayerParts) names.push(idefics3Names.visionLayer(l, part));
  names.push(idefics3Names.postLayerNormWeight, idefics3Names.postLayerNormBias, idefics3Names.connectorProj, idefics3Names.embedTokens);
  for (let l = 0; l < config.text.numLayers; l++) for (const part of textLayerParts) names.push(idefics3Names.textLayer(l, part));
  names.push(idefics3Names.finalNorm);
  const head = lmHeadName(config, has);
  if (head !== idefics3Names.embedTokens) names.push(head);
  return names;
}

/** Checks the shapes the kernels rely on, so that a mismatched checkpoint fails with a name instead of garbage. */
export function checkShapes(file: SafetensorsFile, config: ModelConfig): void {
  const { vision, text, scaleFactor } = config;
  const expect = (name: string, shape: number[]): void => {
    const got = file.get(name).shape;
    const elements = (s: number[]): number => s.reduce((a, b) => a * b, 1);
    // Conv weights are [hidden, C, p, p]; compare element counts plus the leading dim to allow that view.
    if (got[0] !== shape[0] || elements(got) !== elements(shape)) {
      throw new Error(`Tensor "${name}" has shape [${got.join(', ')}], the config implies [${shape.join(', ')}].`);
    }
  };
  expect(idefics3Names.patchEmbedWeight, [vision.hiddenSize, vision.numChannels * vision.patchSize * vision.patchSize]);
  expect(idefics3Names.positionEmbedding, [vision.numPatches, vision.hiddenSize]);
  expect(idefics3Names.connectorProj, [text.hiddenSize, vision.hiddenSize * scaleFactor * scaleFactor]);
  expect(idefics3Names.embedTokens, [text.vocabSize, text.hiddenSize]);
  expect(idefics3Names.textLayer(0, 'self_attn.q_proj.weight'), [text.numHeads * text.headDim, text.hiddenSize]);
  expect(idefics3Names.textLayer(0, 'self_attn.k_proj.weight'), [text.numKvHeads * text.headDim, text.hiddenSize]);
  expect(idefics3Names.textLayer(0, 'mlp.gate_proj.weight'), [text.intermediateSize, text.hiddenSize]);
  expect(idefics3Names.visionLayer(0, 'mlp.fc1.weight'), [vision.intermediateSize, vision.hiddenSize]);
}

/**
 * The shape of every tensor of the checkpoint, from config.json alone (what checkShapes expects of the file), in the
 * file's order. lm_head is absent when the config ties it to the embeddings. For sizing a model before its weights
 * are downloaded (the model panel's weight formats) and for the random-weight models.
 */
export function configTensorShapes(config: ModelConfig): Map<string, readonly number[]> {
  const { vision, text, scaleFactor } = config;
  const shapes = new Map<string, readonly number[]>();
  const vh = vision.hiddenSize;
  shapes.set(idefics3Names.patchEmbedWeight, [vh, vision.numChannels, vision.patchSize, vision.patchSize]);
  shapes.set(idefics3Names.patchEmbedBias, [vh]);
  shapes.set(idefics3Names.positionEmbedding, [vision.numPatches, vh]);
  const visionParts: Record<(typeof visionLayerParts)[number], readonly number[]> = {
    'layer_norm1.weight': [vh], 'layer_norm1.bias': [vh],
    'self_attn.q_proj.weight': [vh, vh], 'self_attn.q_proj.bias': [vh],
    'self_attn.k_proj.weight': [vh, vh], 'self_attn.k_proj.bias': [vh],
    'self_attn.v_proj.weight': [vh, vh], 'self_attn.v_proj.bias': [vh],
    'self_attn.out_proj.weight': [vh, vh], 'self_attn.out_proj.bias': [vh],
    'layer_norm2.weight': [vh], 'layer_norm2.bias': [vh],
    'mlp.fc1.weight': [vision.intermediateSize, vh], 'mlp.fc1.bias': [vision.intermediateSize],
    'mlp.fc2.weight': [vh, vision.intermediateSize], 'mlp.fc2.bias': [vh],
  };
  for (let l = 0; l < vision.numLayers; l++) for (const part of visionLayerParts) shapes.set(idefics3Names.visionLayer(l, part), visionParts[part]);
  shapes.set(idefics3Names.postLayerNormWeight, [vh]);
  shapes.set(idefics3Names.postLayerNormBias, [vh]);
  shapes.set(idefics3Names.connectorProj, [text.hiddenSize, vh * scaleFactor * scaleFactor]);
  const th = text.hiddenSize;
  shapes.set(idefics3Names.embedTokens, [text.vocabSize, th]);
  const textParts: Record<(typeof textLayerParts)[number], readonly number[]> = {
    'input_layernorm.weight': [th],
    'self_attn.q_proj.weight': [text.numHeads * text.headDim, th],
    'self_attn.k_proj.weight': [text.numKvHeads * text.headDim, th],
    'self_attn.v_proj.weight': [text.numKvHeads * text.headDim, th],
    'self_attn.o_proj.weight': [th, text.numHeads * text.headDim],
    'post_attention_layernorm.weight': [th],
    'mlp.gate_proj.weight': [text.intermediateSize, th],
    'mlp.up_proj.weight': [text.intermediateSize, th],
    'mlp.down_proj.weight': [th, text.intermediateSize],
  };
  for (let l = 0; l < text.numLayers; l++) for (const part of textLayerParts) shapes.set(idefics3Names.textLayer(l, part), textParts[part]);
  shapes.set(idefics3Names.finalNorm, [th]);
  if (!config.text.tieWordEmbeddings) shapes.set(idefics3Names.lmHead, [text.vocabSize, th]);
  return shapes;
}
