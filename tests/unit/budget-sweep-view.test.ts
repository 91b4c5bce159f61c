import { describe, expect, it } from 'vitest';
import { rowLabel, sweepChartRows } from '../../src/ui/BudgetSweepPanel';
import { fidelitySummary, formatKl } from '../../src/ui/ComparePanel';
import type { FidelityRow, FidelitySweepResult } from '../../src/worker/api';

function row(policy: FidelityRow['policy'], budget: number, kvBytes: number, top1Agreement: number, meanKl: number): FidelityRow {
  return { weights: 'bf16', policy, budget, kvBytes, compressed: true, top1Agreement, agreedSteps: 0, steps: 0, meanKl, maxKl: meanKl, firstDifference: null, tokenIds: [], text: '' };
}

const result: FidelitySweepResult = {
  promptTokens: 100,
  reference: { tokenIds: [1, 2], text: 'ab', kvBytes: 4096, weights: 'bf16' },
  rows: [row('sparsemm', 64, 1024, 0.5, 0.2), row('sparsemm', 128, 2048, 0.75, 0.1), row('snapkv', 64, 1024, 0.25, 0.4)],
  stoppedBy: 'done',
  warnings: [],
};

describe('budget sweep chart rows', () => {
  it('puts every series on one log2 KV axis, the full cache at its own size with agreement 1 and KL 0', () => {
    const agreement = sweepChartRows(result, 'top1Agreement');
    expect(agreement.labels).toEqual(['Full cache', 'SparseMM', 'SnapKV']);
    expect(agreement.rows).toEqual([
      { x: 10, SparseMM: 0.5, SnapKV: 0.25 },
      { x: 11, SparseMM: 0.75 },
      { x: 12, 'Full cache': 1 },
    ]);
    expect(sweepChartRows(result, 'meanKl').rows[2]).toEqual({ x: 12, 'Full cache': 0 });
  });
});

describe('budget sweep chart rows with another weight format', () => {
  it('names each series after its weights when the rows ran on a q4 copy of the bf16 model', () => {
    const q4 = (policy: FidelityRow['policy'], budget: number | null, kvBytes: number, top1Agreement: number): FidelityRow =>
      ({ ...row(policy, 0, kvBytes, top1Agreement, 0.1), weights: 'q4', budget });
    const quantized: FidelitySweepResult = { ...result, rows: [q4('full', null, 4096, 0.5), q4('sparsemm', 64, 1024, 0.25)] };
    expect(rowLabel(quantized, quantized.rows[1])).toBe('q4 SparseMM');
    const agreement = sweepChartRows(quantized, 'top1Agreement');
    expect(agreement.labels).toEqual(['bf16 Full cache', 'q4 Full cache', 'q4 SparseMM']);
    expect(agreement.rows).toEqual([{ x: 10, 'q4 SparseMM': 0.25 }, { x: 12, 'bf16 Full cache': 1, 'q4 Full cache': 0.5 }]);
    // Rows on the reference's own weights keep the plain labels.
    expect(rowLabel(result, result.rows[0])).toBe('SparseMM');
  });
});

describe('compare fidelity line', () => {
  it('reads as the issue asks', () => {
    const line = fidelitySummary({ agreedSteps: 31, steps: 32, meanKl: 0.0042, maxKl: 0.1, firstDifference: 17, differenceText: null });
    expect(line).toBe('top-1 agreement 31/32, mean KL 0.004, first difference at token 17');
    expect(fidelitySummary({ agreedSteps: 8, steps: 8, meanKl: 0, maxKl: 0, firstDifference: null, differenceText: null })).toBe(
      'top-1 agreement 8/8, mean KL 0.000, no difference from the full-cache answer',
    );
    expect(formatKl(0.00042)).toBe('4.2e-4');
  });
});
