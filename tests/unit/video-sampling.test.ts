import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expandPrompt, imagePromptString } from '../../src/model-io/prompt-expansion';
import {
  formatFrameTimestamp,
  formatVideoDuration,
  frameImageBlock,
  numberWords,
  smolVlmFrameTokens,
  smolVlmVideoChatTemplate,
  videoPromptExpansion,
} from '../../src/model-io/video-prompt';
import { desiredFrameCount, linspaceInt, roundHalfToEven, sampleVideoFrames, VideoSamplingError } from '../../src/model-io/video-sampling';
import { smolvlm2ReferenceDir } from '../helpers/reference-data';

const defaults = { fps: 1, maxFrames: 64 };

describe('sampleVideoFrames (VIDEO.md §2, transformers SmolVLMVideoProcessor.sample_frames)', () => {
  it('gives the worked example: 300 frames at 30 fps -> ten frames', () => {
    const sampled = sampleVideoFrames({ nativeFps: 30, totalFrames: 300 }, defaults);
    expect(sampled.frameIndices).toEqual([0, 33, 66, 99, 132, 166, 199, 232, 265, 299]);
    expect(sampled.durationSeconds).toBe(10);
    expect(sampled.timestamps).toEqual(sampled.frameIndices.map((i) => i / 30));
  });

  it('rounds half to even as Python does: 2.5 s at 10 fps gives 2 frames (Math.round would give 3)', () => {
    expect(roundHalfToEven(2.5)).toBe(2);
    expect(roundHalfToEven(3.5)).toBe(4);
    expect(roundHalfToEven(0.5)).toBe(0);
    expect(roundHalfToEven(2.5000001)).toBe(3);
    expect(roundHalfToEven(2.4999999)).toBe(2);
    expect(desiredFrameCount({ nativeFps: 10, totalFrames: 25 }, defaults)).toBe(2);
    expect(sampleVideoFrames({ nativeFps: 10, totalFrames: 25 }, defaults).frameIndices).toEqual([0, 24]);
  });

  it('skips the first and last second of a clip longer than max_frames covers: 100 s at 24 fps', () => {
    const { frameIndices, durationSeconds } = sampleVideoFrames({ nativeFps: 24, totalFrames: 2400 }, defaults);
    expect(durationSeconds).toBe(100);
    expect(frameIndices).toHaveLength(64);
    expect(frameIndices[0]).toBe(24); // int(1 s * 24 fps)
    expect(frameIndices.at(-1)).toBe(2376); // int(2400 - 24)
    // numpy.linspace(24, 2376, 64, dtype=int)
    expect(frameIndices.slice(0, 6)).toEqual([24, 61, 98, 136, 173, 210]);
  });

  it('does not skip when the clip is short enough: 66 s at 1 fps and 64 frames', () => {
    // 66 - 2 = 64 is not > 64: no skip.
    expect(sampleVideoFrames({ nativeFps: 1, totalFrames: 66 }, defaults).frameIndices[0]).toBe(0);
    expect(sampleVideoFrames({ nativeFps: 1, totalFrames: 67 }, defaults).frameIndices[0]).toBe(1);
  });

  it('samples a one-frame clip as its only frame', () => {
    expect(sampleVideoFrames({ nativeFps: 30, totalFrames: 1 }, defaults)).toEqual({ frameIndices: [0], timestamps: [0], durationSeconds: 1 / 30 });
    // Under half a second: round(0.1) = 0 frames, raised to 1.
    expect(sampleVideoFrames({ nativeFps: 30, totalFrames: 3 }, defaults).frameIndices).toEqual([0]);
  });

  it('handles 29.97 fps (NTSC) as numpy does', () => {
    // 100 s: skip applies, start int(29.97) = 29, end int(2997 - 29.97) = 2967; numpy.linspace(29, 2967, 64, dtype=int).
    const sampled = sampleVideoFrames({ nativeFps: 29.97, totalFrames: 2997 }, defaults);
    expect(sampled.frameIndices.slice(0, 5)).toEqual([29, 75, 122, 168, 215]);
    expect(sampled.frameIndices.at(-1)).toBe(2967);
    expect(sampled.timestamps[0]).toBeCloseTo(29 / 29.97, 12);
    // 180 s at 29.97: start 29, end int(5394 - 29.97) = 5364.
    const long = sampleVideoFrames({ nativeFps: 29.97, totalFrames: 5394 }, defaults).frameIndices;
    expect(long.slice(0, 4)).toEqual([29, 113, 198, 283]);
    expect(long.at(-1)).toBe(5364);
  });

  it('follows fps and max_frames settings, dropping duplicate indices (np.unique)', () => {
    expect(sampleVideoFrames({ nativeFps: 30, totalFrames: 300 }, { fps: 1, maxFrames: 5 }).frameIndices).toEqual([30, 90, 150, 210, 270]);
    // 10 fps over 5 frames of a 0.5 s clip: linspace(0, 4, 5).
    expect(sampleVideoFrames({ nativeFps: 10, totalFrames: 5 }, { fps: 10, maxFrames: 64 }).frameIndices).toEqual([0, 1, 2, 3, 4]);
    // More frames wanted than the clip has: repeats collapse.
    expect(sampleVideoFrames({ nativeFps: 2, totalFrames: 4 }, { fps: 8, maxFrames: 64 }).frameIndices).toEqual([0, 1, 2, 3]);
    expect(linspaceInt(0, 3, 16)).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3]);
    expect(linspaceInt(7, 9, 1)).toEqual([7]);
  });

  it('refuses facts and settings it cannot sample from, with clear messages', () => {
    expect(() => sampleVideoFrames({ nativeFps: 30, totalFrames: 0 }, defaults)).toThrow(VideoSamplingError);
    expect(() => sampleVideoFrames({ nativeFps: 30, totalFrames: 0 }, defaults)).toThrow('The video has no frames to sample (frame count 0).');
    expect(() => sampleVideoFrames({ nativeFps: 0, totalFrames: 10 }, defaults)).toThrow(/frame rate must be a positive number/);
    expect(() => sampleVideoFrames({ nativeFps: Number.NaN, totalFrames: 10 }, defaults)).toThrow(/frame rate/);
    expect(() => sampleVideoFrames({ nativeFps: 30, totalFrames: 10 }, { fps: 0, maxFrames: 64 })).toThrow(/Frames per second must be a positive number/);
    expect(() => sampleVideoFrames({ nativeFps: 30, totalFrames: 10 }, { fps: 1, maxFrames: 0 })).toThrow(/maximum number of frames/);
    expect(() => sampleVideoFrames({ nativeFps: 30, totalFrames: 10 }, { fps: 1, maxFrames: 2.5 })).toThrow(/maximum number of frames/);
  });
});

