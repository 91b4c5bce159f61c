/**
 * Deterministic random-weight Idefics3 models in the real file formats, for tests and benchmarks (Node only: it
 * writes files; the browser never imports this module).
 *
 * - preset "tiny": a made-up miniature SmolVLM (64 px tiles of 8 px patches, pixel shuffle 2 -> 16 image tokens per
 *   tile, 2 vision + 2 text layers) with its own small byte-level BPE tokenizer carrying the Idefics3 special tokens,
 *   the real chat template and an Idefics3 image processor config whose tiles match the vision tower. Small enough
 *   that SwiftShader runs it in seconds and the CPU reference forward can check it.
 * - preset "smolvlm2-tiny": the same miniature under SmolVLM2's names (model_type "smolvlm") with its video_sampling
 *   processor keys and transformers' video chat template, for the video tests.
 * - preset "smolvlm-256m-shape": random weights at the exact shapes and tensor names of SmolVLM-256M-Instruct with its
 *   real config / tokenizer / processor files (copied from a reference folder), for benchmarks (~0.5 GB, streamed to
 *   disk tensor by tensor).
 *
 * Every tensor is drawn from its own stream (seed mixed with a hash of the tensor's name), so the bytes depend only
 * on (preset, seed) and not on the order tensors are generated in.
 */
import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ModelConfig, parseModelConfig } from './config';
import { tinyFixtureFiles, toJsonBytes } from './fixture-files';
import { defaultFixtureSeed, fixtureGeneratorVersion, writeRandomWeightsStreaming } from './fixture-weights';

// The parts, by what they make (random weights, the BPE tokenizer, the tiny model's JSON files); this file writes them.
export { randomTensorBf16, randomWeights, randomWeightSpecs, type RandomTensorSpec } from './fixture-weights';
export { buildTinyTokenizer, smolVlmChatTemplate, type FixtureTokenIds, type FixtureTokenizer } from './fixture-tokenizer';
export { tinyConfigJson, tinyFixtureFiles, tinyMaxImageEdge, tinyTileSize } from './fixture-files';
export { defaultFixtureSeed, fixtureGeneratorVersion };

export type FixturePreset = 'tiny' | 'smolvlm2-tiny' | 'smolvlm-256m-shape';
export const fixturePresets: readonly FixturePreset[] = ['tiny', 'smolvlm2-tiny', 'smolvlm-256m-shape'];
const stampFileName = '.fixture-stamp.json';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The real SmolVLM-256M-Instruct JSON files, vendored in tests/data (Apache-2.0; see tests/data/README.md). */
export function defaultReferenceModelDir(): string {
  return process.env.SPARSEMM_REFERENCE_MODEL_DIR ?? join(projectRoot, 'tests', 'data', 'SmolVLM-256M-Instruct');
}
export const defaultTinyFixtureDir = join(projectRoot, '.fixtures', 'tiny');

/**
 * The official SparseMM score file for LLaVA-NeXT-Vicuna-7B (32 x 32 heads): SPARSEMM_REFERENCE_SCORES, or the shared
 * reference folder next to the checkout (`../shared/reference-scores/`), so a clone anywhere behaves the same. Not
 * vendored: its licence is not stated by the upstream repository.
 */
