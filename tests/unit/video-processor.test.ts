// The processor's video path (VIDEO.md §1-§4) on the real SmolVLM2-500M-Video-Instruct config, preprocessor and
// processor files, with SmolVLM-256M-Instruct's tokenizer (SmolVLM2's added tokens sit at the same ids).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Idefics3ImageProcessor, Idefics3Processor, GPT2Tokenizer, RawImage, type Tensor } from '@huggingface/transformers';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/model-io/config';
import { defaultReferenceModelDir } from '../../src/model-io/fixture';
import { createProcessor, type ProcessorSource, type RawImageLike, type VideoInput, type VlmProcessor } from '../../src/model-io/processor';
import { resizeFrame } from '../../src/model-io/video-frames';
import { sampleVideoFrames } from '../../src/model-io/video-sampling';
import { imageTokenRuns } from '../../src/engine/model';
import { smolvlm2ReferenceDir } from '../helpers/reference-data';

function filesOf(dir: string, names: string[]): [string, ArrayBuffer][] {
  return names.map((name) => [name, new Uint8Array(readFileSync(join(dir, name))).buffer]);
}

function smolvlm2Source(): ProcessorSource {
  const files = new Map<string, ArrayBuffer>([
    ...filesOf(smolvlm2ReferenceDir, ['config.json', 'preprocessor_config.json', 'processor_config.json', 'chat_template.json', 'generation_config.json']),
    ...filesOf(defaultReferenceModelDir(), ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']),
  ]);
  return { config: parseModelConfig(new TextDecoder().decode(files.get('config.json'))), files };
}

function smolvlmSource(): ProcessorSource {
  const dir = defaultReferenceModelDir();
  const files = new Map(filesOf(dir, ['config.json', 'preprocessor_config.json', 'processor_config.json', 'chat_template.json', 'tokenizer.json', 'tokenizer_config.json']));
  return { config: parseModelConfig(new TextDecoder().decode(files.get('config.json'))), files };
}

/** A frame whose pixels say which frame it is (value = frame index + channel), so tiles can be told apart. */
function frame(width: number, height: number, seed: number, channels: 3 | 4 = 4): RawImageLike {
  const data = new Uint8ClampedArray(width * height * channels);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < channels; c++) data[p * channels + c] = c === 3 ? 255 : (seed * 10 + c * 40 + (p % 7)) & 0xff;
  }
  return { data, width, height, channels };
}

function video(file: string, nativeFps: number, totalFrames: number, size = 512, settings = { fps: 1, maxFrames: 64 }): VideoInput {
  const sampled = sampleVideoFrames({ nativeFps, totalFrames }, settings);
  return { file, nativeFps, totalFrames, ...sampled, frames: sampled.frameIndices.map((index) => frame(size, size, index % 20)) };
}

