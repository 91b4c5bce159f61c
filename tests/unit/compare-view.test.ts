/**
 * How Compare puts its measurements into words (src/ui/compare-text.ts, the comparison rows of the Metrics table and
 * the ComparePanel): the verdicts of the shared spread rule with their spreads, never a bare ratio inside the spread;
 * the bytes line and its bound; the shared vision figure once, without a ratio; the note for a CPU emulation.
 */
import { createElement } from 'react';
import { renderToString } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { decodeBytes } from '../../src/session/compare-run';
import type { CompareMeasurements, RunMetricsData, RunResult } from '../../src/session/types';
import { compareStepTimes } from '../../src/sparsemm/timing-stats';
import { bytesBoundLine, decodeVerdict, prefillVerdict, sharedVisionText, softwareNote, spreadText, timingNote } from '../../src/ui/compare-text';
import { ComparePanel, picturesNote } from '../../src/ui/ComparePanel';
import { comparisonRows } from '../../src/ui/views/metrics-model';
import type { RunMetrics } from '../../src/ui/views/types';
import { expectToContainAll } from '../helpers/expect-text';

/** Step times that overlap (the 1.57x-apart medians inside a wide spread). */
const noisyFull = [962, 791, 500, 620, 700, 880];
const noisyPolicy = [480, 610, 420, 700, 530, 750];
/** Step times whose middle halves are far apart. */
const steadyFull = [10, 10.5, 11, 10.2, 10.8, 10.4];
const steadyPolicy = [5, 5.2, 5.1, 5.3, 4.9, 5.0];

function measurements(overrides: Partial<CompareMeasurements> = {}): CompareMeasurements {
  return {
    timing: 'gpu-timestamps',
    softwareAdapter: false,
    vision: { encoded: 1, reused: 0, framesEncoded: 0, framesReused: 0, ms: 2500 },
    prefill: compareStepTimes([40, 41, 42, 40], [44, 45, 43, 44]),
    prefillOrder: ['full', 'policy', 'policy', 'full', 'full', 'policy', 'policy', 'full'],
    decode: compareStepTimes(noisyFull, noisyPolicy),
    bytes: decodeBytes(500, 100, 40),
    ...overrides,
  };
}

function runMetrics(overrides: Partial<RunMetrics>): RunMetrics {
  return {
    label: 'Full cache', policy: 'full', promptTokens: 105, textTokens: 25, imageTokens: 80, prefillMs: 0, visionMs: 2500, textPrefillMs: 40,
    timeToFirstTokenMs: 3000, decodeMsPerToken: 700, tokensPerSecond: 1.4, kvBytes: 31000, totalGpuBytes: 1_500_000, generatedTokens: 16, perStep: [],
    ...overrides,
  };
}

