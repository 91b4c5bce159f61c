import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idefics3Names, requiredTensorNames } from '../../src/model-io/idefics3';
import { bf16ArrayToF32 } from '../../src/model-io/bf16';
import { parseModelConfig, type ModelConfig } from '../../src/model-io/config';
import {
  buildTinyTokenizer,
  defaultReferenceModelDir,
  ensureTinyFixture,
  fixtureGeneratorVersion,
  isFixtureCurrent,
  randomWeights,
  smolVlmChatTemplate,
  tinyFixtureFiles,
  writeFixture,
} from '../../src/model-io/fixture';
import { createProcessor } from '../../src/model-io/processor';
import { SafetensorsFile } from '../../src/model-io/safetensors';
import { CpuWeights, cpuGenerate } from '../reference/cpu-model';

const decoder = new TextDecoder();

function json(files: Map<string, Uint8Array>, name: string): Record<string, unknown> {
  return JSON.parse(decoder.decode(files.get(name))) as Record<string, unknown>;
}

function weightsOf(files: Map<string, Uint8Array>): SafetensorsFile {
  const bytes = files.get('model.safetensors') as Uint8Array;
  return SafetensorsFile.parse(bytes.slice().buffer);
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a !== undefined && b !== undefined && Buffer.compare(a, b) === 0;
}

/** The shape of every tensor, written out from the config here (independently of the generator). */
function expectedShape(config: ModelConfig, name: string): number[] {
  const { vision: v, text: t, scaleFactor } = config;
  const layerPart = /layers\.\d+\.(.+)$/.exec(name)?.[1];
  const vision: Record<string, number[]> = {
    'layer_norm1.weight': [v.hiddenSize], 'layer_norm1.bias': [v.hiddenSize],
    'layer_norm2.weight': [v.hiddenSize], 'layer_norm2.bias': [v.hiddenSize],
    'self_attn.q_proj.weight': [v.hiddenSize, v.hiddenSize], 'self_attn.q_proj.bias': [v.hiddenSize],
    'self_attn.k_proj.weight': [v.hiddenSize, v.hiddenSize], 'self_attn.k_proj.bias': [v.hiddenSize],
    'self_attn.v_proj.weight': [v.hiddenSize, v.hiddenSize], 'self_attn.v_proj.bias': [v.hiddenSize],
    'self_attn.out_proj.weight': [v.hiddenSize, v.hiddenSize], 'self_attn.out_proj.bias': [v.hiddenSize],
    'mlp.fc1.weight': [v.intermediateSize, v.hiddenSize], 'mlp.fc1.bias': [v.intermediateSize],
    'mlp.fc2.weight': [v.hiddenSize, v.intermediateSize], 'mlp.fc2.bias': [v.hiddenSize],
  };
  const text: Record<string, number[]> = {
    'input_layernorm.weight': [t.hiddenSize], 'post_attention_layernorm.weight': [t.hiddenSize],
    'self_attn.q_proj.weight': [t.numHeads * t.headDim, t.hiddenSize],
    'self_attn.k_proj.weight': [t.numKvHeads * t.headDim, t.hiddenSize],
    'self_attn.v_proj.weight': [t.numKvHeads * t.headDim, t.hiddenSize],
    'self_attn.o_proj.weight': [t.hiddenSize, t.numHeads * t.headDim],
    'mlp.gate_proj.weight': [t.intermediateSize, t.hiddenSize], 'mlp.up_proj.weight': [t.intermediateSize, t.hiddenSize],
    'mlp.down_proj.weight': [t.hiddenSize, t.intermediateSize],
  };
  if (name.startsWith('model.vision_model.encoder.layers.') && layerPart) return vision[layerPart];
  if (name.startsWith('model.text_model.layers.') && layerPart) return text[layerPart];
  const others: Record<string, number[]> = {
    [idefics3Names.patchEmbedWeight]: [v.hiddenSize, v.numChannels, v.patchSize, v.patchSize],
    [idefics3Names.patchEmbedBias]: [v.hiddenSize],
    [idefics3Names.positionEmbedding]: [v.numPatches, v.hiddenSize],
    [idefics3Names.postLayerNormWeight]: [v.hiddenSize],
    [idefics3Names.postLayerNormBias]: [v.hiddenSize],
    [idefics3Names.connectorProj]: [t.hiddenSize, v.hiddenSize * scaleFactor * scaleFactor],
    [idefics3Names.embedTokens]: [t.vocabSize, t.hiddenSize],
    [idefics3Names.finalNorm]: [t.hiddenSize],
    [idefics3Names.lmHead]: [t.vocabSize, t.hiddenSize],
  };
  return others[name];
}

