/**
 * `generate --dump DIR` on the tiny fixture through the CLI: the dumped inputs are what the processor made, the
 * dumped logits of every step are the CPU reference model's for those inputs, and the tokens are their argmax. Then,
 * where python3 (or SPARSEMM_PARITY_PYTHON) has torch and transformers, scripts/parity/transformers_parity.py on the
 * same folder against Hugging Face's Idefics3 (this machine's python3 has neither: that test is skipped and says why).
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDump, type DumpManifest, type NpyArray } from '../../src/cli/dump';
import type { GenerateReport } from '../../src/cli/generate';
import { ensureTinyFixture } from '../../src/model-io/fixture';
import { parseModelConfig, type ModelConfig } from '../../src/model-io/config';
import { SafetensorsFile } from '../../src/model-io/safetensors';
import { argmax } from '../reference/cpu-ops';
import { cpuGenerate, CpuWeights } from '../reference/cpu-model';
import { maxAbsDiff } from '../helpers/gpu';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const tsx = join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const sample = join(root, 'public', 'samples', 'shapes.png');
const parityScript = join(root, 'scripts', 'parity', 'transformers_parity.py');
const steps = 5;

/** The Python that runs the parity script: SPARSEMM_PARITY_PYTHON (e.g. a venv with torch + transformers) or python3. */
const python = process.env.SPARSEMM_PARITY_PYTHON ?? 'python3';

/** Why the transformers parity run cannot happen here, or null when that Python has torch and transformers. */
function parityUnavailable(): string | null {
  const probe = spawnSync(python, ['-c', 'import numpy, torch, transformers; print(transformers.__version__)'], { encoding: 'utf8' });
  if (probe.error) return `${python} is not installed`;
  if (probe.status !== 0) return `${python} lacks numpy / torch / transformers (${probe.stderr.trim().split('\n').pop()})`;
  return null;
}
const parityMissing = parityUnavailable();

describe('generate --dump on the tiny fixture', () => {
  let fixture: string;
  let dumpDir: string;
  let report: GenerateReport;
  let manifest: DumpManifest;
  let tensors: Record<keyof DumpManifest['tensors'], NpyArray>;
  let config: ModelConfig;

  beforeAll(async () => {
    // Said on the console as well as in the skipped test's name, so the skip is never silent.
    if (parityMissing) console.log(`transformers parity on the tiny fixture SKIPPED: ${parityMissing} (it runs where python3, or SPARSEMM_PARITY_PYTHON, has torch + transformers)`);
    fixture = await ensureTinyFixture();
    dumpDir = mkdtempSync(join(tmpdir(), 'sparsemm-dump-gpu-'));
    const { stdout } = await run(process.execPath, [
      tsx, join(root, 'src', 'cli', 'main.ts'), 'generate', '--model', fixture, '--image', sample, '--prompt', 'What is in the image?',
      '--max-new-tokens', String(steps), '--json', '--dump', dumpDir,
    ], { cwd: root, maxBuffer: 1 << 24 });
    report = JSON.parse(stdout.trim().split('\n').pop() ?? '') as GenerateReport;
    ({ manifest, tensors } = readDump(dumpDir));
    config = parseModelConfig(readFileSync(join(fixture, 'config.json'), 'utf8'));
  }, 180_000);

  afterAll(() => {
    if (dumpDir) rmSync(dumpDir, { recursive: true, force: true });
  });

  it('dumps the prompt, the tiles and the image-token layout the model was fed', () => {
    expect(manifest.tensors.input_ids.shape).toEqual([report.promptTokens]);
    expect(manifest.numTiles).toBeGreaterThan(0);
    expect(manifest.tensors.pixel_values.shape).toEqual([manifest.numTiles, 3, config.vision.imageSize, config.vision.imageSize]);
    expect(manifest.tensors.image_token_positions.shape).toEqual([report.imageTokens]);
    expect(report.imageTokens).toBe(manifest.numTiles * config.imageSeqLen);
    const ids = tensors.input_ids;
    const imagePositions = [...ids.keys()].filter((i) => ids[i] === config.imageTokenId);
    expect([...tensors.image_token_positions]).toEqual(imagePositions);
    expect(manifest.imageTokenRuns.length).toBe(manifest.numTiles); // one run per tile: tile markers separate them
    expect(manifest.imageTokenRuns.every(([, length]) => length === config.imageSeqLen)).toBe(true);
    expect(Math.max(...tensors.pixel_values.map(Math.abs))).toBeGreaterThan(0.1); // normalised pixels, not zeros
  });

  it('dumps, per step, logits equal to the CPU reference model on the same inputs; the tokens are their argmax', () => {
    expect(manifest.tokens).toEqual(report.tokenIds);
    expect([...tensors.tokens]).toEqual(report.tokenIds);
    expect(manifest.tensors.logits.shape).toEqual([report.tokenIds.length, config.text.vocabSize]);
    const reference = cpuGenerate(
      new CpuWeights(SafetensorsFile.parse(new Uint8Array(readFileSync(join(fixture, 'model.safetensors'))).buffer)),
      config, new Uint32Array(tensors.input_ids), new Float32Array(tensors.pixel_values), manifest.numTiles, report.tokenIds.length,
    );
    const vocab = config.text.vocabSize;
    for (let step = 0; step < report.tokenIds.length; step++) {
      const ours = new Float32Array(tensors.logits.subarray(step * vocab, (step + 1) * vocab));
      const want = reference.logitsPerStep[step];
      const scale = Math.max(1, ...want.map(Math.abs));
      expect(maxAbsDiff(ours, want), `step ${step}`).toBeLessThan(2e-3 * scale);
      expect(argmax(ours)).toBe(report.tokenIds[step]);
    }
    expect(report.tokenIds).toEqual(reference.tokenIds.slice(0, report.tokenIds.length));
  });

  it.skipIf(parityMissing !== null)(`transformers_parity.py agrees with the dump${parityMissing ? ` (SKIPPED: ${parityMissing})` : ''}`, async () => {
    const { stdout } = await run(python, [parityScript, fixture, dumpDir], { cwd: root, maxBuffer: 1 << 24 });
    expect(stdout).toMatch(/^transformers \d/m);
    expect(stdout).toMatch(/^PASS: /m);
  }, 300_000);
});
