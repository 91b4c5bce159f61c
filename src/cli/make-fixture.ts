/**
 * `npm run cli -- make-fixture --out DIR [--seed N] [--preset tiny|smolvlm2-tiny|smolvlm-256m-shape] [--reference DIR]`
 * Writes a deterministic random-weight Idefics3 model in the real file formats (see src/model-io/fixture.ts).
 */
import { defaultFixtureSeed, defaultReferenceModelDir, type FixturePreset, fixturePresets, writeFixture } from '../model-io/fixture';
import { commandOptions, integerOption, parseCommandArgs, UsageError } from './args';

const usage = `Usage: npm run cli -- make-fixture --out DIR [--seed N] [--preset ${fixturePresets.join('|')}] [--reference DIR]

  --out DIR        folder to write (created if needed)
  --seed N         random seed, integer 0..2^32-1 (default ${defaultFixtureSeed})
  --preset NAME    tiny (default): a miniature SmolVLM for tests;
                   smolvlm2-tiny: the same miniature as a SmolVLM2 (model_type "smolvlm", video_sampling) for video tests;
                   smolvlm-256m-shape: random weights at the real SmolVLM-256M shapes (~0.5 GB) for benchmarks
  --reference DIR  smolvlm-256m-shape only: the real model's JSON files (default ${defaultReferenceModelDir()})
`;

function isPreset(value: string): value is FixturePreset {
  return (fixturePresets as readonly string[]).includes(value);
}

function formatBytes(bytes: number): string {
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(1)} KiB`;
  return `${bytes} B`;
}

interface MakeFixtureArgs {
  out: string;
  preset: FixturePreset;
  seed: number;
  referenceDir: string | undefined;
}

export function parseMakeFixtureArgs(args: string[]): MakeFixtureArgs | 'help' {
  const values = commandOptions(args, { out: { type: 'string' }, seed: { type: 'string' }, preset: { type: 'string' }, reference: { type: 'string' } });
  if (values === 'help') return 'help';
  if (!values.out) throw new UsageError('--out is required');
  const preset = values.preset ?? 'tiny';
  if (!isPreset(preset)) throw new UsageError(`unknown preset "${preset}" (expected ${fixturePresets.join(' or ')})`);
  const seed = integerOption('seed', values.seed, defaultFixtureSeed);
  if (seed < 0 || seed > 0xffffffff) throw new UsageError(`--seed must be in 0..4294967295, got ${seed}`);
  return { out: values.out, preset, seed, referenceDir: values.reference };
}

export async function run(args: string[]): Promise<void> {
  const options = parseCommandArgs('make-fixture', usage, () => parseMakeFixtureArgs(args));
  if (!options) return;
  const { out, preset, seed, referenceDir } = options;
  const started = performance.now();
  const written = await writeFixture(out, { preset, seed, referenceDir });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const { text, vision, imageSeqLen } = written.config;
  process.stdout.write(
    `Wrote the ${preset} fixture (seed ${seed}) to ${written.dir} in ${seconds} s\n` +
      `  text: ${text.numLayers} layers, hidden ${text.hiddenSize}, ${text.numHeads} heads / ${text.numKvHeads} KV heads, ` +
      `head_dim ${text.headDim}, vocab ${text.vocabSize}\n` +
      `  vision: ${vision.numLayers} layers, hidden ${vision.hiddenSize}, ${vision.imageSize} px tiles, ${imageSeqLen} image tokens per tile\n`,
  );
  for (const [name, bytes] of Object.entries(written.files)) process.stdout.write(`  ${name.padEnd(26)} ${formatBytes(bytes)}\n`);
}