describe('Compare in words', () => {
  it('reads "no measurable difference" when the medians differ inside the spread, with each spread beside it', () => {
    const m = measurements();
    expect(m.decode.speedup).toBeGreaterThan(1.2);
    expect(decodeVerdict(m)).toBe('no measurable difference');
    expect(spreadText(m.decode.baseline)).toBe('745.5 ms (IQR 217.8)');
    // Below 10 ms two decimals, so a spread of tenths of a millisecond still shows.
    expect(spreadText(compareStepTimes([1.0, 1.2, 1.4, 1.6], []).baseline)).toBe('1.30 ms (IQR 0.30)');
  });

  it('gives the ratio only when the middle halves do not overlap', () => {
    expect(decodeVerdict(measurements({ decode: compareStepTimes(steadyFull, steadyPolicy) }))).toMatch(/^2\.0\dx faster$/);
    expect(decodeVerdict(measurements({ decode: compareStepTimes(steadyPolicy, steadyFull) }))).toMatch(/^2\.0\dx slower$/);
  });

  it('counts prefills, not steps, when there are too few to tell', () => {
    expect(prefillVerdict(measurements({ prefill: compareStepTimes([1000, 400], [500, 520]) }))).toBe('too few prefills to tell (2 < 4)');
    expect(decodeVerdict(measurements({ decode: compareStepTimes([], []) }))).toBe('too few steps to tell (0 < 4)');
  });

  it('states the bytes per step and the bound they allow on a GPU', () => {
    // 540 of 600 bytes: 0.90x, so at most 1.11x faster.
    expect(bytesBoundLine(decodeBytes(500, 100, 40))).toBe(
      'this cache reads 0.90x the bytes of the full cache per token (540 B against 600 B, weights included): on a GPU, decode can be at most 1.11x faster here',
    );
    // Nothing compressed: no gain is possible, said without a "1.00x faster".
    expect(bytesBoundLine(decodeBytes(1000, 100, 100))).toMatch(/reads 1\.00x .*: on a GPU, where decode is bound by those bytes, it cannot be faster here$/);
  });

  it('says the vision encoding once for both runs, or that the feature cache served it', () => {
    const ms = (value: number) => `${value} ms`;
    const none = { framesEncoded: 0, framesReused: 0 };
    expect(sharedVisionText({ encoded: 2, reused: 0, ...none, ms: 12 }, ms)).toBe('Pictures: 2 encoded by the vision tower once, for both runs (12 ms).');
    expect(sharedVisionText({ encoded: 0, reused: 1, ...none, ms: 0 }, ms)).toBe('Pictures: 1 from the feature cache — vision tower not run.');
    expect(sharedVisionText({ encoded: 0, reused: 0, ...none, ms: 0 }, ms)).toBeNull();
    // A video question counts frames; a conversation with a picture in one turn and a video in another names both.
    expect(sharedVisionText({ encoded: 10, reused: 0, framesEncoded: 10, framesReused: 0, ms: 12 }, ms)).toBe('Video frames: 10 encoded by the vision tower once, for both runs (12 ms).');
    expect(sharedVisionText({ encoded: 3, reused: 1, framesEncoded: 3, framesReused: 0, ms: 12 }, ms)).toBe(
      'Pictures and video frames: 3 frames encoded by the vision tower once, for both runs (12 ms), 1 picture from the feature cache.',
    );
    expect(sharedVisionText({ encoded: 1, reused: 12, framesEncoded: 0, framesReused: 10, ms: 12 }, ms)).toBe(
      'Pictures and video frames: 1 picture encoded by the vision tower once, for both runs (12 ms), 2 pictures and 10 frames from the feature cache.',
    );

  });

  it('says how it was timed, and what a CPU emulation\'s figure means', () => {
    const note = timingNote(measurements(), 'SparseMM');
    expectToContainAll(note, ['lockstep', 'median of 6 steps (GPU timestamps)', 'interquartile range', 'median of 4 prefills each after one untimed warm-up each',
      'order: full cache, SparseMM, SparseMM, full cache, full cache, SparseMM, SparseMM, full cache', "SparseMM's includes its selection kernels"]);
    expect(timingNote(measurements({ timing: 'wall-clock' }), 'SnapKV')).toMatch(/wall clock \(this adapter has no GPU timestamps\)/);
    expect(softwareNote(measurements(), true)).toBeNull();
    expect(softwareNote(measurements({ softwareAdapter: true }), true)).toMatch(/CPU emulation.*Dropping keys.*not a GPU figure/);
    // Nothing dropped: no sentence about what dropping keys does.
    const uncompressed = softwareNote(measurements({ softwareAdapter: true }), false);
    expect(uncompressed).toMatch(/CPU emulation/);
    expect(uncompressed).not.toMatch(/Dropping keys|speedup/);
  });
});

describe('the Metrics table of a comparison', () => {
  const full = runMetrics({});
  const policy = runMetrics({ label: 'SparseMM, budget 64', policy: 'SparseMM', budget: 64, kvBytes: 20000, totalGpuBytes: 1_490_000, fidelity: 'top-1 agreement 11/16' });

  it('compares only what the policy changes; the prompt and the vision encoding are shared, without a ratio', () => {
    const rows = comparisonRows([full, policy], measurements());
    const byName = Object.fromEntries(rows.map((row) => [row.name, row]));
    expect(rows.map((row) => row.name)).toEqual([
      'Policy', 'Prompt tokens', 'Vision encoding', 'Text prefill (+ selection)', 'Decode per token', 'KV cache', 'Bytes read per decode step', 'GPU memory in all', 'Fidelity', 'Generated tokens',
    ]);
    expect(byName['Vision encoding']).toEqual({ name: 'Vision encoding', values: ['2.50 s, once for both runs'], ratio: '', shared: true });
    expect(byName['Prompt tokens'].shared).toBe(true);
    expect(byName['Decode per token'].ratio).toBe('no measurable difference');
    expect(byName['Decode per token'].values).toEqual(['745.5 ms (IQR 217.8)', '570.0 ms (IQR 185.0)']);
    expect(byName['Text prefill (+ selection)'].ratio).toBe('1.09x slower');
    expect(byName['KV cache'].ratio).toBe('0.65x');
    expect(byName['Bytes read per decode step'].ratio).toBe('0.90x');
    expect(byName.Fidelity.values).toEqual(['reference', 'top-1 agreement 11/16']);
    // No time-to-first-token row: it would mix the shared vision encoding into a per-policy figure.
    expect(rows.some((row) => /first token/i.test(row.name))).toBe(false);
    expect(rows.filter((row) => /faster/.test(row.ratio))).toEqual([]);
  });

  it('with nothing compressed reads 1.00x for the KV bytes', () => {
    const same = comparisonRows([full, runMetrics({ label: 'SparseMM, budget 256' })], measurements({ bytes: decodeBytes(1000, 100, 100) }));
    expect(same.find((row) => row.name === 'KV cache')?.ratio).toBe('1.00x');
    expect(same.find((row) => row.name === 'Bytes read per decode step')?.ratio).toBe('1.00x');
  });

  it('says where the pictures came from when the vision tower did not run', () => {
    const rows = comparisonRows([full, policy], measurements({ vision: { encoded: 0, reused: 1, framesEncoded: 0, framesReused: 0, ms: 0 } }));
    expect(rows.find((row) => row.name === 'Vision encoding')?.values).toEqual(['from the feature cache (vision tower not run)']);
  });
});