/** Two large float arrays hold the same values (toEqual walks millions of them too slowly on a loaded CPU). */
function sameValues(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

describe('the SmolVLM2 processor: videos', () => {
  let processor: VlmProcessor;
  beforeAll(async () => {
    processor = await createProcessor(smolvlm2Source());
  });

  it('reads video_sampling (fps 1, 64 frames, 512 px tiles)', () => {
    expect(processor.videoSampling).toEqual({ fps: 1, maxFrames: 64, frameSize: 512 });
  });

  it('expands the worked example byte for byte: 300 frames at 30 fps, "Describe this video."', async () => {
    const clip = video('clip.mp4', 30, 300);
    expect(clip.frameIndices).toEqual([0, 33, 66, 99, 132, 166, 199, 232, 265, 299]);
    const messages = [{ role: 'user' as const, text: 'Describe this video.', videoCount: 1 }];
    expect(processor.chatPrompt(messages)).toBe('<|im_start|>User: <video>Describe this video.<end_of_utterance>\nAssistant:');
    const inputs = await processor.prepare([clip], messages);
    const block = `<fake_token_around_image><global-img>${'<image>'.repeat(64)}<fake_token_around_image>`;
    const stamps = ['00:00', '00:01', '00:02', '00:03', '00:04', '00:05', '00:06', '00:07', '00:08', '00:09'];
    expect(inputs.promptText).toBe(
      '<|im_start|>User: You are provided the following series of ten frames from a 0:00:10 [H:MM:SS] video.\n' +
        stamps.map((s) => `\nFrame from ${s}:${block}`).join('') +
        '\n\nDescribe this video.<end_of_utterance>\nAssistant:',
    );
    // One tile of 64 image tokens per frame, never split.
    expect(inputs.numTiles).toBe(10);
    expect(inputs.imageTokenCount).toBe(640);
    expect(imageTokenRuns(inputs.inputIds, 49190).map((run) => run.length)).toEqual(Array(10).fill(64));
    expect(inputs.images.map((image) => [image.numTiles, image.rows, image.cols, image.firstTile, image.frameOf?.frameIndex])).toEqual(
      clip.frameIndices.map((index, i) => [1, 0, 0, i, index]),
    );
    expect(inputs.videos).toEqual([{ file: 'clip.mp4', nativeFps: 30, totalFrames: 300, durationSeconds: 10, frameIndices: clip.frameIndices, timestamps: clip.timestamps, imageTokens: 640, firstImage: 0 }]);
    expect(processor.decode(Array.from(inputs.inputIds))).toBe(inputs.promptText);
    // Frame 3's tile: its RGB rescaled by 1/255 and normalised (mean 0.5, std 0.5), channel-first, alpha dropped.
    const plane = 512 * 512;
    const third = inputs.pixelValues.subarray(3 * 3 * plane, 4 * 3 * plane);
    const source = clip.frames[3].data;
    for (const p of [0, 1, 511, 1000, plane - 1]) {
      for (let c = 0; c < 3; c++) expect(third[c * plane + p]).toBeCloseTo((source[p * 4 + c] / 255 - 0.5) / 0.5, 5);
    }
  });

  it('counts a video\'s tokens before any pixels (the context meter) as prepare does', async () => {
    const clip = video('long.webm', 29.97, 2997);
    const messages = [{ role: 'user' as const, text: 'What happens?', videoCount: 1 }];
    const inputs = await processor.prepare([clip], messages);
    expect(inputs.numTiles).toBe(64);
    expect(inputs.promptText).toContain('series of sixty-four frames from a 0:01:40 [H:MM:SS] video.\n\nFrame from 00:00:');
    expect(inputs.promptText).toContain('\nFrame from 01:38:'); // frame 2967 / 29.97 = 98.998 s
    expect(processor.promptTokensFor(messages, [{ kind: 'video', timestamps: clip.timestamps, durationSeconds: clip.durationSeconds }])).toBe(inputs.inputIds.length);
    const withoutVideo = processor.tokenize(processor.chatPrompt([{ role: 'user', text: 'What happens?' }])).length;
    const expansion = processor.videoPromptTokensFor(clip);
    expect(expansion).toBeGreaterThan(64 * 64);
    // The entry's own tokens replace the (one-space shorter) prefix: within a token or two of the exact count.
    expect(Math.abs(withoutVideo + expansion - inputs.inputIds.length)).toBeLessThanOrEqual(2);
  });

  it('resizes a frame that is not tile-sized into one 512 x 512 tile', async () => {
    const clip = video('small.mp4', 10, 25, 320);
    clip.frames[1] = frame(200, 90, 7, 3);
    const inputs = await processor.prepare([clip], [{ role: 'user', text: 'Hi', videoCount: 1 }]);
    expect(inputs.numTiles).toBe(2);
    expect([inputs.tileWidth, inputs.tileHeight]).toEqual([512, 512]);
    expect(inputs.pixelValues.length).toBe(2 * 3 * 512 * 512);
    let largest = 0;
    for (const value of inputs.pixelValues) largest = Math.max(largest, Math.abs(value));
    expect(largest).toBeLessThanOrEqual(1.0001);
    // A flat frame stays flat through the resize.
    const flat = { data: new Uint8ClampedArray(300 * 200 * 3).fill(51), width: 300, height: 200, channels: 3 as const };
    const resized = resizeFrame(flat, 512);
    expect([resized.width, resized.height, resized.channels]).toEqual([512, 512, 3]);
    expect(resized.data.every((v) => v === 51)).toBe(true);
    // A left-dark / right-bright frame keeps its halves.
    const halves = { data: new Uint8ClampedArray(64 * 4).map((_, i) => ((i % 64) < 32 ? 0 : 255)), width: 64, height: 4, channels: 1 as const };
    const wide = resizeFrame(halves, 8);
    const red = Array.from({ length: 8 }, (_, x) => wide.data[x * 3]);
    expect(red.slice(0, 3)).toEqual([0, 0, 0]);
    expect(red.slice(5)).toEqual([255, 255, 255]);
    expect(red[3]).toBeLessThan(red[4]); // the edge is blended, not moved
  });

  it('puts several videos, and pictures of other turns, in prompt order', async () => {
    const a = video('a.mp4', 10, 25);
    const b = video('b.mp4', 30, 300, 512, { fps: 1, maxFrames: 3 });
    const picture = frame(600, 400, 3, 3);
    const edge = { longestEdge: 1024 }; // 2 x 2 tiles + global, quicker than the model's 2048
    const messages = [
      { role: 'user' as const, text: 'Look.', imageCount: 1 },
      { role: 'assistant' as const, text: 'Yes.' },
      { role: 'user' as const, text: 'And these?', videoCount: 2 },
    ];
    const inputs = await processor.prepare([picture, a, b], messages, edge);
    const picturePrompt = await processor.prepare([picture], [messages[0]], edge);
    const pictureTiles = picturePrompt.numTiles;
    expect(pictureTiles).toBe(5);
    expect(inputs.images.map((image) => image.frameOf?.video ?? -1)).toEqual([-1, 0, 0, 1, 1, 1]);
    expect(inputs.numTiles).toBe(pictureTiles + 5);
    expect(inputs.videos.map((v) => [v.file, v.firstImage, v.imageTokens])).toEqual([['a.mp4', 1, 128], ['b.mp4', 3, 192]]);
    expect(inputs.promptText.startsWith('<|im_start|>User:<fake_token_around_image><row_1_col_1>')).toBe(true);
    expect(inputs.promptText).toContain('<end_of_utterance>\nUser: You are provided the following series of two frames from a 0:00:02 [H:MM:SS] video.\n');
    expect(inputs.promptText).toContain('\n\nYou are provided the following series of three frames from a 0:00:10 [H:MM:SS] video.\n\nFrame from 00:01:');
    expect(inputs.promptText.endsWith('\n\nAnd these?<end_of_utterance>\nAssistant:')).toBe(true);
    // The picture's tiles come first, exactly as the picture alone gives them.
    expect(sameValues(inputs.pixelValues.subarray(0, picturePrompt.pixelValues.length), picturePrompt.pixelValues)).toBe(true);
    const sizes = [{ kind: 'image' as const, width: 600, height: 400 }, { kind: 'video' as const, ...a }, { kind: 'video' as const, ...b }];
    expect(processor.promptTokensFor(messages, sizes, 1024)).toBe(inputs.inputIds.length);
  }, 120_000);

  it('refuses pictures and a video in one message, a count mismatch and a text that types <video>', async () => {
    const clip = video('clip.mp4', 30, 300);
    const picture = frame(64, 64, 1, 3);
    await expect(processor.prepare([picture, clip], [{ role: 'user', text: 'Both?', imageCount: 1, videoCount: 1 }])).rejects.toThrow(
      /can carry pictures or videos, not both: transformers' SmolVLM processor refuses images and videos in one call/,
    );
    await expect(processor.prepare([clip], [{ role: 'user', text: 'Hi', imageCount: 1 }])).rejects.toThrow(/1 pictures and 0 videos .* but video were given/);
    await expect(processor.prepare([clip], [{ role: 'user', text: 'what is <video>?', videoCount: 1 }])).rejects.toThrow(/may not itself contain the text/);
    await expect(processor.prepare([{ ...clip, frames: clip.frames.slice(1) }], [{ role: 'user', text: 'Hi', videoCount: 1 }])).rejects.toThrow(
      'clip.mp4: 9 frames and 10 timestamps were given for 10 sampled frame indices.',
    );
  });

  it('pictures go through the same expansion as transformers.js\' Idefics3Processor gives them', async () => {
    const source = smolvlm2Source();
    const json = (name: string): Record<string, unknown> => JSON.parse(new TextDecoder().decode(source.files.get(name))) as Record<string, unknown>;
    const tokenizer = new GPT2Tokenizer(json('tokenizer.json'), json('tokenizer_config.json'));
    // At a longest edge of 1024 (2 x 2 tiles + global for 600 x 400): the model's 2048 takes minutes on a loaded CPU.
    const imageProcessor = new Idefics3ImageProcessor({ ...json('preprocessor_config.json'), size: { longest_edge: 1024 } });
    const reference = new Idefics3Processor({ image_seq_len: 64 }, { tokenizer, image_processor: imageProcessor }, String(json('chat_template.json').chat_template));
    const picture = frame(600, 400, 2, 3);
    const messages = [{ role: 'user' as const, text: 'What is it?', hasImage: true }];
    const ours = await processor.prepare([picture], messages, { longestEdge: 1024 });
    const theirs = (await reference._call(processor.chatPrompt(messages), [[new RawImage(picture.data, 600, 400, 3)]])) as { input_ids: Tensor; pixel_values: Tensor };
    expect(ours.numTiles).toBe(5);
    expect(Array.from(ours.inputIds)).toEqual(Array.from(theirs.input_ids.data as BigInt64Array, Number));
    expect(sameValues(ours.pixelValues, theirs.pixel_values.data as Float32Array)).toBe(true);
  }, 120_000);
});

describe('a model without a video path', () => {
  it('SmolVLM (no video_sampling) refuses a video with what to load instead', async () => {
    const processor = await createProcessor(smolvlmSource());
    expect(processor.videoSampling).toBeNull();
    await expect(processor.prepare([video('clip.mp4', 30, 300)], [{ role: 'user', text: 'Hi', videoCount: 1 }])).rejects.toThrow(
      /This model has no video path .* load a SmolVLM2 model/,
    );
  });
});
