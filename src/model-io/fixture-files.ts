/** The tiny test model's files in memory: config, processor configs, tokenizer and random weights. */
import { parseModelConfig } from './config';
import { writeSafetensors, type TensorToWrite } from './safetensors';
import { buildTinyTokenizer, smolVlmChatTemplate, type FixtureTokenIds, type Json } from './fixture-tokenizer';
import { smolVlmVideoChatTemplate } from './video-prompt';
import { defaultFixtureSeed, randomTensorBf16, randomWeightSpecs, weightsMetadata } from './fixture-weights';

// ---------------------------------------------------------------------------------------------------------------
// The tiny model's JSON files

/** Tile (vision image_size) and whole-image longest edge of the tiny preset: a 320x240 image becomes 2x2 tiles + global. */
export const tinyTileSize = 64;
export const tinyMaxImageEdge = 128;

/** config.json of the tiny preset: SmolVLM's structure with miniature sizes. */
export function tinyConfigJson(ids: FixtureTokenIds): Json {
  return {
    architectures: ['Idefics3ForConditionalGeneration'],
    image_token_id: ids.image,
    model_type: 'idefics3',
    scale_factor: 2,
    text_config: {
      architectures: ['VLlama3ForCausalLM'],
      attention_bias: false,
      attention_dropout: 0.0,
      bos_token_id: ids.imStart,
      eos_token_id: ids.imEnd,
      head_dim: 16,
      hidden_act: 'silu',
      hidden_size: 64,
      intermediate_size: 128,
      max_position_embeddings: 2048,
      mlp_bias: false,
      model_type: 'llama',
      num_attention_heads: 4,
      num_hidden_layers: 2,
      num_key_value_heads: 2,
      pad_token_id: ids.imEnd,
      rms_norm_eps: 1e-5,
      rope_scaling: null,
      rope_theta: 100000,
      tie_word_embeddings: false,
      torch_dtype: 'bfloat16',
      vocab_size: ids.vocabSize,
    },
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
    transformers_version: '4.46.0',
    use_cache: true,
    vision_config: {
      hidden_act: 'gelu_pytorch_tanh',
      hidden_size: 32,
      image_size: tinyTileSize,
      intermediate_size: 64,
      layer_norm_eps: 1e-6,
      max_image_size: { longest_edge: tinyTileSize },
      model_type: 'idefics3',
      num_attention_heads: 2,
      num_channels: 3,
      num_hidden_layers: 2,
      patch_size: 8,
      size: { longest_edge: tinyMaxImageEdge },
      tie_word_embeddings: false,
    },
    vocab_size: ids.vocabSize,
  };
}

function tinyPreprocessorConfig(): Json {
  return {
    do_convert_rgb: true,
    do_image_splitting: true,
    do_normalize: true,
    do_pad: true,
    do_rescale: true,
    do_resize: true,
    image_mean: [0.5, 0.5, 0.5],
    image_processor_type: 'Idefics3ImageProcessor',
    image_std: [0.5, 0.5, 0.5],
    max_image_size: { longest_edge: tinyTileSize },
    processor_class: 'Idefics3Processor',
    resample: 1,
    rescale_factor: 1 / 255,
    size: { longest_edge: tinyMaxImageEdge },
  };
}

export function toJsonBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * The tiny SmolVLM2 ("smolvlm2-tiny"): the tiny model's network under SmolVLM2's names (model_type "smolvlm", vision
 * "smolvlm_vision", SmolVLMProcessor / SmolVLMImageProcessor) with SmolVLM2's video_sampling (fps 1, 64 frames; frames
 * become one tiny tile each). Its vision keys are spelled out (the real files omit four; config.test.ts covers that).
 */
function smolvlm2Edits(configJson: Json, preprocessor: Json, processor: Json): void {
  configJson.architectures = ['SmolVLMForConditionalGeneration'];
  configJson.model_type = 'smolvlm';
  (configJson.vision_config as Json).model_type = 'smolvlm_vision';
  preprocessor.image_processor_type = 'SmolVLMImageProcessor';
  preprocessor.processor_class = 'SmolVLMProcessor';
  preprocessor.video_sampling = { fps: 1, max_frames: 64, video_size: { longest_edge: tinyTileSize } };
  processor.processor_class = 'SmolVLMProcessor';
}

/** All files of the tiny preset (or, with `smolvlm2`, of smolvlm2-tiny), in memory (name -> bytes). Deterministic for a seed. */
export function tinyFixtureFiles(seed: number = defaultFixtureSeed, smolvlm2 = false): Map<string, Uint8Array> {
  const tokenizer = buildTinyTokenizer();
  const { ids } = tokenizer;
  const configJson = tinyConfigJson(ids);
  const preprocessor = tinyPreprocessorConfig();
  const processor: Json = { image_seq_len: 0, processor_class: 'Idefics3Processor' };
  if (smolvlm2) smolvlm2Edits(configJson, preprocessor, processor);
  const config = parseModelConfig(configJson);
  const tensors: TensorToWrite[] = randomWeightSpecs(config).map((spec) => {
    const bits = randomTensorBf16(spec, seed);
    return { name: spec.name, dtype: 'BF16', shape: spec.shape, data: new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength) };
  });
  return new Map<string, Uint8Array>([
    ['config.json', toJsonBytes(configJson)],
    ['model.safetensors', writeSafetensors(tensors, weightsMetadata(seed))],
    ['tokenizer.json', toJsonBytes(tokenizer.tokenizerJson)],
    ['tokenizer_config.json', toJsonBytes(tokenizer.tokenizerConfig)],
    ['special_tokens_map.json', toJsonBytes(tokenizer.specialTokensMap)],
    ['chat_template.json', toJsonBytes({ chat_template: smolVlmChatTemplate })],
    [
      'generation_config.json',
      toJsonBytes({ _from_model_config: true, bos_token_id: ids.endOfText, eos_token_id: ids.endOfUtterance, pad_token_id: ids.imEnd }),
    ],
    ['preprocessor_config.json', toJsonBytes(preprocessor)],
    ['processor_config.json', toJsonBytes({ ...processor, image_seq_len: config.imageSeqLen })],
    // transformers' template for conversations with a video (the processor has it built in; written for people).
    ...(smolvlm2 ? [['video_chat_template.json', toJsonBytes({ chat_template: smolVlmVideoChatTemplate })] as [string, Uint8Array]] : []),
  ]);
}
