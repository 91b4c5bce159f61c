/**
 * One loader for a model from the Hugging Face hub, from any base URL, or from files the user picked.
 * Streams every file with byte progress, checks HTTP status and Content-Length, validates config.json and
 * model.safetensors, and only then writes the files to the cache, so a cut or broken download is never
 * cached. A second load of the same source is served from the cache without any network request.
 * Browser-safe: no Node imports here (the filesystem cache and path handling live in node-loader.ts).
 */
import { type ModelCache } from './cache';
import { type ModelConfig, parseModelConfig } from './config';
import { SafetensorsFile } from './safetensors';
import { errorMessage } from '../errors';
import { downloadFile, ModelLoadError, readStream, throwIfAborted, type FileReport, type LoadProgress } from './download';
import { describeModelSource, isHubModelId, modelFileUrl, modelSourceId, type ModelSource } from './model-source';

// The parts, by what they do: sources (model-source.ts), streamed reads (download.ts); this file validates, caches
// and puts them together.
export { describeModelSource, modelFileUrl, modelSourceId, ModelLoadError };
export type { LoadProgress, ModelSource };

export interface LoadOptions {
  cache: ModelCache;
  onProgress?: (progress: LoadProgress) => void;
  signal?: AbortSignal;
  /** Injected for tests; defaults to the global fetch. */
  fetch?: typeof fetch;
}

export interface LoadFilesOptions extends LoadOptions {
  /** false: skip model.safetensors (enough for the tokenizer and the image processor). Default true. */
  includeWeights?: boolean;
}

/** Everything but the parsed weights; what the tokenizer and image processor need. */
export interface LoadedModelFiles {
  /** Stable name of the source; also the cache key prefix ("hub/<id>@<rev>", "url/<base>", "files/<hash>"). */
  sourceId: string;
  config: ModelConfig;
  /** File name -> contents, for every file that exists (optional ones may be absent). */
  files: Map<string, ArrayBuffer>;
  totalBytes: number;
  /** True when every file came from the cache (no network request was made). */
  fromCache: boolean;
  /** Set when the files loaded fine but could not be written to the cache (e.g. storage quota). */
  cacheWarning?: string;
}

export interface LoadedModel extends LoadedModelFiles {
  weights: SafetensorsFile;
}

export const weightsFileName = 'model.safetensors';
export const requiredModelFiles = [
  'config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'preprocessor_config.json',
  'processor_config.json',
  weightsFileName,
] as const;
export const optionalModelFiles = ['chat_template.json', 'special_tokens_map.json', 'generation_config.json'] as const;

const manifestFileName = '.manifest.json';
const manifestVersion = 1;

/** What the cache holds for one source: bytes per file, or null for an optional file the server does not have. */
interface CacheManifest {
  version: number;
  files: Record<string, number | null>;
}

async function readManifest(cache: ModelCache, sourceId: string): Promise<CacheManifest | null> {
  const raw = await cache.get(`${sourceId}/${manifestFileName}`);
  if (!raw) return null;
  try {
    const manifest = JSON.parse(new TextDecoder().decode(raw)) as CacheManifest;
    return manifest.version === manifestVersion && typeof manifest.files === 'object' && manifest.files !== null ? manifest : null;
  } catch {
    return null; // a corrupt manifest only means "download again"
  }
}

function filesToLoad(includeWeights: boolean): { file: string; optional: boolean }[] {
  const required = requiredModelFiles.filter((file) => includeWeights || file !== weightsFileName);
  return [...required.map((file) => ({ file, optional: false })), ...optionalModelFiles.map((file) => ({ file, optional: true }))];
}

/** Parses config.json, checks that every JSON file parses, and (when present) that the weights parse. */
function validateFiles(files: Map<string, ArrayBuffer>, sourceLabel: string): { config: ModelConfig; weights: SafetensorsFile | null } {
  const configBytes = files.get('config.json');
  if (!configBytes) throw new ModelLoadError(`${sourceLabel} has no config.json.`, 'config.json');
  let config: ModelConfig;
  try {
    config = parseModelConfig(new TextDecoder().decode(configBytes));
  } catch (error) {
    throw new ModelLoadError(`${sourceLabel}: ${errorMessage(error)}`, 'config.json');
  }
  for (const [file, data] of files) {
    if (!file.endsWith('.json') || file === 'config.json') continue;
    try {
      JSON.parse(new TextDecoder().decode(data));
    } catch (error) {
      throw new ModelLoadError(`${sourceLabel}: ${file} is not valid JSON (${errorMessage(error)}).`, file);
    }
  }
  const weightsBytes = files.get(weightsFileName);
  let weights: SafetensorsFile | null = null;
  if (weightsBytes) {
    try {
      weights = SafetensorsFile.parse(weightsBytes, weightsFileName);
    } catch (error) {
      throw new ModelLoadError(`${sourceLabel}: ${errorMessage(error)}`, weightsFileName);
    }
  }
  return { config, weights };
}

