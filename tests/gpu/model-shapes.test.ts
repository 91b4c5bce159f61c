/**
 * The text decoder at shapes the tiny fixture never reaches, in every weight format, against the CPU reference (on the
 * dequantized weights for q8 / q4): SmolVLM(2)-500M's text shape (hidden 960, 15 query / 5 KV heads, head_dim 64,
 * intermediate 2560; 2 layers and a small vocabulary here), and the decode step's separate q/k/v GEMVs + RoPE + cache
 * append that the fused kernel leaves to shapes with > 16 KV heads (32 / 32 as SmolLM2-1.7B) or head_dim > 64.
 * Text-only prompts, a prefill and two decode steps each: the logits against the reference.
 */
import { describe, expect, it } from 'vitest';
import { fullCacheKept, VlmModel } from '../../src/engine/model';
import { RaggedKvCache } from '../../src/engine/kv-cache';
import { decodeQkvShape } from '../../src/engine/model-kernels';
import { qkvRopePairs } from '../../src/engine/ops/gemv';
import { parseModelConfig, type ModelConfig } from '../../src/model-io/config';
import { randomWeights } from '../../src/model-io/fixture-weights';
import { weightFormats } from '../../src/model-io/quantize';
import { argmax } from '../reference/cpu-ops';
import { cpuDecodeStep, cpuPrefill, CpuWeights } from '../reference/cpu-model';
import { gpuContext, maxAbsDiff } from '../helpers/gpu';

function textShape(text: { hidden: number; heads: number; kvHeads: number; headDim: number; intermediate: number }): ModelConfig {
  return parseModelConfig({
    model_type: 'idefics3',
    image_token_id: 60,
    scale_factor: 2,
    vision_config: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, patch_size: 4, image_size: 16, num_channels: 3 },
    text_config: {
      hidden_size: text.hidden, intermediate_size: text.intermediate, num_hidden_layers: 2, num_attention_heads: text.heads,
      num_key_value_heads: text.kvHeads, head_dim: text.headDim, rms_norm_eps: 1e-5, rope_theta: 100000, vocab_size: 96,
      max_position_embeddings: 512, eos_token_id: 2,
    },
  });
}

const shapes = [
  { name: 'SmolVLM(2)-500M text shape, 2 layers (fused q/k/v)', config: textShape({ hidden: 960, heads: 15, kvHeads: 5, headDim: 64, intermediate: 2560 }), fused: true },
  { name: '32 / 32 heads as SmolLM2-1.7B, head_dim 16 (separate q/k/v)', config: textShape({ hidden: 512, heads: 32, kvHeads: 32, headDim: 16, intermediate: 256 }), fused: false },
  { name: 'head_dim 128 (separate q/k/v)', config: textShape({ hidden: 256, heads: 4, kvHeads: 2, headDim: 128, intermediate: 256 }), fused: false },
  // Hidden 48 is not whole blocks of 32: every projection that reads it (q/k/v, o, gate/up, lm_head) stays bf16 and
  // is named; down_proj (input 96) is quantized.
  { name: 'hidden 48, not whole blocks: those projections stay bf16, named', config: textShape({ hidden: 48, heads: 3, kvHeads: 1, headDim: 16, intermediate: 96 }), fused: true, keptBf16: true },
];

const maxAbs = (values: Float32Array): number => values.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
// As model.test.ts: f32 summation order (hidden 960 sums more terms than the fixture's, hence 4e-3 of the logit scale).
const relativeTolerance = 4e-3;

describe('the text decoder at other shapes, in every weight format', () => {
  for (const shape of shapes) {
    it(shape.name, async () => {
      const { config } = shape;
      const ctx = await gpuContext();
      expect(qkvRopePairs(decodeQkvShape(config), ctx.gemv) !== null).toBe(shape.fused);
      const file = randomWeights(config, 7);
      const ids = Uint32Array.from([1, 5, 9, 13, 40, 7, 22]);
      for (const weightFormat of weightFormats) {
        const model = await VlmModel.load(ctx, file, config, { weightFormat });
        const cpuWeights = new CpuWeights(file, config, weightFormat);
        const { text } = config;
        const cache = RaggedKvCache.create(ctx, {
          numLayers: text.numLayers, numKvHeads: text.numKvHeads, headDim: text.headDim, promptLength: ids.length,
          keptPerHead: fullCacheKept(text.numLayers, text.numKvHeads, ids.length), maxNewTokens: 2,
        });
        try {
          const { note } = model.loadedWeights;
          if (shape.keptBf16 && weightFormat !== 'bf16') {
            expect(note, weightFormat).toMatch(new RegExp(`^13 tensor\\(s\\) stay bf16 in ${weightFormat}: model\\.text_model\\.layers\\.0\\.self_attn\\.q_proj\\.weight \\(its input dimension 48 is not a multiple of 32\\);`));
            expect(model.weightFormat).toBe(weightFormat);
          } else {
            expect(note, weightFormat).toBeNull();
          }
          const cpu = cpuPrefill(cpuWeights, config, ids, null);
          const got = await ctx.readF32(await model.prefill(ids, null, cache), text.vocabSize);
          expect(maxAbsDiff(got, cpu.logits), `${weightFormat} prefill`).toBeLessThan(relativeTolerance * Math.max(1, maxAbs(cpu.logits)));
          let token = argmax(cpu.logits);
          for (let step = 0; step < 2; step++) {
            const position = ids.length + step;
            const gotNext = await ctx.readF32(model.decodeStep(token, position, cache), text.vocabSize);
            const wantNext = cpuDecodeStep(cpuWeights, config, token, position, cpu.cache);
            expect(maxAbsDiff(gotNext, wantNext), `${weightFormat} decode ${step}`).toBeLessThan(relativeTolerance * Math.max(1, maxAbs(wantNext)));
            token = argmax(wantNext);
          }
        } finally {
          cache.destroy();
          model.destroy();
        }
      }
    }, 600_000);
  }
});
