import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultBudgetParams, headCapacities } from '../../src/sparsemm/budgets';
import { headScoreMatrix, parseScoreFile } from '../../src/sparsemm/score-file';
import { runCli as runMain } from '../helpers/cli';
import { llavaScorePath, referenceConfigPath as smolvlmConfigPath } from '../helpers/reference-data';

const runCli = (args: string[]) => runMain(['budgets', ...args]);

describe('budgets CLI', { timeout: 60_000 }, () => {
  it('prints the sparsemm capacities of the official LLaVA score file', async () => {
    const { code, stdout } = await runCli(['--policy', 'sparsemm', '--scores', llavaScorePath, '--layers', '32', '--q-heads', '32', '--kv-heads', '32', '--budget', '256']);
    expect(code).toBe(0);
    const printed = JSON.parse(stdout) as { capacity: number[][] };
    expect(Object.keys(printed)).toEqual(['capacity']);
    const scores = headScoreMatrix(parseScoreFile(readFileSync(llavaScorePath, 'utf8')), 32, 32);
    const expected = headCapacities('sparsemm', { layers: 32, qHeads: 32, kvHeads: 32, promptLength: Number.MAX_SAFE_INTEGER, params: defaultBudgetParams, headScores: scores });
    expect(printed.capacity).toEqual(expected.capacity);
    // Spot values from a Python transcription of the official formula.
    expect(printed.capacity[0].slice(0, 8)).toEqual([27, 22, 33, 223, 26, 23, 25, 399]);
  });

  it('prints the pyramidkv schedule for a given prompt length', async () => {
    // base 56, beta 20: min 2, max 110 >= prefix 92 -> max 92, min 20, steps 72 // 3 = 24.
    const { code, stdout } = await runCli(['--policy', 'pyramidkv', '--layers', '4', '--q-heads', '2', '--kv-heads', '1', '--budget', '64', '--window', '8', '--prompt-len', '100']);
    expect(code).toBe(0);
    expect(stdout.trim()).toBe('{"capacity":[[92],[68],[44],[20]]}');
  });

  it('reads the head counts from a model config and clamps to --prompt-len', async () => {
    // SmolVLM-256M: 30 layers, 3 KV heads. Budget 64: every head keeps base 32. Default budget 256 > prompt 100:
    // nothing is compressed, every head keeps its whole prefix 100 - 32 = 68.
    const { code, stdout } = await runCli(['--policy', 'snapkv', '--config', smolvlmConfigPath, '--budget', '64', '--prompt-len', '100']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ capacity: Array.from({ length: 30 }, () => [32, 32, 32]) });
    const short = await runCli(['--policy', 'snapkv', '--config', smolvlmConfigPath, '--prompt-len', '100']);
    expect(JSON.parse(short.stdout)).toEqual({ capacity: Array.from({ length: 30 }, () => [68, 68, 68]) });
  });

  it('exits with code 2 and a message on stderr for bad input', async () => {
    const mismatch = await runCli(['--policy', 'sparsemm', '--scores', llavaScorePath, '--layers', '30', '--q-heads', '9', '--kv-heads', '3']);
    expect(mismatch.code).toBe(2);
    expect(mismatch.stdout).toBe('');
    expect(mismatch.stderr).toContain('score file covers 32 layers x 32 heads (1024 entries) but the model has 30 layers x 9 query heads');

    const noPolicy = await runCli(['--layers', '2']);
    expect(noPolicy.code).toBe(2);
    expect(noPolicy.stderr).toContain('--policy is required');

    const badNumber = await runCli(['--policy', 'snapkv', '--layers', 'two', '--q-heads', '2', '--kv-heads', '1']);
    expect(badNumber.code).toBe(2);
    expect(badNumber.stderr).toContain('--layers must be an integer');

    const unknownOption = await runCli(['--policy', 'snapkv', '--frobnicate']);
    expect(unknownOption.code).toBe(2);
  });

  it('prints help', async () => {
    const { code, stdout } = await runCli(['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('--prompt-len N');
    expect(stdout).toContain('long enough that compression happens');
  });
});
