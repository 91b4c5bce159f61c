import { fileURLToPath } from 'node:url';
import { RawImage } from '@huggingface/transformers';
import { beforeAll, describe, expect, it } from 'vitest';
import { MemoryModelCache } from '../../src/model-io/cache';
import { defaultReferenceModelDir, tinyFixtureFiles } from '../../src/model-io/fixture';
import { type LoadedModelFiles, loadModelFiles } from '../../src/model-io/loader';
import { modelDirectorySource } from '../../src/model-io/node-loader';
import { createProcessor, ProcessorError, type ProcessorSource, type RawImageLike, type VlmProcessor } from '../../src/model-io/processor';
import { parseModelConfig } from '../../src/model-io/config';
import { idefics3ResizedSize } from '../../src/model-io/image-grid';
import { imageTokenRuns } from '../../src/engine/model';

const samplePng = fileURLToPath(new URL('../../public/samples/shapes.png', import.meta.url));

/** A deterministic RGB test pattern (gradients), so resizing has something to work on. */
function pattern(width: number, height: number): RawImageLike {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = (x * 255) / width;
      data[i + 1] = (y * 255) / height;
      data[i + 2] = ((x + y) * 7) & 0xff;
    }
  }
  return { data, width, height, channels: 3 };
}

function tinySource(edit?: (files: Map<string, Uint8Array>) => void): ProcessorSource {
  const files = tinyFixtureFiles();
  edit?.(files);
  const asBuffers = new Map<string, ArrayBuffer>();
  for (const [name, bytes] of files) asBuffers.set(name, bytes.slice().buffer);
  return { config: parseModelConfig(new TextDecoder().decode(files.get('config.json'))), files: asBuffers };
}

function editJson(files: Map<string, Uint8Array>, name: string, change: (json: Record<string, unknown>) => void): void {
  const json = JSON.parse(new TextDecoder().decode(files.get(name))) as Record<string, unknown>;
  change(json);
  files.set(name, new TextEncoder().encode(JSON.stringify(json)));
}

describe('createProcessor on the real SmolVLM-256M-Instruct files (no weights)', () => {
  let reference: LoadedModelFiles;
  let processor: VlmProcessor;

  beforeAll(async () => {
    reference = await loadModelFiles(await modelDirectorySource(defaultReferenceModelDir()), {
      cache: new MemoryModelCache(),
      includeWeights: false,
    });
    processor = await createProcessor(reference);
  });

  it('an 800x600 image gives 13 tiles (4x3 + global), 832 image tokens, 876 tokens in all', async () => {
    const inputs = await processor.prepare(pattern(800, 600), [{ role: 'user', text: 'Can you describe this image?', hasImage: true }]);
    expect(inputs.numTiles).toBe(13);
    expect([inputs.imageRows, inputs.imageCols]).toEqual([3, 4]);
    expect([inputs.tileHeight, inputs.tileWidth]).toEqual([512, 512]);
    expect(inputs.imageTokenCount).toBe(832);
    expect(inputs.inputIds.length).toBe(876);
    expect(inputs.pixelValues.length).toBe(13 * 3 * 512 * 512);
    // image_mean = image_std = 0.5: pixels land in [-1, 1].
    let min = Infinity;
    let max = -Infinity;
    for (const value of inputs.pixelValues) {
      min = Math.min(min, value);
      max = Math.max(max, value);
    }
    expect(min).toBeGreaterThanOrEqual(-1.0001);
    expect(max).toBeLessThanOrEqual(1.0001);
    expect(max - min).toBeGreaterThan(1);
    // One run of 64 <image> tokens per tile, in the tile order the connector emits.
    const runs = imageTokenRuns(inputs.inputIds, 49190);
    expect(runs.length).toBe(13);
    expect(runs.every((run) => run.length === 64)).toBe(true);
    expect(Array.from(inputs.imageTokenPositions.slice(0, 2))).toEqual([runs[0].start, runs[0].start + 1]);
    const text = processor.decode(Array.from(inputs.inputIds)).replace(/(<image>)+/g, '<image>*');
    expect(text.startsWith('<|im_start|>User:<fake_token_around_image><row_1_col_1><image>*<fake_token_around_image><row_1_col_2>')).toBe(true);
    expect(text).toContain('<row_3_col_4><image>*');
    expect(text.endsWith('<fake_token_around_image><global-img><image>*<fake_token_around_image>Can you describe this image?<end_of_utterance>\nAssistant:')).toBe(true);
  });

  it('applies the real chat template and knows the ids', () => {
    expect(processor.chatPrompt([{ role: 'user', text: 'Hello' }])).toBe('<|im_start|>User: Hello<end_of_utterance>\nAssistant:');
    expect(processor.imageTokenId).toBe(49190);
    expect(processor.imageSeqLen).toBe(64);
    expect(processor.vocabSize).toBe(49280);
    expect(processor.eosTokenIds).toContain(49279); // <end_of_utterance>
    expect(processor.tokenize('Hello world')).toEqual(processor.tokenize('Hello world'));
    expect(processor.decode(processor.tokenize('The quick brown fox, 2024.'))).toBe('The quick brown fox, 2024.');
  });

  it('a text-only prompt has no image tokens', async () => {
    const inputs = await processor.prepare(null, [{ role: 'user', text: 'What is WebGPU?' }]);
    expect(inputs.numTiles).toBe(0);
    expect(inputs.imageTokenCount).toBe(0);
    expect(inputs.pixelValues.length).toBe(0);
    expect(processor.decode(Array.from(inputs.inputIds))).toBe('<|im_start|>User: What is WebGPU?<end_of_utterance>\nAssistant:');
  });

  it('refuses an image without an image message and vice versa', async () => {
    await expect(processor.prepare(pattern(64, 64), [{ role: 'user', text: 'x' }])).rejects.toThrow(/no message has hasImage: true/);
    await expect(processor.prepare(null, [{ role: 'user', text: 'x', hasImage: true }])).rejects.toThrow(/no image was given/);
    await expect(
      processor.prepare({ data: new Uint8Array(10), width: 4, height: 4, channels: 3 }, [{ role: 'user', text: 'x', hasImage: true }]),
    ).rejects.toThrow(/Image data has 10 values; 4x4x3 needs 48/);
  });
});

