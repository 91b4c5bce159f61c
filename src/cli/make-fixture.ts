/**
 * `npm run cli -- make-fixture --out DIR [--seed N] [--preset tiny|smolvlm-256m-shape] [--reference DIR]`
 * Writes a deterministic random-weight Idefics3 model in the real file formats (see src/model-io/fixture.ts).
 */
import { parseArgs } from 'node:util';
import { defaultFixtureSeed, defaultReferenceModelDir, type FixturePreset, fixturePresets, writeFixture } from '../model-io/fixture';

const usage = `Usage: npm run cli -- make-fixture --out DIR [--seed N] [--preset ${fixturePresets.join('|')}] [--reference DIR]

  --out DIR        folder to write (created if needed)
  --seed N         random seed, integer 0..2^32-1 (default ${defaultFixtureSeed})
  --preset NAME    tiny (default): a miniature SmolVLM for tests;
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

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: 'string' },
      seed: { type: 'string' },
      preset: { type: 'string' },
      reference: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(usage);
    return;
  }
  if (!values.out) throw new Error(`--out is required.\n\n${usage}`);
  const preset = values.preset ?? 'tiny';
  if (!isPreset(preset)) throw new Error(`Unknown preset "${preset}" (expected ${fixturePresets.join(' or ')}).`);
  let seed = defaultFixtureSeed;
  if (values.seed !== undefined) {
    if (!/^\d+$/.test(values.seed) || Number(values.seed) > 0xffffffff) {
      throw new Error(`--seed must be an integer in 0..4294967295 (got "${values.seed}").`);
    }
    seed = Number(values.seed);
  }

  const started = performance.now();
  const written = await writeFixture(values.out, { preset, seed, referenceDir: values.reference });
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
