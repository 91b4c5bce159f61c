/**
 * Typed view of an Idefics3 / SmolVLM / SmolVLM2 ("smolvlm") config.json. Every number the engine uses comes from here;
 * nothing about the model's shape is hard-coded elsewhere.
 */
export interface VisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  headDim: number;
  patchSize: number;
  imageSize: number;
  numChannels: number;
  layerNormEps: number;
  hiddenAct: string;
  /** (imageSize / patchSize)^2 */
  numPatches: number;
}

export interface TextConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  hiddenAct: string;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
}

/** The architectures we run: Idefics3 (SmolVLM) and SmolVLM2's "smolvlm", the same network with a video path. */
export type ModelType = 'idefics3' | 'smolvlm';
export const supportedModelTypes: readonly ModelType[] = ['idefics3', 'smolvlm'];

/**
 * transformers' vision config class defaults (Idefics3VisionConfig and SmolVLMVisionConfig agree): the real SmolVLM2
 * config.json omits intermediate_size, num_hidden_layers, hidden_act and layer_norm_eps, and transformers fills them
 * with these; the other four apply when those keys are missing too.
 */
export const visionConfigDefaults = {
  hidden_size: 1152,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 16,
  num_channels: 3,
  image_size: 224,
  patch_size: 32,
  hidden_act: 'gelu_pytorch_tanh',
  layer_norm_eps: 1e-6,
} as const;

export interface ModelConfig {
  modelType: ModelType;
  vision: VisionConfig;
  text: TextConfig;
  /** Pixel-shuffle factor of the connector. */
  scaleFactor: number;
  imageTokenId: number;
  /** Image tokens per tile: (numPatches / scaleFactor^2). */
  imageSeqLen: number;
}

export class ModelConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelConfigError';
  }
}

type Json = Record<string, unknown>;

function object(value: unknown, where: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ModelConfigError(`config.json: ${where} must be an object`);
  }
  return value as Json;
}

function int(obj: Json, key: string, where: string, fallback?: number): number {
  const value = obj[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new ModelConfigError(`config.json: ${where}.${key} must be a non-negative integer (got ${JSON.stringify(value)})`);
  }
  return value;
}

function num(obj: Json, key: string, where: string, fallback?: number): number {
  const value = obj[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ModelConfigError(`config.json: ${where}.${key} must be a number (got ${JSON.stringify(value)})`);
  }
  return value;
}

function str(obj: Json, key: string, fallback: string): string {
  const value = obj[key] ?? fallback;
  return typeof value === 'string' ? value : fallback;
}

function optionalInt(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) ? value : null;
}

/** Parses config.json text (or an already parsed object) into a ModelConfig, with clear errors. */
export function parseModelConfig(input: string | unknown): ModelConfig {
  let raw: unknown = input;
  if (typeof input === 'string') {
    try {
      raw = JSON.parse(input);
    } catch (error) {
      throw new ModelConfigError(`config.json is not valid JSON: ${(error as Error).message}`);
    }
  }
  const root = object(raw, 'the file');
  const modelType = root.model_type;
  if (!supportedModelTypes.includes(modelType as ModelType)) {
    throw new ModelConfigError(
      `Unsupported architecture: model_type "${String(modelType)}". SparseMM Web runs Idefics3 models (SmolVLM) and SmolVLM2: ` +
        `config.json must say model_type "idefics3" (SmolVLM-256M/500M-Instruct) or "smolvlm" (SmolVLM2-256M/500M-Video-Instruct).`,
    );
  }
  const v = object(root.vision_config, 'vision_config');
  const t = object(root.text_config, 'text_config');

  const d = visionConfigDefaults;
  const visionHidden = int(v, 'hidden_size', 'vision_config', d.hidden_size);
  const visionHeads = int(v, 'num_attention_heads', 'vision_config', d.num_attention_heads);
  const patchSize = int(v, 'patch_size', 'vision_config', d.patch_size);
  const imageSize = int(v, 'image_size', 'vision_config', d.image_size);
  if (visionHeads === 0 || visionHidden % visionHeads !== 0) {
    throw new ModelConfigError('config.json: vision_config.hidden_size must be divisible by num_attention_heads');
  }
  if (patchSize === 0 || imageSize % patchSize !== 0) {
    throw new ModelConfigError('config.json: vision_config.image_size must be a multiple of patch_size');
  }
  const patchesPerSide = imageSize / patchSize;

  const textHidden = int(t, 'hidden_size', 'text_config');
  const textHeads = int(t, 'num_attention_heads', 'text_config');
  const kvHeads = int(t, 'num_key_value_heads', 'text_config', textHeads);
  if (textHeads === 0 || kvHeads === 0 || textHeads % kvHeads !== 0) {
    throw new ModelConfigError('config.json: text_config.num_attention_heads must be a multiple of num_key_value_heads');
  }
  const headDim = t.head_dim === undefined || t.head_dim === null ? textHidden / textHeads : int(t, 'head_dim', 'text_config');
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new ModelConfigError('config.json: text_config head_dim must be an even integer');
  }
  const eos = t.eos_token_id ?? root.eos_token_id;
  const eosTokenIds = (Array.isArray(eos) ? eos : [eos]).filter((x): x is number => typeof x === 'number');
  if (t.rope_scaling !== undefined && t.rope_scaling !== null) {
    throw new ModelConfigError('config.json: text_config.rope_scaling is not supported yet');
  }

  const scaleFactor = int(root, 'scale_factor', 'config', 2);
  if (scaleFactor === 0 || patchesPerSide % scaleFactor !== 0) {
    throw new ModelConfigError('config.json: scale_factor must divide image_size / patch_size');
  }

  return {
    modelType: modelType as ModelType,
    vision: {
      hiddenSize: visionHidden,
      intermediateSize: int(v, 'intermediate_size', 'vision_config', d.intermediate_size),
      numLayers: int(v, 'num_hidden_layers', 'vision_config', d.num_hidden_layers),
      numHeads: visionHeads,
      headDim: visionHidden / visionHeads,
      patchSize,
      imageSize,
      numChannels: int(v, 'num_channels', 'vision_config', d.num_channels),
      layerNormEps: num(v, 'layer_norm_eps', 'vision_config', d.layer_norm_eps),
      hiddenAct: str(v, 'hidden_act', d.hidden_act),
      numPatches: patchesPerSide * patchesPerSide,
    },
    text: {
      hiddenSize: textHidden,
      intermediateSize: int(t, 'intermediate_size', 'text_config'),
      numLayers: int(t, 'num_hidden_layers', 'text_config'),
      numHeads: textHeads,
      numKvHeads: kvHeads,
      headDim,
      rmsNormEps: num(t, 'rms_norm_eps', 'text_config', 1e-6),
      ropeTheta: num(t, 'rope_theta', 'text_config', 10000),
      vocabSize: int(t, 'vocab_size', 'text_config'),
      maxPositionEmbeddings: int(t, 'max_position_embeddings', 'text_config', 8192),
      // Idefics3 reads tie_word_embeddings from the top-level config (SmolVLM: false).
      tieWordEmbeddings: Boolean(root.tie_word_embeddings ?? t.tie_word_embeddings ?? false),
      hiddenAct: str(t, 'hidden_act', 'silu'),
      bosTokenId: optionalInt(t.bos_token_id ?? root.bos_token_id),
      eosTokenIds,
      padTokenId: optionalInt(t.pad_token_id ?? root.pad_token_id),
    },
    scaleFactor,
    imageTokenId: int(root, 'image_token_id', 'config'),
    imageSeqLen: (patchesPerSide * patchesPerSide) / (scaleFactor * scaleFactor),
  };
}
