import { describe, expect, it } from 'vitest';
import { whyQuestionsWait, type EngineBusyState } from '../../src/ui/busy';

const idle: EngineBusyState = {
  modelLoading: false, modelLoaded: true, recoveringDevice: false, searching: false, benchmarkRunning: false, sweepRunning: false, ocrRunning: false,
};

describe('whyQuestionsWait', () => {
  it('lets a question through only when the model is loaded and no job runs', () => {
    expect(whyQuestionsWait(idle)).toBeNull();
    expect(whyQuestionsWait({ ...idle, modelLoaded: false })).toBe('Load a model first.');
  });

  it('a running Budget sweep or OCR accuracy run holds the question and says where its Stop is', () => {
    expect(whyQuestionsWait({ ...idle, sweepRunning: true })).toMatch(/budget sweep.*Stop in the Budget sweep panel/);
    expect(whyQuestionsWait({ ...idle, ocrRunning: true })).toMatch(/OCR accuracy run.*Stop under Accuracy on OCR probes/);
  });

  it('every busy flag alone blocks, with its own reason', () => {
    const flags = ['modelLoading', 'recoveringDevice', 'searching', 'benchmarkRunning', 'sweepRunning', 'ocrRunning'] as const;
    const reasons = flags.map((flag) => whyQuestionsWait({ ...idle, [flag]: true }));
    expect(reasons.every((reason) => reason !== null)).toBe(true);
    expect(new Set(reasons).size).toBe(flags.length);
  });
});
