import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureTinyFixture } from '../../src/model-io/fixture';
import { parseScoreFile, scoreFileShape } from '../../src/sparsemm/score-file';
import { runCliWithPrivateCache } from '../helpers/cli';

const scratch = mkdtempSync(join(tmpdir(), 'heads-cli-'));
const runCli = runCliWithPrivateCache(scratch);

describe('heads CLI', { timeout: 180_000 }, () => {
  let fixture = '';
  beforeAll(async () => {
    fixture = await ensureTinyFixture();
  }, 120_000);

  it('writes an official score file that the budgets CLI accepts', async () => {
    const out = join(scratch, 'scores.json');
    const heads = await runCli(['heads', '--model', fixture, '--samples', '4', '--out', out, '--mode', 'teacher-forcing', '--max-new-tokens', '16', '--seed', '0']);
    expect(heads.code, heads.stderr).toBe(0);
    expect(heads.stdout).toContain('2 layers x 4 heads, 4 probe(s), mode teacher-forcing');
    expect(heads.stderr).toContain('probe 4/4');

    const file = parseScoreFile(readFileSync(out, 'utf8'));
    expect(scoreFileShape(file)).toEqual({ layers: 2, heads: 4 });
    expect(Object.keys(file)).toEqual(['0-0', '0-1', '0-2', '0-3', '1-0', '1-1', '1-2', '1-3']);
    for (const list of Object.values(file)) {
      expect(list).toHaveLength(4);
      for (const score of list) expect(score).toBeGreaterThanOrEqual(0);
    }

    // The budgets CLI needs some non-zero score to split by (all zeros would divide by zero): on the tiny random model
    // this seed's probes give teacher-forced hits in several heads.
    expect(Object.values(file).flat().some((score) => score > 0)).toBe(true);

    const budgets = await runCli(['budgets', '--policy', 'sparsemm', '--scores', out, '--config', join(fixture, 'config.json'), '--budget', '48', '--window', '8']);
    expect(budgets.code, budgets.stderr).toBe(0);
    const { capacity } = JSON.parse(budgets.stdout) as { capacity: number[][] };
    expect(capacity).toHaveLength(2);
    for (const row of capacity) expect(row).toHaveLength(2);
  });

  it('rejects bad options with exit code 2', async () => {
    const bad = await runCli(['heads', '--model', fixture, '--out', join(scratch, 'x.json'), '--mode', 'beam']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--mode must be one of greedy, teacher-forcing');
    const noOut = await runCli(['heads', '--model', fixture]);
    expect(noOut.code).toBe(2);
    expect(noOut.stderr).toContain('--out FILE is required');
  });
});
