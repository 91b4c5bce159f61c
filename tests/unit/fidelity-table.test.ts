import { describe, expect, it } from 'vitest';
import { fidelityTable } from '../../src/cli/fidelity';
import type { FidelityRow, FidelitySweepResult } from '../../src/session/fidelity-types';

function row(weights: FidelityRow['weights'], policy: FidelityRow['policy'], budget: number | null, agreedSteps: number): FidelityRow {
  return {
    weights, policy, budget, kvBytes: 2048, compressed: budget !== null, top1Agreement: agreedSteps / 4, agreedSteps, steps: 4,
    meanKl: 0.25, maxKl: 0.5, firstDifference: agreedSteps === 4 ? null : 2, tokenIds: [], text: '',
  };
}

function result(rows: FidelityRow[]): FidelitySweepResult {
  return { promptTokens: 9, reference: { tokenIds: [1, 2, 3, 4], text: 'abcd', kvBytes: 4096, weights: 'bf16' }, rows, stoppedBy: 'done', warnings: [] };
}

describe('fidelity table', () => {
  it('rows on the reference\'s weights: policy, budget and the numbers, no weights column', () => {
    const lines = fidelityTable(result([row('bf16', 'sparsemm', 64, 3)])).split('\n');
    expect(lines[0]).toBe('reference (full cache, 4096 bytes = 4 KiB), 4 tokens: "abcd"');
    expect(lines[2]).toMatch(/^policy\s+budget\s+kvBytes/);
    expect(lines[3]).toMatch(/^sparsemm\s+64\s+2048 \(2 KiB\)\s+3\/4 \(0\.750\)\s+0\.2500\s+0\.5000\s+token 2$/);
  });

  it('q4 rows against the bf16 full cache: a weights column, the q4 full cache without a budget', () => {
    const lines = fidelityTable(result([row('q4', 'full', null, 4), row('q4', 'sparsemm', 256, 3)])).split('\n');
    expect(lines[0]).toMatch(/^reference \(bf16 weights, full cache, 4096 bytes/);
    expect(lines[2]).toMatch(/^weights\s+policy\s+budget\s+kvBytes/);
    expect(lines[3]).toMatch(/^q4\s+full\s+-\s+2048 .* none$/);
    expect(lines[4]).toMatch(/^q4\s+sparsemm\s+256\s+2048 /);
  });
});
