/**
 * `npm run cli -- fidelity` end to end on the tiny fixture through dawn.node: the real loader, processor, session and
 * engine sweep, as the "done when" command runs it.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureTinyFixture } from '../../src/model-io/fixture';
import type { FidelitySweepResult, OcrEvalResult } from '../../src/session/fidelity-types';
import { nodeProbeRenderer } from '../../src/cli/probe-canvas';
import { readingOrderText } from '../../src/sparsemm/head-scoring';
import { anls, wordAccuracy } from '../../src/sparsemm/ocr-metrics';
import { planProbeSample } from '../../src/sparsemm/probe-set';
import { repoRoot, runCliWithPrivateCache } from '../helpers/cli';

const scratch = mkdtempSync(join(tmpdir(), 'fidelity-cli-'));
const sample = join(repoRoot, 'public', 'samples', 'shapes.png');
const runCli = runCliWithPrivateCache(scratch);
/** The bf16 full-cache answer of the first test (32 tokens), the reference the --weights q4 rows follow. */
let bf16Reference: number[] = [];

describe('fidelity CLI on the tiny fixture', { timeout: 240_000 }, () => {
  let fixture = '';
  beforeAll(async () => {
    fixture = await ensureTinyFixture();
  }, 120_000);

  it('budget 100000 rows are the reference; budget 40 rows compress and carry their KL; --plot writes the SVG', async () => {
    const plot = join(scratch, 'sweep.svg');
    const out = await runCli([
      'fidelity', '--model', fixture, '--image', sample, '--prompt', 'Describe the image.',
      '--policies', 'sparsemm,snapkv', '--budgets', '40,100000', '--json', '--plot', plot,
    ]);
    expect(out.code, out.stderr).toBe(0);
    const result = JSON.parse(out.stdout.trim().split('\n').pop() ?? '') as FidelitySweepResult;
    const { reference } = result;
    expect(reference.tokenIds).toHaveLength(32);
    bf16Reference = reference.tokenIds;
    expect(typeof reference.text).toBe('string');
    expect(result.rows.map((row) => `${row.policy} ${row.budget}`)).toEqual(['sparsemm 40', 'sparsemm 100000', 'snapkv 40', 'snapkv 100000']);
    for (const row of result.rows) {
      const what = `${row.policy} ${row.budget}`;
      expect(row.steps, what).toBe(reference.tokenIds.length);
      expect(row.top1Agreement, what).toBe(row.agreedSteps / row.steps);
      expect(row.maxKl, what).toBeGreaterThanOrEqual(row.meanKl);
      if (row.budget === 100000) {
        expect(row, what).toMatchObject({ compressed: false, top1Agreement: 1, meanKl: 0, maxKl: 0, firstDifference: null, kvBytes: reference.kvBytes });
        expect(row.tokenIds, what).toEqual(reference.tokenIds);
        expect(row.text, what).toBe(reference.text);
      } else {
        expect(row.compressed, what).toBe(true);
        expect(row.kvBytes, what).toBeLessThan(reference.kvBytes);
        // The tiny random model drifts at budget 40 of its ~100-token prompt (a fixed fixture: fixed numbers).
        expect(row.meanKl, what).toBeGreaterThan(0);
        expect(row.firstDifference, what).not.toBeNull();
        expect(row.tokenIds.slice(0, row.firstDifference ?? 0), what).toEqual(reference.tokenIds.slice(0, row.firstDifference ?? 0));
      }
    }
    expect(out.stderr).toMatch(/SparseMM uses uniform scores/);
    const svg = readFileSync(plot, 'utf8');
    expect(svg).toMatch(/^<svg /);
    for (const label of ['Full cache', 'SparseMM', 'SnapKV', 'Top-1 agreement']) expect(svg).toContain(label);
  });

  it('prints the table without --json', async () => {
    const out = await runCli(['fidelity', '--model', fixture, '--image', sample, '--prompt', 'Describe the image.', '--policies', 'adakv', '--budgets', '40', '--max-new-tokens', '4']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^reference \(full cache, \d+ bytes/);
    expect(out.stdout).toMatch(/policy\s+budget\s+kvBytes\s+top-1 agreement\s+mean KL\s+max KL\s+first difference/);
    expect(out.stdout).toMatch(/\nadakv\s+40\s+\d+ \(.*\)\s+\d\/4 \(/);
  });

  it('--weights q4: the q4 full cache and each q4 policy row against the bf16 full-cache answer, in one table', async () => {
    const args = ['fidelity', '--model', fixture, '--image', sample, '--prompt', 'Describe the image.', '--max-new-tokens', '8'];
    const out = await runCli([...args, '--weights', 'q4', '--policies', 'full,sparsemm', '--budgets', '40,100000', '--json']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toMatch(/rows: q4 weights, [\d.]+ KiB on the GPU beside the bf16 reference's [\d.]+ KiB/);
    const result = JSON.parse(out.stdout.trim().split('\n').pop() ?? '') as FidelitySweepResult;
    expect(result.reference.weights).toBe('bf16');
    expect(result.rows.map((row) => `${row.weights} ${row.policy} ${row.budget}`)).toEqual(['q4 full null', 'q4 sparsemm 40', 'q4 sparsemm 100000']);
    const [full, narrow, wide] = result.rows;
    // The reference is the bf16 full cache's answer: the first test's, cut at 8 tokens (when that test ran first;
    // tests/gpu/fidelity-run.test.ts checks the q4 rows against the q4 model's own answers).
    expect(result.reference.tokenIds).toHaveLength(8);
    if (bf16Reference.length > 0) expect(result.reference.tokenIds).toEqual(bf16Reference.slice(0, 8));
    // Budget 100000 keeps the whole prompt: the q4 full cache's row.
    expect({ ...wide, policy: 'full', budget: null }).toEqual(full);
    expect(full.steps).toBe(result.reference.tokenIds.length);
    expect(full.meanKl).toBeGreaterThan(0); // 4-bit weights move the distributions of the random model
    expect(narrow.kvBytes).toBeLessThan(full.kvBytes);
    expect(full.kvBytes).toBe(result.reference.kvBytes);
  });

  it('ocr-eval scores the full cache and each policy x budget against the probes\' text', async () => {
    const out = await runCli(['ocr-eval', '--model', fixture, '--samples', '2', '--seed', '3', '--policies', 'snapkv', '--budgets', '40,100000', '--max-new-tokens', '8', '--json']);
    expect(out.code, out.stderr).toBe(0);
    const result = JSON.parse(out.stdout.trim().split('\n').pop() ?? '') as OcrEvalResult;
    expect(result.stoppedBy).toBe('done');
    expect(result.rows.map((row) => `${row.policy} ${row.budget}`)).toEqual(['full null', 'snapkv 40', 'snapkv 100000']);
    const renderer = nodeProbeRenderer();
    expect(result.samples.map((sample) => sample.index)).toEqual([0, 1]);
    for (const sample of result.samples) {
      // The ground truth is the probe's own text, as the heads command's probes with this seed carry it.
      expect(sample.truth).toBe(readingOrderText(planProbeSample(3, sample.index, renderer.measureText).chunks));
      for (const answer of sample.answers) {
        expect(answer.anls).toBe(anls(answer.text, sample.truth));
        expect(answer.wordAccuracy).toBe(wordAccuracy(answer.text, sample.truth));
      }
      // Budget 100000 keeps the whole prompt: the same answer as the full cache.
      expect(sample.answers[2].text).toBe(sample.answers[0].text);
    }
    const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
    result.rows.forEach((row, i) => {
      expect(row.samples).toBe(2);
      expect(row.anls).toBeCloseTo(mean(result.samples.map((sample) => sample.answers[i].anls)), 12);
      expect(row.wordAccuracy).toBeCloseTo(mean(result.samples.map((sample) => sample.answers[i].wordAccuracy)), 12);
    });
    expect(result.rows[1].meanKvBytes).toBeLessThan(result.rows[0].meanKvBytes);
    expect(result.rows[2]).toMatchObject({ top1Agreement: 1, meanKvBytes: result.rows[0].meanKvBytes });
  });

  it('refuses bad lists before loading the model', async () => {
    const cases: [string[], RegExp][] = [
      [['--budgets', ''], /budget list is empty/],
      [['--budgets', '64,abc'], /Budget "abc" is not a whole number/],
      [['--budgets', '16'], /must exceed the observation window \(32/],
      [['--policies', 'sparsemm,h2o'], /Unknown policy "h2o"/],
      [['--policies', 'full'], /reference/],
      [['--weights', 'q5'], /--weights: Unknown weight format "q5"/],
    ];
    for (const [extra, message] of cases) {
      const out = await runCli(['fidelity', '--model', fixture, '--prompt', 'Hi', ...extra]);
      expect(out.code, extra.join(' ')).toBe(2);
      expect(out.stderr, extra.join(' ')).toMatch(message);
      expect(out.stderr).not.toMatch(/^model:/m);
    }
  });
});
