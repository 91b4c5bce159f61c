import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseModelConfig, type ModelConfig } from '../../src/model-io/config';
import { defaultReferenceModelDir } from '../../src/model-io/fixture';
import { randomWeightSpecs } from '../../src/model-io/fixture-weights';
import { idefics3Names } from '../../src/model-io/idefics3';
import { describeKeptBf16, planWeights, quantizedLayerParts, weightBytesByFormat, weightBytesFromConfig } from '../../src/model-io/weight-plan';
import { tinyFixtureFiles } from '../../src/model-io/fixture';
import { SafetensorsFile } from '../../src/model-io/safetensors';

const smolVlm = parseModelConfig(readFileSync(join(defaultReferenceModelDir(), 'config.json'), 'utf8'));

/** Shapes of a config's tensors as the random-weight generator makes them (the real checkpoint's names and shapes). */
function shapes(config: ModelConfig, drop: string[] = []): (name: string) => readonly number[] | undefined {
  const map = new Map(randomWeightSpecs(config).map((spec) => [spec.name, spec.shape]));
  for (const name of drop) map.delete(name);
  return (name) => map.get(name);
}

describe('planWeights', () => {
  it('SmolVLM-256M: q8 / q4 quantize the 7 projections x 30 layers and lm_head, nothing else', () => {
    for (const format of ['q8', 'q4'] as const) {
      const plan = planWeights(smolVlm, shapes(smolVlm), format);
      const quantized = plan.tensors.filter((t) => t.format === format).map((t) => t.name);
      expect(quantized.length).toBe(7 * smolVlm.text.numLayers + 1);
      expect(quantized).toContain(idefics3Names.lmHead);
      expect(quantized).toContain(idefics3Names.textLayer(29, 'mlp.down_proj.weight'));
      expect(quantized.some((name) => /embed|norm|vision|connector/.test(name))).toBe(false);
      expect(plan.keptBf16).toEqual([]);
    }
  });

  it('SmolVLM-256M: the quantized tensors take <= 0.55 (q8) and <= 0.3 (q4) of their bf16 bytes', () => {
    const quantizedBytes = (format: 'bf16' | 'q8' | 'q4'): number => {
      const plan = planWeights(smolVlm, shapes(smolVlm), format);
      const names = new Set([idefics3Names.lmHead, ...Array.from({ length: smolVlm.text.numLayers }, (_, l) => quantizedLayerParts.map((p) => idefics3Names.textLayer(l, p))).flat()]);
      return plan.tensors.filter((t) => names.has(t.name)).reduce((n, t) => n + t.bytes, 0);
    };
    expect(quantizedBytes('q8') / quantizedBytes('bf16')).toBeLessThanOrEqual(0.55);
    expect(quantizedBytes('q4') / quantizedBytes('bf16')).toBeLessThanOrEqual(0.3);
    const all = weightBytesByFormat(smolVlm, shapes(smolVlm));
    expect(all.q4).toBeLessThan(all.q8);
    expect(all.q8).toBeLessThan(all.bf16);
  });

  it('tied embeddings: embed_tokens stays bf16 for the gather, lm_head is a quantized copy of it', () => {
    const tied = { ...smolVlm, text: { ...smolVlm.text, tieWordEmbeddings: true } };
    const plan = planWeights(tied, shapes(tied, [idefics3Names.lmHead]), 'q4');
    expect(plan.lmHead).toBe(idefics3Names.lmHead);
    const head = plan.tensors.find((t) => t.name === idefics3Names.lmHead);
    expect(head).toMatchObject({ source: idefics3Names.embedTokens, format: 'q4' });
    expect(plan.tensors.find((t) => t.name === idefics3Names.embedTokens)?.format).toBe('bf16');
    expect(planWeights(tied, shapes(tied, [idefics3Names.lmHead]), 'bf16').lmHead).toBe(idefics3Names.embedTokens);
  });

  it('a projection whose input dimension is not whole blocks of 32 stays bf16, named with the reason', () => {
    const odd = { ...smolVlm, text: { ...smolVlm.text, hiddenSize: 48, numHeads: 3, numKvHeads: 1, headDim: 16, intermediateSize: 96, numLayers: 1 } };
    const plan = planWeights(odd, shapes(odd), 'q8');
    expect(plan.keptBf16.map((k) => k.name)).toContain(idefics3Names.textLayer(0, 'self_attn.q_proj.weight'));
    expect(plan.tensors.find((t) => t.name === idefics3Names.textLayer(0, 'mlp.down_proj.weight'))?.format).toBe('q8'); // in = 96
    expect(describeKeptBf16(plan)).toMatch(/^7 tensor\(s\) stay bf16 in q8: model\.text_model\.layers\.0\.self_attn\.q_proj\.weight \(its input dimension 48 is not a multiple of 32\);/);
  });

  it('weightBytesFromConfig (config.json alone) gives the bytes the plan of the real file gives, in every format', () => {
    const files = tinyFixtureFiles();
    const config = parseModelConfig(new TextDecoder().decode(files.get('config.json')));
    const bytes = files.get('model.safetensors')!;
    const file = SafetensorsFile.parse(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer, 'model.safetensors');
    const fromFile = weightBytesByFormat(config, (name) => (file.has(name) ? file.get(name).shape : undefined));
    expect(weightBytesFromConfig(config)).toEqual(fromFile);
    expect(fromFile.q4).toBeLessThan(fromFile.q8);
    // And at the SmolVLM-256M shape, against the generator's tensors.
    expect(weightBytesFromConfig(smolVlm)).toEqual(weightBytesByFormat(smolVlm, shapes(smolVlm)));
  });
});
