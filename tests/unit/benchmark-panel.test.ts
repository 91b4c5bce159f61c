/** The Benchmark tab rendered to HTML (react-dom/server), and its chart-row helper. */
import { createElement } from 'react';
import { renderToString } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import type { BenchmarkReport, BenchmarkRun } from '../../src/engine/benchmark';
import { BenchmarkPanel, benchmarkChartRows, runLabel, type BenchmarkPanelProps } from '../../src/ui/BenchmarkPanel';

function run(policy: BenchmarkRun['policy'], budget: number, promptLen: number, decodeMsPerToken: number, kvBytes: number, compressed = policy !== 'full'): BenchmarkRun {
  return {
    policy, budget, promptLen, promptLabel: null, weightFormat: 'bf16', weightBytes: 5e8, decodeWeightBytes: 2.7e8, prefillMs: null,
    decodeIqrMs: 0, speedupVerdict: 'too-few-steps', speedupText: 'too few steps to tell', vsFirstFormat: null, gpuIdleMsPerStep: 0.05, decodeMsPerToken, decodeMinMsPerToken: decodeMsPerToken, decodeMinSpeedupVsFull: 1, decodeWallMsPerToken: decodeMsPerToken, decodeStepMs: [decodeMsPerToken],
    kvBytes, keptTokens: 0, compressed, totalGpuBytes: kvBytes + 1e8, decodeSpeedupVsFull: 1, kvRatioVsFull: 1, bytesReadPerToken: 3e8,
    achievedGBps: 1, bytesBoundSpeedupVsFull: 1, selectMs: 1, dispatchesPerStep: 183, recordMsPerStep: 1, recordMinMsPerStep: 1, bandwidthEfficiency: 0.5, boundEfficiency: 1,
  };
}

const report: BenchmarkReport = {
  machine: 'Test CPU x 2',
  adapter: { vendor: 'google', architecture: 'swiftshader', device: '', description: 'SwiftShader <driver>', features: [], maxStorageBufferBindingSize: 1, maxBufferSize: 1, gemv: { reduction: 'subgroup', team: 4 }, software: true },
  note: 'Decode runs on a SYNTHETIC KV cache.',
  timing: 'gpu-timestamps',
  headScoresSource: 'random',
  limits: { readGBps: 2, readBytes: 256 * 2 ** 20, peakGflops: 5 },
  gemv: { reduction: 'subgroup', team: 4 },
  model: { textLayers: 30, queryHeads: 9, kvHeads: 3, headDim: 64, hiddenSize: 576, vocabSize: 49280, weightBytes: 5e8, decodeWeightBytes: 2.7e8 },
  settings: { promptLengths: [1024, 8192], prefillLengths: [], policies: [{ policy: 'full', budget: 0 }, { policy: 'sparsemm', budget: 256 }], decodeSteps: 3, warmupSteps: 1, ratio: 0.1, window: 32, lookahead: 2, weightFormats: ['bf16'] },
  createdAt: '2026-01-01T00:00:00Z',
  totalMs: 1,
  prefill: null,
  runs: [
    run('full', 0, 1024, 20, 48 * 2 ** 20),
    run('sparsemm', 256, 1024, 19, 12 * 2 ** 20),
    run('full', 0, 8192, 30, 384 * 2 ** 20),
    run('sparsemm', 256, 8192, 20, 13 * 2 ** 20),
    run('sparsemm', 1024, 1024, 20, 47 * 2 ** 20, false),
  ],
};

const base: BenchmarkPanelProps = { report: null, running: false, progress: null, onRun: () => {} };
const render = (props: Partial<BenchmarkPanelProps>): string => renderToString(createElement(BenchmarkPanel, { ...base, ...props }));

describe('BenchmarkPanel', () => {
  it('labels every control and shows an empty state before the first run', () => {
    const html = render({});
    const inputs = html.match(/<input[^>]*>/g) ?? [];
    expect(inputs.length).toBeGreaterThan(10);
    // Every input sits inside a <label>: count label-wrapped inputs.
    const labelled = html.match(/<label[^>]*>(?:(?!<\/label>).)*<input/g) ?? [];
    expect(labelled).toHaveLength(inputs.length);
    expect(html).toContain('Run benchmark');
    expect(html).toContain('No benchmark yet');
    expect(html).not.toContain('data-testid="benchmark-results"');
  });

  it('while running: disables the form and shows a labelled progress bar with the message', () => {
    const html = render({ running: true, progress: { phase: 'decode', completed: 3, total: 10, message: 'decode step 2/4' } });
    expect(html).toMatch(/<button type="submit" disabled="">Running…<\/button>/);
    expect(html).toContain('<progress id="benchmark-progress-bar" max="10" value="3"');
    expect(html).toContain('<label for="benchmark-progress-bar">Benchmark progress</label>');
    expect(html).toContain('decode step 2/4');
  });

  it('renders the report: machine, adapter (as text), note, one table row per run, not-compressed marker', () => {
    const html = render({ report });
    expect(html).toContain('Test CPU x 2');
    expect(html).toContain('SwiftShader &lt;driver&gt;');
    expect(html).toContain('SYNTHETIC KV cache');
    expect(html.match(/<tr>/g)).toHaveLength(1 + report.runs.length);
    expect(html).toContain('sparsemm 1024<!-- --> (not compressed)');
    expect(html).toContain('Decode time per token vs prompt length');
    expect(html).toContain('KV cache vs prompt length');
  });

  it('shows an error as an alert', () => {
    expect(render({ error: 'GPU lost' })).toMatch(/role="alert"[^>]*>GPU lost</);
  });

  it('chart rows: one row per length (sorted, log2 x), one column per policy label', () => {
    const { rows, labels } = benchmarkChartRows(report.runs, (r) => r.decodeMsPerToken);
    expect(labels).toEqual(['full', 'sparsemm 256', 'sparsemm 1024']);
    expect(rows).toEqual([
      { promptLen: 1024, lengthLog2: 10, full: 20, 'sparsemm 256': 19, 'sparsemm 1024': 20 },
      { promptLen: 8192, lengthLog2: 13, full: 30, 'sparsemm 256': 20 },
    ]);
    expect(runLabel({ policy: 'full', budget: 0 })).toBe('full');
  });
});