describe('ComparePanel', () => {
  const metrics = (kvBytes: number): RunMetricsData => ({
    promptTokens: 105, textTokens: 25, imageTokens: 80, prefillMs: 0, visionMs: 2500, textPrefillMs: 40, timeToFirstTokenMs: 3000, decodeMsPerToken: 700,
    tokensPerSecond: 1.4, kvBytes, engineKvBytes: kvBytes, fullCacheKvBytes: 31000, totalGpuBytes: 1_500_000, weightBytes: 300_000, generatedTokens: 16,
    imagesEncoded: 1, imagesReused: 0, framesEncoded: 0, framesReused: 0, perStep: [],
  });
  const result = (policy: RunResult['policy'], kvBytes: number, compressed: boolean): RunResult => ({
    answer: '<b>not markup</b>', tokenIds: [1, 2], policy, options: { policy, budget: 64, window: 8, ratio: 0.1, maxNewTokens: 16 }, metrics: metrics(kvBytes),
    stoppedBy: 'max', compressed, capacities: [], windowLength: 8, imageLayout: null, images: [], warnings: [],
  });
  const answers = [
    { label: 'Full cache', text: '<b>not markup</b>', streaming: false, tokens: 2, result: result('full', 31000, false) },
    { label: 'SparseMM, budget 64', text: '<b>not markup</b>', streaming: false, tokens: 2, result: result('sparsemm', 20000, true) },
  ];

  it('shows the vision figure once, the verdicts with their spreads, the bytes line and the emulation note', () => {
    const html = renderToString(createElement(ComparePanel, { answers, measurements: measurements({ softwareAdapter: true }) }));
    expectToContainAll(html, [
      'Pictures: 1 encoded by the vision tower once, for both runs',
      '<span data-ratio="kv">0.65x</span>',
      'data-verdict="no-measurable-difference"',
      'no measurable difference',
      '745.5 ms (IQR 217.8)',
      ', selection included',
      'on a GPU, decode can be at most 1.11x faster here',
      'CPU emulation',
      '&lt;b&gt;not markup&lt;/b&gt;',
    ]);
    // Once for both runs: not repeated under each answer.
    expect(html.match(/encoded by the vision tower/g)).toHaveLength(1);
    expect(html).not.toMatch(/x faster<\/span>/);
  });

  it('with nothing compressed says so first, before any figure, and keeps the emulation note to what applies', () => {
    const uncompressed = [answers[0], { ...answers[1], label: 'SparseMM, budget 256', result: result('sparsemm', 31000, false) }];
    const same = measurements({ softwareAdapter: true, bytes: decodeBytes(500, 100, 100) });
    const html = renderToString(createElement(ComparePanel, { answers: uncompressed, measurements: same }));
    const ratios = html.slice(html.indexOf('data-testid="compare-ratios"'));
    expect(ratios.indexOf('the prompt (105 tokens) is shorter than the budget, so nothing was compressed')).toBeGreaterThan(0);
    expect(ratios.indexOf('nothing was compressed')).toBeLessThan(ratios.indexOf('KV bytes'));
    expectToContainAll(html, ['<span data-ratio="kv">1.00x</span>', 'it cannot be faster here', 'CPU emulation']);
    expect(html).not.toMatch(/Dropping keys|selection included/);
  });

  it('a plain answer says where its pictures came from the same way, with its own vision time', () => {
    const plain = { ...metrics(31000), imagesEncoded: 2, imagesReused: 1, visionMs: 1234 };
    expect(picturesNote(plain)).toBe('Pictures: 2 encoded by the vision tower (1234 ms), 1 from the feature cache.');
    expect(picturesNote({ ...plain, imagesEncoded: 0 })).toBe('Pictures: 1 from the feature cache — vision tower not run.');
    expect(picturesNote({ ...plain, imagesEncoded: 0, imagesReused: 0 })).toBeNull();
    expect(picturesNote({ ...plain, imagesEncoded: 10, imagesReused: 0, framesEncoded: 10 })).toBe('Video frames: 10 encoded by the vision tower (1234 ms).');
  });

  it('waits for both runs before showing figures', () => {
    const streaming = answers.map((a) => ({ ...a, streaming: true, result: undefined }));
    const html = renderToString(createElement(ComparePanel, { answers: streaming }));
    expect(html).toContain('Metrics appear when both runs end.');
    expect(html).not.toContain('compare-ratios');
  });
});