describe('the tiny fixture generator', () => {
  const files = tinyFixtureFiles(1234);
  const config = parseModelConfig(decoder.decode(files.get('config.json')));
  const tokenizer = buildTinyTokenizer();

  it('is deterministic for a seed; another seed changes only the weights', () => {
    const again = tinyFixtureFiles(1234);
    expect([...again.keys()]).toEqual([...files.keys()]);
    for (const [name, bytes] of files) expect(sameBytes(again.get(name), bytes), name).toBe(true);
    const other = tinyFixtureFiles(99);
    expect(sameBytes(other.get('model.safetensors'), files.get('model.safetensors'))).toBe(false);
    expect(other.get('model.safetensors')?.byteLength).toBe(files.get('model.safetensors')?.byteLength);
    for (const name of files.keys()) if (name !== 'model.safetensors') expect(sameBytes(other.get(name), files.get(name)), name).toBe(true);
  });

  it('smolvlm2-tiny: the same network and weights under SmolVLM2\'s names, with video_sampling and the video template', async () => {
    const smolvlm2 = tinyFixtureFiles(1234, true);
    expect(sameBytes(smolvlm2.get('model.safetensors'), files.get('model.safetensors'))).toBe(true);
    expect(json(smolvlm2, 'config.json')).toMatchObject({ model_type: 'smolvlm', architectures: ['SmolVLMForConditionalGeneration'], vision_config: { model_type: 'smolvlm_vision' } });
    expect(json(smolvlm2, 'preprocessor_config.json')).toMatchObject({ processor_class: 'SmolVLMProcessor', video_sampling: { fps: 1, max_frames: 64 } });
    expect(json(smolvlm2, 'video_chat_template.json').chat_template).toContain("{% elif line['type'] == 'video' %}");
    const config = parseModelConfig(json(smolvlm2, 'config.json'));
    const processor = await createProcessor({ config, files: new Map([...smolvlm2].map(([name, bytes]) => [name, bytes.slice().buffer])) });
    expect(processor.videoSampling).toEqual({ fps: 1, maxFrames: 64, frameSize: config.vision.imageSize });
  });

  it('has the requested tiny config, consistent with the tokenizer', () => {
    expect(config.vision).toMatchObject({ numLayers: 2, hiddenSize: 32, numHeads: 2, intermediateSize: 64, imageSize: 64, patchSize: 8 });
    expect(config.scaleFactor).toBe(2);
    expect(config.imageSeqLen).toBe(16);
    expect(config.text).toMatchObject({
      numLayers: 2, hiddenSize: 64, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 128, ropeTheta: 100000,
      rmsNormEps: 1e-5, tieWordEmbeddings: false,
    });
    const tokenizerJson = json(files, 'tokenizer.json') as { added_tokens: { id: number; content: string }[]; model: { vocab: Record<string, number> } };
    const allIds = [...Object.values(tokenizerJson.model.vocab), ...tokenizerJson.added_tokens.map((t) => t.id)];
    const vocabSize = new Set(allIds).size;
    expect(Math.max(...allIds) + 1).toBe(vocabSize); // ids are dense
    expect(config.text.vocabSize).toBe(vocabSize);
    expect(vocabSize).toBeGreaterThan(256 + 100);
    expect(vocabSize).toBeLessThan(1000);
    const idOf = (content: string): number | undefined => tokenizerJson.added_tokens.find((t) => t.content === content)?.id;
    expect(config.imageTokenId).toBe(idOf('<image>'));
    expect(config.text.eosTokenIds).toEqual([idOf('<|im_end|>')]);
    expect(json(files, 'generation_config.json').eos_token_id).toBe(idOf('<end_of_utterance>'));
    for (const special of ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<fake_token_around_image>', '<global-img>', '<row_1_col_1>', '<row_6_col_6>', '<end_of_utterance>']) {
      expect(idOf(special), special).toBeTypeOf('number');
    }
    expect(tokenizer.ids.image).toBe(config.imageTokenId);
  });

  it('ships the real chat template and an image processor config matching the vision tower', async () => {
    const reference = JSON.parse(await readFile(join(defaultReferenceModelDir(), 'chat_template.json'), 'utf8')) as { chat_template: string };
    expect(smolVlmChatTemplate).toBe(reference.chat_template);
    expect(json(files, 'chat_template.json').chat_template).toBe(reference.chat_template);
    expect(json(files, 'tokenizer_config.json').chat_template).toBe(reference.chat_template);
    expect(json(files, 'tokenizer_config.json').tokenizer_class).toBe('GPT2Tokenizer');
    const preprocessor = json(files, 'preprocessor_config.json');
    expect(preprocessor.image_processor_type).toBe('Idefics3ImageProcessor');
    expect(preprocessor.max_image_size).toEqual({ longest_edge: 64 });
    expect(preprocessor.size).toEqual({ longest_edge: 128 });
    expect(json(files, 'processor_config.json').image_seq_len).toBe(16);
  });

  it('has every tensor VlmModel needs, BF16, with the shapes the config implies, and nothing else', () => {
    const weights = weightsOf(files);
    const names = requiredTensorNames(config, (name) => weights.has(name));
    expect(names).toContain('lm_head.weight');
    expect([...weights.tensors.keys()].sort()).toEqual([...names].sort());
    for (const name of names) {
      const info = weights.get(name);
      expect(info.dtype, name).toBe('BF16');
      expect(info.shape, name).toEqual(expectedShape(config, name));
    }
  });

  it('draws weights at sane scales (norm weights near 1, linear weights ~ 1/sqrt(fan_in))', () => {
    const weights = weightsOf(files);
    const stats = (name: string): { mean: number; maxAbs: number } => {
      const values = bf16ArrayToF32(weights.toBf16(name));
      let sum = 0;
      let maxAbs = 0;
      for (const x of values) {
        expect(Number.isFinite(x)).toBe(true);
        sum += x;
        maxAbs = Math.max(maxAbs, Math.abs(x));
      }
      return { mean: sum / values.length, maxAbs };
    };
    const norm = stats(idefics3Names.finalNorm);
    expect(norm.mean).toBeGreaterThan(0.9);
    expect(norm.mean).toBeLessThan(1.1);
    const gate = stats(idefics3Names.textLayer(0, 'mlp.gate_proj.weight'));
    expect(Math.abs(gate.mean)).toBeLessThan(0.02);
    expect(gate.maxAbs).toBeLessThanOrEqual(1.7 / Math.sqrt(64) + 1e-3);
    expect(gate.maxAbs).toBeGreaterThan(0.15);
  });

  it('randomWeights(config, seed) builds the same bytes in memory', () => {
    const inMemory = randomWeights(config, 1234);
    expect(sameBytes(new Uint8Array(inMemory.buffer), files.get('model.safetensors'))).toBe(true);
    expect(inMemory.metadata.seed).toBe('1234');
  });

  it('greedy decoding on the CPU reference gives varied tokens, not one token repeated', async () => {
    const weightsFiles = new Map<string, ArrayBuffer>();
    for (const [name, bytes] of files) weightsFiles.set(name, bytes.slice().buffer);
    const processor = await createProcessor({ config, files: weightsFiles });
    const inputs = await processor.prepare(null, [{ role: 'user', text: 'Describe the image.' }]);
    const { tokenIds, logitsPerStep } = cpuGenerate(new CpuWeights(weightsOf(files)), config, inputs.inputIds, new Float32Array(0), 0, 12);
    expect(new Set(tokenIds).size).toBeGreaterThanOrEqual(6);
    // Logits are spread (a clear winner), not all ~equal.
    const first = logitsPerStep[0];
    expect(Math.max(...first) - Math.min(...first)).toBeGreaterThan(4);
  });
});