export function defaultReferenceScoreFile(): string {
  return process.env.SPARSEMM_REFERENCE_SCORES ?? join(projectRoot, '..', 'shared', 'reference-scores', 'llava-v1.6.json');
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

export interface WriteFixtureOptions {
  preset?: FixturePreset;
  seed?: number;
  /** smolvlm-256m-shape only: folder with the real SmolVLM-256M-Instruct JSON files. */
  referenceDir?: string;
}

export interface WrittenFixture {
  dir: string;
  preset: FixturePreset;
  seed: number;
  config: ModelConfig;
  /** File name -> size in bytes. */
  files: Record<string, number>;
}

interface FixtureStamp {
  version: number;
  preset: FixturePreset;
  seed: number;
  files: Record<string, number>;
}

/** The JSON files the 256m-shape preset copies from the reference folder (the first five are required). */
const referenceJsonFiles = [
  'config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'preprocessor_config.json',
  'processor_config.json',
  'special_tokens_map.json',
  'chat_template.json',
  'generation_config.json',
  'added_tokens.json',
];
const requiredReferenceFiles = 5;

async function fileSize(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch {
    return null;
  }
}

async function writeSmolVlmShape(dir: string, seed: number, referenceDir: string): Promise<{ config: ModelConfig; files: Record<string, number> }> {
  const files: Record<string, number> = {};
  for (const [index, name] of referenceJsonFiles.entries()) {
    const source = join(referenceDir, name);
    const size = await fileSize(source);
    if (size === null) {
      if (index < requiredReferenceFiles) {
        throw new Error(`The reference folder ${referenceDir} has no ${name}; pass --reference with SmolVLM-256M-Instruct's JSON files.`);
      }
      continue;
    }
    await copyFile(source, join(dir, name));
    files[name] = size;
  }
  const config = parseModelConfig(await readFile(join(dir, 'config.json'), 'utf8'));
  files['model.safetensors'] = await writeRandomWeightsStreaming(join(dir, 'model.safetensors'), config, seed);
  return { config, files };
}

/**
 * Writes a fixture model into `dir` (created if needed; existing model files are overwritten) plus a stamp file
 * recording the generator version, preset, seed and file sizes.
 */
export async function writeFixture(dir: string, options: WriteFixtureOptions = {}): Promise<WrittenFixture> {
  const preset = options.preset ?? 'tiny';
  const seed = options.seed ?? defaultFixtureSeed;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`The seed must be an integer in 0..2^32-1 (got ${seed}).`);
  const absolute = resolve(dir);
  await mkdir(absolute, { recursive: true });
  await rm(join(absolute, stampFileName), { force: true });
  let config: ModelConfig;
  let files: Record<string, number> = {};
  if (preset === 'tiny' || preset === 'smolvlm2-tiny') {
    const generated = tinyFixtureFiles(seed, preset === 'smolvlm2-tiny');
    for (const [name, bytes] of generated) {
      await writeFile(join(absolute, name), bytes);
      files[name] = bytes.byteLength;
    }
    config = parseModelConfig(new TextDecoder().decode(generated.get('config.json')));
  } else if (preset === 'smolvlm-256m-shape') {
    ({ config, files } = await writeSmolVlmShape(absolute, seed, resolve(options.referenceDir ?? defaultReferenceModelDir())));
  } else {
    throw new Error(`Unknown fixture preset "${String(preset)}" (expected ${fixturePresets.join(' or ')}).`);
  }
  // The stamp goes last: a folder without it (or with an old one) is regenerated by ensureTinyFixture.
  const stamp: FixtureStamp = { version: fixtureGeneratorVersion, preset, seed, files };
  await writeFile(join(absolute, stampFileName), toJsonBytes(stamp));
  return { dir: absolute, preset, seed, config, files };
}

/** True when `dir` holds a complete fixture written by this generator version for (preset, seed). */
export async function isFixtureCurrent(dir: string, preset: FixturePreset, seed: number): Promise<boolean> {
  let stamp: FixtureStamp;
  try {
    stamp = JSON.parse(await readFile(join(dir, stampFileName), 'utf8')) as FixtureStamp;
  } catch {
    return false;
  }
  if (stamp.version !== fixtureGeneratorVersion || stamp.preset !== preset || stamp.seed !== seed) return false;
  if (typeof stamp.files !== 'object' || stamp.files === null || Object.keys(stamp.files).length === 0) return false;
  for (const [name, size] of Object.entries(stamp.files)) {
    if ((await fileSize(join(dir, name))) !== size) return false;
  }
  return true;
}

/**
 * Makes sure the tiny fixture exists in `dir` (default <repo>/.fixtures/tiny) and is current; writes it when missing
 * or stale. Generation happens in a sibling temporary folder that is renamed into place, so a concurrent reader
 * never sees half-written files. Returns the folder.
 */
export async function ensureTinyFixture(dir: string = defaultTinyFixtureDir, seed: number = defaultFixtureSeed): Promise<string> {
  const absolute = resolve(dir);
  if (await isFixtureCurrent(absolute, 'tiny', seed)) return absolute;
  const temporary = `${absolute}.tmp-${process.pid}-${Date.now()}`;
  try {
    await writeFixture(temporary, { preset: 'tiny', seed });
    await rm(absolute, { recursive: true, force: true });
    await rename(temporary, absolute);
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    // Another process may have produced the same fixture in the meantime (rename onto a non-empty folder fails).
    if (await isFixtureCurrent(absolute, 'tiny', seed)) return absolute;
    throw error;
  }
  return absolute;
}