describe('video prompt text (VIDEO.md §1, §4)', () => {
  it('writes English number words as num2words does, beyond 100 too', () => {
    const cases: [number, string][] = [
      [0, 'zero'], [1, 'one'], [10, 'ten'], [13, 'thirteen'], [20, 'twenty'], [21, 'twenty-one'], [40, 'forty'], [64, 'sixty-four'], [99, 'ninety-nine'],
      [100, 'one hundred'], [101, 'one hundred and one'], [115, 'one hundred and fifteen'], [200, 'two hundred'], [999, 'nine hundred and ninety-nine'],
      [1000, 'one thousand'], [1001, 'one thousand and one'], [1100, 'one thousand, one hundred'], [1234, 'one thousand, two hundred and thirty-four'],
      [21000, 'twenty-one thousand'], [1000000, 'one million'], [2000001, 'two million and one'],
    ];
    for (const [value, words] of cases) expect(numberWords(value), String(value)).toBe(words);
    expect(() => numberWords(-1)).toThrow(RangeError);
    expect(() => numberWords(1.5)).toThrow(RangeError);
  });

  it('writes durations as Python str(timedelta) and timestamps as MM:SS without an hour field', () => {
    expect(formatVideoDuration(10)).toBe('0:00:10');
    expect(formatVideoDuration(65)).toBe('0:01:05');
    expect(formatVideoDuration(3723)).toBe('1:02:03');
    expect(formatVideoDuration(0)).toBe('0:00:00');
    expect(formatVideoDuration(86405)).toBe('1 day, 0:00:05');
    expect(formatVideoDuration(2 * 86400)).toBe('2 days, 0:00:00');
    expect(formatFrameTimestamp(0)).toBe('00:00');
    expect(formatFrameTimestamp(1)).toBe('00:01');
    expect(formatFrameTimestamp(65)).toBe('01:05');
    expect(formatFrameTimestamp(65.999)).toBe('01:05');
    expect(formatFrameTimestamp(7500)).toBe('125:00');
    expect(formatFrameTimestamp(299 / 30)).toBe('00:09');
    // Python: 119.99999999999999 // 60 == 1.0 and % 60 == 59.99999999999999.
    expect(formatFrameTimestamp(119.99999999999999)).toBe('01:59');
  });

  it('expands the worked example: ten frames of a 10 s clip', () => {
    const tokens = { ...smolVlmFrameTokens, imageSeqLen: 64 };
    const { timestamps, durationSeconds } = sampleVideoFrames({ nativeFps: 30, totalFrames: 300 }, defaults);
    const rendered = '<|im_start|>User: <video>Describe this video.<end_of_utterance>\nAssistant:';
    const prompt = expandPrompt(rendered, [{ kind: 'video', timestamps, durationSeconds }], tokens);
    const block = `<fake_token_around_image><global-img>${'<image>'.repeat(64)}<fake_token_around_image>`;
    expect(frameImageBlock(tokens)).toBe(block);
    const stamps = ['00:00', '00:01', '00:02', '00:03', '00:04', '00:05', '00:06', '00:07', '00:08', '00:09'];
    expect(prompt).toBe(
      '<|im_start|>User: You are provided the following series of ten frames from a 0:00:10 [H:MM:SS] video.\n' +
        stamps.map((s) => `\nFrame from ${s}:${block}`).join('') +
        '\n\nDescribe this video.<end_of_utterance>\nAssistant:',
    );
    expect(prompt.startsWith('<|im_start|>User: You are provided the following series of ten frames from a 0:00:10 [H:MM:SS] video.\n\nFrame from 00:00:<fake_token_around_image><global-img>')).toBe(true);
    expect(prompt.split('<image>').length - 1).toBe(10 * 64);
  });

  it('replaces each <video> and <image> by its own expansion, in order, and checks kinds and count', () => {
    const tokens = { ...smolVlmFrameTokens, imageSeqLen: 2 };
    const a = { kind: 'video', timestamps: [0], durationSeconds: 0.5 } as const;
    const b = { kind: 'video', timestamps: [0, 65, 7500], durationSeconds: 7501.9 } as const;
    const picture = { kind: 'image', rows: 1, cols: 2 } as const;
    const text = expandPrompt('A<video>B<image>C<video>D', [a, picture, b], tokens);
    expect(text).toBe(`A${videoPromptExpansion(a, tokens)}B${imagePromptString(1, 2, tokens)}C${videoPromptExpansion(b, tokens)}D`);
    expect(imagePromptString(1, 2, tokens)).toBe(
      '<fake_token_around_image><row_1_col_1><image><image><fake_token_around_image><row_1_col_2><image><image>\n' +
        '\n<fake_token_around_image><global-img><image><image><fake_token_around_image>',
    );
    expect(imagePromptString(0, 0, tokens)).toBe(frameImageBlock(tokens));
    expect(videoPromptExpansion(b, tokens)).toContain('series of three frames from a 2:05:01 [H:MM:SS] video.\n\nFrame from 00:00:');
    expect(videoPromptExpansion(b, tokens)).toContain('\nFrame from 01:05:');
    expect(videoPromptExpansion(b, tokens)).toContain('\nFrame from 125:00:');
    expect(videoPromptExpansion(a, tokens)).toMatch(/^You are provided the following series of one frames from a 0:00:00 \[H:MM:SS\] video\.\n/);
    expect(() => expandPrompt('A<video>B', [a, b], tokens)).toThrow('do not match its 2 pictures and videos (<video> <video>)');
    expect(() => expandPrompt('A<video>B<video>', [a, picture], tokens)).toThrow('The prompt\'s entries (<video> <video>) do not match');
    expect(() => expandPrompt('what is <image>?', [], tokens)).toThrow(/may not itself contain the text <image> or <video>/);
  });

  it('uses transformers\' video chat template (the one vendored beside the real SmolVLM2 config)', () => {
    const vendored = JSON.parse(readFileSync(join(smolvlm2ReferenceDir, 'video_chat_template.json'), 'utf8')) as { chat_template: string };
    expect(smolVlmVideoChatTemplate).toBe(vendored.chat_template);
  });
});