function totalSize(files: Map<string, ArrayBuffer>): number {
  let total = 0;
  for (const data of files.values()) total += data.byteLength;
  return total;
}

/** Local files picked by the user: keyed by file name (a leading folder path, as webkitRelativePath gives, is dropped). */
async function loadLocalFiles(
  source: { kind: 'files'; files: Map<string, Blob> },
  includeWeights: boolean,
  options: LoadOptions,
): Promise<Map<string, ArrayBuffer>> {
  const byName = new Map<string, Blob>();
  for (const [path, blob] of source.files) byName.set(path.split(/[\\/]/).pop() ?? path, blob);
  const missing = requiredModelFiles.filter((file) => (includeWeights || file !== weightsFileName) && !byName.has(file));
  if (missing.length > 0) {
    const found = [...byName.keys()].sort().join(', ') || 'nothing';
    throw new ModelLoadError(
      `The selected folder is missing ${missing.join(', ')} (found: ${found}). ` +
        'Pick the folder that holds the model\'s config.json, model.safetensors and tokenizer/processor files.',
      missing[0],
    );
  }
  const files = new Map<string, ArrayBuffer>();
  for (const { file } of filesToLoad(includeWeights)) {
    const blob = byName.get(file);
    if (!blob) continue;
    throwIfAborted(options.signal);
    const where: FileReport = { file, fromCache: false, report: options.onProgress };
    options.onProgress?.({ file, loadedBytes: 0, totalBytes: blob.size, fromCache: false, done: false });
    const data = await readStream(blob.stream(), blob.size, where, options.signal, (loaded, error) =>
      new ModelLoadError(`Could not read ${file} from the selected folder (${loaded} of ${blob.size} bytes): ${errorMessage(error)}`, file),
    );
    options.onProgress?.({ file, loadedBytes: data.byteLength, totalBytes: data.byteLength, fromCache: false, done: true });
    files.set(file, data);
  }
  return files;
}

/**
 * Loads the model's files (optionally without the weights). Remote sources are served from the cache when it
 * has them all; otherwise the missing files are downloaded, validated and then cached.
 */
export async function loadModelFiles(source: ModelSource, options: LoadFilesOptions): Promise<LoadedModelFiles> {
  const includeWeights = options.includeWeights ?? true;
  const sourceId = modelSourceId(source);
  const sourceLabel = describeModelSource(source);

  if (source.kind === 'files') {
    const files = await loadLocalFiles(source, includeWeights, options);
    const { config } = validateFiles(files, sourceLabel);
    return { sourceId, config, files, totalBytes: totalSize(files), fromCache: false };
  }
  if (source.kind === 'hub' && !isHubModelId(source.modelId)) {
    throw new ModelLoadError(`"${source.modelId}" is not a Hugging Face model id (expected "organization/name").`);
  }
  // Relative URLs are fine in the browser (resolved against the page); other schemes (file:, ftp:) are not.
  if (source.kind === 'url' && /^[a-z][a-z0-9+.-]*:/i.test(source.baseUrl) && !/^https?:/i.test(source.baseUrl)) {
    throw new ModelLoadError(`Unsupported URL scheme in "${source.baseUrl}": use http(s), or pick the folder as local files.`);
  }

  const fetchImpl: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const { cache, signal, onProgress } = options;
  const manifest = await readManifest(cache, sourceId);
  const files = new Map<string, ArrayBuffer>();
  const downloaded = new Map<string, ArrayBuffer>();
  const knownAbsent = new Set<string>();

  for (const { file, optional } of filesToLoad(includeWeights)) {
    throwIfAborted(signal);
    const cachedBytes = manifest?.files[file];
    if (cachedBytes === null && optional) {
      knownAbsent.add(file); // the server said 404 last time: no request
      continue;
    }
    if (typeof cachedBytes === 'number') {
      const data = await cache.get(`${sourceId}/${file}`);
      if (data && data.byteLength === cachedBytes) {
        onProgress?.({ file, loadedBytes: data.byteLength, totalBytes: data.byteLength, fromCache: true, done: true });
        files.set(file, data);
        continue;
      }
    }
    const data = await downloadFile(modelFileUrl(source, file), file, optional, fetchImpl, signal, onProgress);
    if (data === null) {
      knownAbsent.add(file);
      continue;
    }
    if (file === 'config.json') {
      // Fail on a wrong architecture before downloading hundreds of megabytes.
      validateFiles(new Map([[file, data]]), sourceLabel);
    }
    files.set(file, data);
    downloaded.set(file, data);
  }

  const { config } = validateFiles(files, sourceLabel);
  const newlyAbsent = [...knownAbsent].filter((file) => manifest?.files[file] !== null);
  let cacheWarning: string | undefined;
  if (downloaded.size > 0 || newlyAbsent.length > 0) {
    const written: string[] = [];
    try {
      for (const [file, data] of downloaded) {
        written.push(`${sourceId}/${file}`);
        await cache.put(`${sourceId}/${file}`, data);
      }
      // The manifest is written last: a cache interrupted half-way has no entry claiming files it lacks.
      const entries: Record<string, number | null> = { ...(manifest?.files ?? {}) };
      for (const [file, data] of files) entries[file] = data.byteLength;
      for (const file of knownAbsent) entries[file] = null;
      const manifestBytes = new TextEncoder().encode(JSON.stringify({ version: manifestVersion, files: entries } satisfies CacheManifest));
      await cache.put(`${sourceId}/${manifestFileName}`, manifestBytes);
    } catch (error) {
      // Typically the storage quota. Take back what this attempt wrote: a half-written set would only hold space
      // (no manifest entry points at it, so it would never be read).
      for (const key of written) await cache.delete(key).catch(() => undefined);
      cacheWarning = `The model loaded but could not be cached (it will be downloaded again next time): ${errorMessage(error)}`;
    }
  }
  return { sourceId, config, files, totalBytes: totalSize(files), fromCache: downloaded.size === 0 && newlyAbsent.length === 0, cacheWarning };
}