describe('createProcessor on the tiny fixture', () => {
  it('loads with no network and expands <image> into tiles x 16 tokens', async () => {
    const source = tinySource();
    const processor = await createProcessor(source);
    expect(processor.imageSeqLen).toBe(16);
    const image = await RawImage.read(samplePng);
    expect([image.width, image.height]).toEqual([320, 240]);
    const inputs = await processor.prepare(image, [{ role: 'user', text: 'Describe the image.', hasImage: true }]);
    // 320x240 -> longest edge 128 -> 128x96 -> multiples of the 64 px tile: 128x128 -> 2x2 tiles + the global one.
    expect(inputs.numTiles).toBe(5);
    expect([inputs.imageRows, inputs.imageCols]).toEqual([2, 2]);
    expect([inputs.tileHeight, inputs.tileWidth]).toEqual([64, 64]);
    expect(inputs.imageTokenCount).toBe(5 * 16);
    expect(inputs.pixelValues.length).toBe(5 * 3 * 64 * 64);
    expect(imageTokenRuns(inputs.inputIds, source.config.imageTokenId).map((run) => run.length)).toEqual([16, 16, 16, 16, 16]);
    expect(processor.decode(Array.from(inputs.inputIds)).replace(/(<image>)+/g, '<image>*')).toBe(
      '<|im_start|>User:' +
        '<fake_token_around_image><row_1_col_1><image>*<fake_token_around_image><row_1_col_2><image>*\n' +
        '<fake_token_around_image><row_2_col_1><image>*<fake_token_around_image><row_2_col_2><image>*\n\n' +
        '<fake_token_around_image><global-img><image>*<fake_token_around_image>Describe the image.<end_of_utterance>\nAssistant:',
    );

    // A wide image: 1 row x 2 columns + global.
    const wide = await processor.prepare(pattern(320, 80), [{ role: 'user', text: 'Describe the image.', hasImage: true }]);
    expect([wide.imageRows, wide.imageCols, wide.numTiles]).toEqual([1, 2, 3]);
    expect(wide.imageTokenCount).toBe(3 * 16);
  });

  it('two pictures in one turn: one <image> entry each, expanded in order, their image tokens summed', async () => {
    const processor = await createProcessor(tinySource());
    const first = pattern(320, 240);
    const second = pattern(320, 80);
    const alone = [
      await processor.prepare(first, [{ role: 'user', text: 'Compare.', hasImage: true }]),
      await processor.prepare(second, [{ role: 'user', text: 'Compare.', hasImage: true }]),
    ];
    expect(processor.chatPrompt([{ role: 'user', text: 'Compare.', imageCount: 2 }])).toBe('<|im_start|>User:<image><image>Compare.<end_of_utterance>\nAssistant:');
    const both = await processor.prepare([first, second], [{ role: 'user', text: 'Compare.', imageCount: 2 }]);
    expect(both.imageTokenCount).toBe(alone[0].imageTokenCount + alone[1].imageTokenCount);
    expect(both.numTiles).toBe(5 + 3);
    expect(both.images.map((i) => [i.rows, i.cols, i.numTiles, i.firstTile, i.imageTokenCount, i.firstImageToken])).toEqual([
      [2, 2, 5, 0, 80, 0],
      [1, 2, 3, 5, 48, 80],
    ]);
    // The expansion of each picture, as the processor makes it alone, in order: prefix + A + B + the question.
    const prefix = processor.tokenize('<|im_start|>User:');
    const suffix = processor.tokenize('Compare.<end_of_utterance>\nAssistant:');
    const expansion = (inputs: typeof both): number[] => Array.from(inputs.inputIds.slice(prefix.length, inputs.inputIds.length - suffix.length));
    expect(Array.from(both.inputIds)).toEqual([...prefix, ...expansion(alone[0]), ...expansion(alone[1]), ...suffix]);
    // The pixels of each picture's tiles are the ones it gets alone.
    const tileValues = 3 * 64 * 64;
    expect(both.pixelValues.subarray(0, 5 * tileValues)).toEqual(alone[0].pixelValues);
    expect(both.pixelValues.subarray(5 * tileValues)).toEqual(alone[1].pixelValues);
  });

  it('pictures on two user turns go with their turns, in order', async () => {
    const processor = await createProcessor(tinySource());
    const inputs = await processor.prepare([pattern(64, 64), pattern(320, 80)], [
      { role: 'user', text: 'First.', imageCount: 1 },
      { role: 'assistant', text: 'A square.' },
      { role: 'user', text: 'And this?', imageCount: 1 },
    ]);
    const text = processor.decode(Array.from(inputs.inputIds)).replace(/(<image>)+/g, '<image>*');
    expect(text).toBe(
      // 64x64 is first upscaled to the longest edge (128): 2 x 2 tiles.
      '<|im_start|>User:<fake_token_around_image><row_1_col_1><image>*<fake_token_around_image><row_1_col_2><image>*\n' +
        '<fake_token_around_image><row_2_col_1><image>*<fake_token_around_image><row_2_col_2><image>*\n\n' +
        '<fake_token_around_image><global-img><image>*<fake_token_around_image>First.<end_of_utterance>\n' +
        'Assistant: A square.<end_of_utterance>\n' +
        'User:<fake_token_around_image><row_1_col_1><image>*<fake_token_around_image><row_1_col_2><image>*\n\n' +
        '<fake_token_around_image><global-img><image>*<fake_token_around_image>And this?<end_of_utterance>\nAssistant:',
    );
    expect(inputs.images.map((i) => i.numTiles)).toEqual([5, 3]);
    await expect(processor.prepare([pattern(64, 64)], [{ role: 'user', text: 'x', imageCount: 2 }])).rejects.toThrow(/carry 2 pictures but 1 were given/);
  });

  it('a 2000x6 or 6x2000 picture is processed like any other (each side kept at least 1 px)', async () => {
    const processor = await createProcessor(tinySource());
    // 2000x6 -> longest edge 128 -> 128x0.38, kept 1 px high -> 128x64: 1 row x 2 columns + the global tile.
    const wide = await processor.prepare(pattern(2000, 6), [{ role: 'user', text: 'Describe.', hasImage: true }]);
    expect([wide.imageRows, wide.imageCols, wide.numTiles, wide.imageTokenCount]).toEqual([1, 2, 3, 48]);
    const tall = await processor.prepare(pattern(6, 2000), [{ role: 'user', text: 'Describe.', hasImage: true }]);
    expect([tall.imageRows, tall.imageCols, tall.numTiles]).toEqual([2, 1, 3]);
    expect(tall.pixelValues.every((v) => Number.isFinite(v))).toBe(true);
    const single = await processor.prepare({ data: new Uint8Array(4000 * 3).fill(200), width: 4000, height: 1, channels: 3 }, [{ role: 'user', text: 'x', hasImage: true }]);
    expect(single.numTiles).toBe(3);
  });

  it('idefics3ResizedSize is the first resize step the grid starts from (what the picture facts call "scaled to")', () => {
    expect(idefics3ResizedSize(2000, 6, 128)).toEqual({ width: 128, height: 1 });
    expect(idefics3ResizedSize(320, 240, 128)).toEqual({ width: 128, height: 96 });
    expect(idefics3ResizedSize(6, 2000, 64)).toEqual({ width: 1, height: 64 });
    // Upscaled too, as transformers' processor does: 64x64 becomes 128x128 (2 x 2 tiles, see above).
    expect(idefics3ResizedSize(64, 64, 128)).toEqual({ width: 128, height: 128 });
  });

  it('imageTokensFor (the context meter) agrees with the processor on every shape tried', async () => {
    const processor = await createProcessor(tinySource());
    const sizes: [number, number][] = [[1, 1], [64, 64], [65, 64], [320, 240], [240, 320], [2000, 6], [6, 2000], [4000, 1], [127, 129], [333, 77], [800, 600], [129, 1000]];
    for (const edge of [64, 100, 128, 200]) {
      for (const [width, height] of sizes) {
        const inputs = await processor.prepare(pattern(width, height), [{ role: 'user', text: 'x', hasImage: true }], { longestEdge: edge });
        expect({ width, height, edge, tokens: processor.imageTokensFor(width, height, edge) }).toEqual({ width, height, edge, tokens: inputs.imageTokenCount });
      }
    }
    expect(processor.imageTokensFor(320, 240)).toBe(5 * 16);
  });

  it('imagePromptTokensFor is what one more picture adds to the prompt, markers included', async () => {
    const processor = await createProcessor(tinySource());
    // The template writes "User: x" without a picture and "User:<image>x" with one: compare one picture with two.
    const first = pattern(64, 64);
    for (const [width, height, edge] of [[64, 64, 128], [320, 240, 128], [2000, 6, 128], [6, 2000, 64], [800, 600, 200], [50, 40, 64]] as const) {
      const one = await processor.prepare([first], [{ role: 'user', text: 'x', imageCount: 1 }], { longestEdge: edge });
      const two = await processor.prepare([first, pattern(width, height)], [{ role: 'user', text: 'x', imageCount: 2 }], { longestEdge: edge });
      const added = two.inputIds.length - one.inputIds.length;
      expect({ width, height, edge, added }).toEqual({ width, height, edge, added: processor.imagePromptTokensFor(width, height, edge) });
      expect(added).toBeGreaterThan(two.images[1].imageTokenCount);
    }
  });

  it('a lower longest image edge means fewer tiles; below one tile is refused', async () => {
    const processor = await createProcessor(tinySource());
    expect([processor.defaultLongestEdge, processor.tileSize]).toEqual([128, 64]);
    const image = pattern(320, 240);
    const own = await processor.prepare(image, [{ role: 'user', text: 'x', hasImage: true }]);
    const smaller = await processor.prepare(image, [{ role: 'user', text: 'x', hasImage: true }], { longestEdge: 64 });
    expect([own.numTiles, smaller.numTiles]).toEqual([5, 1]);
    await expect(processor.prepare(image, [{ role: 'user', text: 'x', hasImage: true }], { longestEdge: 32 })).rejects.toThrow(/at least one tile \(64 px\), got 32/);
  });

  it('tokenizes English into word pieces and round-trips ASCII text', async () => {
    const processor = await createProcessor(tinySource());
    const ids = processor.tokenize('Describe the image.');
    expect(ids.map((id) => processor.decode([id]))).toEqual(['Describe', ' the', ' image', '.']);
    for (const text of ['Describe the image.', 'Hello, World! 0123456789 ~`{}[]|\\', '  two  spaces\tand\nnewlines ', 'User: What is in the picture?']) {
      expect(processor.decode(processor.tokenize(text))).toBe(text);
    }
    // Digits are split one by one, as SmolVLM's pre-tokenizer does.
    expect(processor.tokenize('2024').length).toBe(4);
    // Special tokens are single ids.
    expect(processor.tokenize('<image>')).toEqual([processor.imageTokenId]);
    expect(processor.tokenize('<end_of_utterance>')).toEqual([processor.eosTokenIds[0]]);
    expect(processor.decode(processor.tokenize('<row_6_col_6>'))).toBe('<row_6_col_6>');
  });

  it('refuses a processor config whose image_seq_len disagrees with config.json', async () => {
    const source = tinySource((files) => editJson(files, 'processor_config.json', (json) => (json.image_seq_len = 64)));
    await expect(createProcessor(source)).rejects.toThrow(ProcessorError);
    await expect(createProcessor(source)).rejects.toThrow(/image_seq_len 64, but config\.json gives 16 tokens per tile/);
  });

  it('refuses a tile size that differs from the vision tower', async () => {
    const source = tinySource((files) => editJson(files, 'preprocessor_config.json', (json) => (json.max_image_size = { longest_edge: 512 })));
    await expect(createProcessor(source)).rejects.toThrow(/max_image_size\.longest_edge \(512\) must equal the vision image_size \(64\)/);
  });

  it('needs tokenizer.json', async () => {
    const source = tinySource((files) => files.delete('tokenizer.json'));
    await expect(createProcessor(source)).rejects.toThrow('The model has no tokenizer.json; the tokenizer/image processor need it.');
  });
});
