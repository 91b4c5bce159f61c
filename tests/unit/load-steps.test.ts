/** The model panel's line for the GPU part of a load (issue 14: "compiling kernels" is a step of the load). */
import { describe, expect, it } from 'vitest';
import { loadStepText } from '../../src/ui/ModelProgress';

describe('load step text', () => {
  it('says what the load does once the files are read', () => {
    expect(loadStepText(null)).toBe('Loading…');
    expect(loadStepText({ step: 'uploading weights' })).toBe('Uploading the weights to the GPU…');
    expect(loadStepText({ step: 'compiling kernels', done: 3, total: 31 })).toBe('Compiling kernels (3 / 31)…');
  });
});