/** Loads config, weights and tokenizer/processor files of a model. */
export async function loadModel(source: ModelSource, options: LoadOptions): Promise<LoadedModel> {
  const loaded = await loadModelFiles(source, { ...options, includeWeights: true });
  const weightsBytes = loaded.files.get(weightsFileName);
  if (!weightsBytes) throw new ModelLoadError(`${describeModelSource(source)} has no ${weightsFileName}.`, weightsFileName);
  // Already validated in loadModelFiles; parsing only reads the header, the tensor data is not copied.
  const weights = SafetensorsFile.parse(weightsBytes, weightsFileName);
  return { ...loaded, weights };
}

/**
 * A model's config.json alone, to size it before its weights are downloaded: from the picked files, from the cache,
 * or, with `download`, fetched (not cached: the load caches it with the rest). null when only a download would have it.
 */
export async function readModelConfig(
  source: ModelSource,
  options: Omit<LoadOptions, 'onProgress'> & { download: boolean },
): Promise<{ sourceId: string; config: ModelConfig } | null> {
  const sourceId = modelSourceId(source);
  const sourceLabel = describeModelSource(source);
  const parse = (data: ArrayBuffer): { sourceId: string; config: ModelConfig } => ({ sourceId, config: validateFiles(new Map([['config.json', data]]), sourceLabel).config });
  if (source.kind === 'files') {
    const blob = [...source.files].find(([path]) => (path.split(/[\\/]/).pop() ?? path) === 'config.json')?.[1];
    if (!blob) throw new ModelLoadError(`The selected folder has no config.json.`, 'config.json');
    return parse(await blob.arrayBuffer());
  }
  const manifest = await readManifest(options.cache, sourceId);
  const cachedBytes = manifest?.files['config.json'];
  if (typeof cachedBytes === 'number') {
    const data = await options.cache.get(`${sourceId}/config.json`);
    if (data && data.byteLength === cachedBytes) return parse(data);
  }
  if (!options.download) return null;
  if (source.kind === 'hub' && !isHubModelId(source.modelId)) {
    throw new ModelLoadError(`"${source.modelId}" is not a Hugging Face model id (expected "organization/name").`);
  }
  const fetchImpl: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const data = await downloadFile(modelFileUrl(source, 'config.json'), 'config.json', false, fetchImpl, options.signal, undefined);
  if (!data) throw new ModelLoadError(`${sourceLabel} has no config.json.`, 'config.json');
  return parse(data);
}

/** Removes every cached file of a source (e.g. a "forget this model" button). */
export async function deleteCachedModel(cache: ModelCache, source: ModelSource): Promise<number> {
  const prefix = `${modelSourceId(source)}/`;
  let removed = 0;
  for (const entry of await cache.list()) {
    if (!entry.key.startsWith(prefix)) continue;
    await cache.delete(entry.key);
    removed += entry.bytes;
  }
  return removed;
}
