/** The benchmark CLI's own parsing: --weights lists, and the length of the 64-frame video-question row. */
import { describe, expect, it } from 'vitest';
import { parseWeightFormats, run, videoQuestionLength } from '../../src/cli/bench';
import { referenceModelDir } from '../helpers/reference-data';

describe('bench CLI', () => {
  it('--weights: repeatable and comma lists, order kept, duplicates dropped, bf16 by default, unknown formats refused', () => {
    expect(parseWeightFormats([])).toEqual(['bf16']);
    expect(parseWeightFormats(['bf16,q8', 'q4', 'q8'])).toEqual(['bf16', 'q8', 'q4']);
    expect(() => parseWeightFormats(['q3'])).toThrow(/unknown weight format "q3" \(expected bf16, q8, q4\)/);
  });

  it('--skip-prefill and --prefill-lengths are refused together, before anything is loaded', async () => {
    await expect(run(['--skip-prefill', '--prefill-lengths', '32'])).rejects.toThrow('--skip-prefill and --prefill-lengths exclude each other');
  });

  it('the video question: 64 frames x 64 image tokens plus the SmolVLM2 video prompt text, tokenized', async () => {
    const length = await videoQuestionLength(referenceModelDir);
    // 4096 image tokens, 3 special tokens per frame, "\nFrame from MM:SS:" per frame, the intro line and the question.
    expect(length).toBe(4975);
  });
});