describe('writeFixture / ensureTinyFixture on disk', () => {
  let root: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'sparsemm-fixture-'));
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('writes exactly the in-memory files plus a stamp, deterministically', async () => {
    const first = await writeFixture(join(root, 'a'), { seed: 5 });
    const second = await writeFixture(join(root, 'b'), { seed: 5 });
    const expected = tinyFixtureFiles(5);
    expect(Object.keys(first.files).sort()).toEqual([...expected.keys()].sort());
    for (const [name, bytes] of expected) {
      const a = await readFile(join(first.dir, name));
      const b = await readFile(join(second.dir, name));
      expect(sameBytes(a, bytes), name).toBe(true);
      expect(sameBytes(b, bytes), name).toBe(true);
    }
    const stamp = JSON.parse(await readFile(join(first.dir, '.fixture-stamp.json'), 'utf8')) as { version: number; seed: number };
    expect(stamp).toMatchObject({ version: fixtureGeneratorVersion, seed: 5, preset: 'tiny' });
    expect(await isFixtureCurrent(first.dir, 'tiny', 5)).toBe(true);
    expect(await isFixtureCurrent(first.dir, 'tiny', 6)).toBe(false);
  });

  it('rejects a bad seed or preset', async () => {
    await expect(writeFixture(join(root, 'bad'), { seed: -1 })).rejects.toThrow(/seed must be an integer/);
    await expect(writeFixture(join(root, 'bad'), { preset: 'huge' as never })).rejects.toThrow(/Unknown fixture preset "huge"/);
  });

  it('ensureTinyFixture writes once, keeps a current copy, and regenerates a damaged or stale one', async () => {
    const dir = join(root, 'tiny');
    expect(await ensureTinyFixture(dir)).toBe(dir);
    const weightsPath = join(dir, 'model.safetensors');
    const firstWrite = (await stat(weightsPath)).mtimeMs;
    await new Promise((resolve) => setTimeout(resolve, 20));
    await ensureTinyFixture(dir);
    expect((await stat(weightsPath)).mtimeMs).toBe(firstWrite);

    // A truncated weights file (e.g. an interrupted copy) is noticed and replaced.
    await truncate(weightsPath, 100);
    await ensureTinyFixture(dir);
    expect(sameBytes(await readFile(weightsPath), tinyFixtureFiles().get('model.safetensors'))).toBe(true);

    // An old generator version is replaced.
    const stampPath = join(dir, '.fixture-stamp.json');
    const stamp = JSON.parse(await readFile(stampPath, 'utf8')) as Record<string, unknown>;
    await writeFile(stampPath, JSON.stringify({ ...stamp, version: fixtureGeneratorVersion - 1 }));
    expect(await isFixtureCurrent(dir, 'tiny', 1234)).toBe(false);
    await ensureTinyFixture(dir);
    expect(await isFixtureCurrent(dir, 'tiny', 1234)).toBe(true);
  });
});
