/** The in-memory tiny Idefics3 model shared by the GPU model tests (engine parity, KV policies). */
import type { ModelConfig } from '../../src/model-io/config';
import { parseModelConfig } from '../../src/model-io/config';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../../src/model-io/safetensors';
import { f32ArrayToBf16 } from '../../src/model-io/bf16';
import { randomArray } from './gpu';

/**
 * A tiny Idefics3 model in the real formats (config.json fields, bf16 safetensors with the real tensor names), built in
 * memory: 16 px tiles of 4 px patches (16 patches, pixel shuffle 2 -> 4 image tokens per tile), 2 vision and 2 text
 * layers, GQA 3 query heads over 1 KV head. Weight scales keep activations O(1) so that logits are well spread.
 * `edit` may change a tensor's f32 values before they are stored as bf16 (e.g. a corrupt file's NaN).
 */
export function tinyModel(edit?: (name: string, values: Float32Array) => void): { config: ModelConfig; file: SafetensorsFile } {
  const raw = {
    model_type: 'idefics3',
    image_token_id: 250,
    scale_factor: 2,
    tie_word_embeddings: false,
    vision_config: {
      hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2, patch_size: 4, image_size: 16,
      num_channels: 3, layer_norm_eps: 1e-6, hidden_act: 'gelu_pytorch_tanh',
    },
    text_config: {
      hidden_size: 48, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 3, num_key_value_heads: 1, head_dim: 16,
      rms_norm_eps: 1e-5, rope_theta: 100000, vocab_size: 256, max_position_embeddings: 512, hidden_act: 'silu', eos_token_id: 2,
    },
  };
  const config = parseModelConfig(raw);
  const tensors: TensorToWrite[] = [];
  let seed = 1000;
  const add = (name: string, shape: number[], scale: number, offset = 0): void => {
    const count = shape.reduce((a, b) => a * b, 1);
    const values = randomArray(count, seed++, scale).map((x) => x + offset);
    edit?.(name, values);
    tensors.push({ name, dtype: 'BF16', shape, data: new Uint8Array(f32ArrayToBf16(values).buffer) });
  };
  const v = config.vision;
  const t = config.text;
  const linearScale = (inFeatures: number): number => 1.7 / Math.sqrt(inFeatures);
  add('model.vision_model.embeddings.patch_embedding.weight', [v.hiddenSize, v.numChannels, v.patchSize, v.patchSize], linearScale(48));
  add('model.vision_model.embeddings.patch_embedding.bias', [v.hiddenSize], 0.1);
  add('model.vision_model.embeddings.position_embedding.weight', [v.numPatches, v.hiddenSize], 0.5);
  for (let l = 0; l < v.numLayers; l++) {
    const p = `model.vision_model.encoder.layers.${l}.`;
    add(`${p}layer_norm1.weight`, [v.hiddenSize], 0.2, 1);
    add(`${p}layer_norm1.bias`, [v.hiddenSize], 0.1);
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
      add(`${p}self_attn.${proj}.weight`, [v.hiddenSize, v.hiddenSize], linearScale(v.hiddenSize));
      add(`${p}self_attn.${proj}.bias`, [v.hiddenSize], 0.1);
    }
    add(`${p}layer_norm2.weight`, [v.hiddenSize], 0.2, 1);
    add(`${p}layer_norm2.bias`, [v.hiddenSize], 0.1);
    add(`${p}mlp.fc1.weight`, [v.intermediateSize, v.hiddenSize], linearScale(v.hiddenSize));
    add(`${p}mlp.fc1.bias`, [v.intermediateSize], 0.1);
    add(`${p}mlp.fc2.weight`, [v.hiddenSize, v.intermediateSize], linearScale(v.intermediateSize));
    add(`${p}mlp.fc2.bias`, [v.hiddenSize], 0.1);
  }
  add('model.vision_model.post_layernorm.weight', [v.hiddenSize], 0.2, 1);
  add('model.vision_model.post_layernorm.bias', [v.hiddenSize], 0.1);
  const shuffled = v.hiddenSize * config.scaleFactor ** 2;
  add('model.connector.modality_projection.proj.weight', [t.hiddenSize, shuffled], linearScale(shuffled));
  add('model.text_model.embed_tokens.weight', [t.vocabSize, t.hiddenSize], 1);
  for (let l = 0; l < t.numLayers; l++) {
    const p = `model.text_model.layers.${l}.`;
    add(`${p}input_layernorm.weight`, [t.hiddenSize], 0.2, 1);
    add(`${p}self_attn.q_proj.weight`, [t.numHeads * t.headDim, t.hiddenSize], 2 * linearScale(t.hiddenSize));
    add(`${p}self_attn.k_proj.weight`, [t.numKvHeads * t.headDim, t.hiddenSize], 2 * linearScale(t.hiddenSize));
    add(`${p}self_attn.v_proj.weight`, [t.numKvHeads * t.headDim, t.hiddenSize], linearScale(t.hiddenSize));
    add(`${p}self_attn.o_proj.weight`, [t.hiddenSize, t.numHeads * t.headDim], linearScale(t.numHeads * t.headDim));
    add(`${p}post_attention_layernorm.weight`, [t.hiddenSize], 0.2, 1);
    add(`${p}mlp.gate_proj.weight`, [t.intermediateSize, t.hiddenSize], linearScale(t.hiddenSize));
    add(`${p}mlp.up_proj.weight`, [t.intermediateSize, t.hiddenSize], linearScale(t.hiddenSize));
    add(`${p}mlp.down_proj.weight`, [t.hiddenSize, t.intermediateSize], linearScale(t.intermediateSize));
  }
  add('model.text_model.norm.weight', [t.hiddenSize], 0.2, 1);
  add('lm_head.weight', [t.vocabSize, t.hiddenSize], 3 * linearScale(t.hiddenSize));
  const bytes = writeSafetensors(tensors);
  return { config, file: SafetensorsFile.parse(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer) };
}

/** An Idefics3-style prompt: text, then per tile <fake><image>x imageSeqLen, then <fake> and text (ids are arbitrary). */
export function tinyPrompt(config: ModelConfig, numTiles: number): Uint32Array {
  const ids = [1, 17, 33, 49];
  for (let tile = 0; tile < numTiles; tile++) {
    ids.push(249, 100 + tile);
    for (let i = 0; i < config.imageSeqLen; i++) ids.push(config.imageTokenId);
  }
  ids.push(249, 60, 61, 62, 63);
  return Uint32Array.from(ids);
}

