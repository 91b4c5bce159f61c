import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelConfigError, parseModelConfig } from '../../src/model-io/config';
import { defaultReferenceModelDir } from '../../src/model-io/fixture';
import { smolvlm2ReferenceDir } from '../helpers/reference-data';

const referenceConfigText = readFileSync(join(defaultReferenceModelDir(), 'config.json'), 'utf8');

/** A minimal valid Idefics3 config, edited per test. */
function minimalConfig(): Record<string, unknown> {
  return {
    model_type: 'idefics3',
    image_token_id: 10,
    scale_factor: 2,
    vision_config: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, patch_size: 8, image_size: 64 },
    text_config: { hidden_size: 64, intermediate_size: 128, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 100 },
  };
}

function withText(changes: Record<string, unknown>): Record<string, unknown> {
  const config = minimalConfig();
  config.text_config = { ...(config.text_config as object), ...changes };
  return config;
}

describe('parseModelConfig', () => {
  it('reads the real SmolVLM-256M-Instruct config.json', () => {
    const config = parseModelConfig(referenceConfigText);
    expect(config.modelType).toBe('idefics3');
    expect(config.text).toEqual({
      hiddenSize: 576,
      intermediateSize: 1536,
      numLayers: 30,
      numHeads: 9,
      numKvHeads: 3,
      headDim: 64,
      rmsNormEps: 1e-5,
      ropeTheta: 100000,
      vocabSize: 49280,
      maxPositionEmbeddings: 8192,
      tieWordEmbeddings: false,
      hiddenAct: 'silu',
      bosTokenId: 1,
      eosTokenIds: [2],
      padTokenId: 2,
    });
    expect(config.vision).toEqual({
      hiddenSize: 768,
      intermediateSize: 3072,
      numLayers: 12,
      numHeads: 12,
      headDim: 64,
      patchSize: 16,
      imageSize: 512,
      numChannels: 3,
      layerNormEps: 1e-6,
      hiddenAct: 'gelu_pytorch_tanh',
      numPatches: 1024,
    });
    expect(config.scaleFactor).toBe(4);
    expect(config.imageSeqLen).toBe(64); // (512 / 16)^2 / 4^2
    expect(config.imageTokenId).toBe(49190);
  });

  it('reads the real SmolVLM2-500M-Video-Instruct config.json, filling the vision keys it omits with transformers\' defaults', () => {
    const raw = JSON.parse(readFileSync(join(smolvlm2ReferenceDir, 'config.json'), 'utf8')) as { model_type: string; vision_config: Record<string, unknown> };
    expect(raw.model_type).toBe('smolvlm');
    expect(raw.vision_config.model_type).toBe('smolvlm_vision');
    // The file really omits them: the defaults are what make it load.
    for (const key of ['intermediate_size', 'num_hidden_layers', 'hidden_act', 'layer_norm_eps']) expect(raw.vision_config).not.toHaveProperty(key);
    const config = parseModelConfig(raw);
    expect(config.modelType).toBe('smolvlm');
    expect(config.vision).toEqual({
      hiddenSize: 768,
      intermediateSize: 3072,
      numLayers: 12,
      numHeads: 12,
      headDim: 64,
      patchSize: 16,
      imageSize: 512,
      numChannels: 3,
      layerNormEps: 1e-6,
      hiddenAct: 'gelu_pytorch_tanh',
      numPatches: 1024,
    });
    expect(config.text).toMatchObject({ hiddenSize: 960, intermediateSize: 2560, numLayers: 32, numHeads: 15, numKvHeads: 5, headDim: 64, vocabSize: 49280, maxPositionEmbeddings: 8192 });
    expect(config.imageSeqLen).toBe(64);
    expect(config.imageTokenId).toBe(49190);
  });

  it('fills every vision key transformers has a default for when a config omits them all', () => {
    const config = minimalConfig();
    config.model_type = 'smolvlm';
    config.vision_config = {};
    config.scale_factor = 7; // 224 / 32 = 7 patches per side
    const vision = parseModelConfig(config).vision;
    expect(vision).toEqual({
      hiddenSize: 1152,
      intermediateSize: 3072,
      numLayers: 12,
      numHeads: 16,
      headDim: 72,
      patchSize: 32,
      imageSize: 224,
      numChannels: 3,
      layerNormEps: 1e-6,
      hiddenAct: 'gelu_pytorch_tanh',
      numPatches: 49,
    });
  });

  it('accepts an already parsed object the same as text', () => {
    expect(parseModelConfig(JSON.parse(referenceConfigText))).toEqual(parseModelConfig(referenceConfigText));
  });

  it('rejects an unknown model_type with a clear message', () => {
    const llava = { ...minimalConfig(), model_type: 'llava_next' };
    expect(() => parseModelConfig(llava)).toThrow(ModelConfigError);
    expect(() => parseModelConfig(llava)).toThrow('Unsupported architecture: model_type "llava_next". SparseMM Web runs Idefics3 models (SmolVLM) and SmolVLM2: ' +
        'config.json must say model_type "idefics3" (SmolVLM-256M/500M-Instruct) or "smolvlm" (SmolVLM2-256M/500M-Video-Instruct).');
    const { model_type: _dropped, ...untyped } = minimalConfig();
    expect(() => parseModelConfig(untyped)).toThrow(/model_type "undefined"/);
  });

  it('rejects text that is not JSON, and JSON that is not an object', () => {
    expect(() => parseModelConfig('{"model_type": ')).toThrow(/config\.json is not valid JSON/);
    expect(() => parseModelConfig('[1]')).toThrow(/the file must be an object/);
  });

  it('names missing or invalid fields', () => {
    const config = minimalConfig();
    // A missing vision key takes transformers' default; a present but invalid one is refused.
    (config.vision_config as Record<string, unknown>).hidden_size = 'wide';
    expect(() => parseModelConfig(config)).toThrow('config.json: vision_config.hidden_size must be a non-negative integer (got "wide")');
    expect(() => parseModelConfig(withText({ num_hidden_layers: undefined }))).toThrow('config.json: text_config.num_hidden_layers must be a non-negative integer (got undefined)');
    expect(() => parseModelConfig({ ...minimalConfig(), text_config: 'x' })).toThrow(/text_config must be an object/);
    expect(() => parseModelConfig(withText({ rms_norm_eps: 'small' }))).toThrow(/text_config\.rms_norm_eps must be a number/);
    const noImageToken = minimalConfig();
    delete noImageToken.image_token_id;
    expect(() => parseModelConfig(noImageToken)).toThrow(/config\.image_token_id/);
  });

  it('checks head and patch arithmetic', () => {
    expect(() => parseModelConfig(withText({ num_key_value_heads: 3 }))).toThrow(/multiple of num_key_value_heads/);
    expect(() => parseModelConfig({ ...minimalConfig(), scale_factor: 3 })).toThrow(/scale_factor must divide/);
    const badPatch = minimalConfig();
    (badPatch.vision_config as Record<string, unknown>).patch_size = 7;
    expect(() => parseModelConfig(badPatch)).toThrow(/multiple of patch_size/);
    expect(() => parseModelConfig(withText({ head_dim: 15 }))).toThrow(/head_dim must be an even integer/);
  });

  it('rejects rope_scaling, which the engine does not implement', () => {
    expect(() => parseModelConfig(withText({ rope_scaling: { type: 'linear', factor: 2 } }))).toThrow(/rope_scaling is not supported/);
  });

  it('fills defaults: head_dim = hidden / heads, KV heads = heads, scale factor 2, eos from the root', () => {
    const config = minimalConfig();
    delete (config.text_config as Record<string, unknown>).num_key_value_heads;
    delete config.scale_factor;
    config.eos_token_id = [5, 6];
    const parsed = parseModelConfig(config);
    expect(parsed.text.headDim).toBe(16);
    expect(parsed.text.numKvHeads).toBe(4);
    expect(parsed.scaleFactor).toBe(2);
    expect(parsed.imageSeqLen).toBe(16);
    expect(parsed.text.eosTokenIds).toEqual([5, 6]);
    expect(parsed.text.ropeTheta).toBe(10000);
  });

  it('takes tie_word_embeddings from the top level first (as Idefics3 does)', () => {
    const tied = { ...withText({ tie_word_embeddings: false }), tie_word_embeddings: true };
    expect(parseModelConfig(tied).text.tieWordEmbeddings).toBe(true);
    expect(parseModelConfig(withText({ tie_word_embeddings: true })).text.tieWordEmbeddings).toBe(true);
    expect(parseModelConfig(minimalConfig()).text.tieWordEmbeddings).toBe(false);
  });
});
