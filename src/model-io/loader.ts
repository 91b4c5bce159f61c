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

export type ModelSource =
  | { kind: 'hub'; modelId: string; revision?: string }
  | { kind: 'url'; baseUrl: string }
  | { kind: 'files'; files: Map<string, Blob> };

export interface LoadProgress {
  file: string;
  loadedBytes: number;
  /** null when the server did not say (no Content-Length, or a compressed transfer). */
  totalBytes: number | null;
  fromCache: boolean;
  done: boolean;
}

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

export class ModelLoadError extends Error {
  constructor(
    message: string,
    readonly file?: string,
    readonly url?: string,
  ) {
    super(message);
    this.name = 'ModelLoadError';
  }
}

const hubBaseUrl = 'https://huggingface.co';
const manifestFileName = '.manifest.json';
const manifestVersion = 1;

/** What the cache holds for one source: bytes per file, or null for an optional file the server does not have. */
interface CacheManifest {
  version: number;
  files: Record<string, number | null>;
}

function isHubModelId(modelId: string): boolean {
  return /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/.test(modelId);
}

function trimSlashes(url: string): string {
  return url.replace(/\/+$/, '');
}

/** The URL a file of a remote source is fetched from. */
export function modelFileUrl(source: Exclude<ModelSource, { kind: 'files' }>, file: string): string {
  if (source.kind === 'hub') {
    const revision = encodeURIComponent(source.revision ?? 'main');
    return `${hubBaseUrl}/${source.modelId}/resolve/${revision}/${file}`;
  }
  return `${trimSlashes(source.baseUrl)}/${file}`;
}

/** FNV-1a over the names and sizes of picked files: the same folder gets the same id. */
function fingerprintFiles(files: Map<string, Blob>): string {
  let hash = 0x811c9dc5;
  const text = [...files].map(([name, blob]) => `${name}:${blob.size}`).sort().join('|');
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

export function modelSourceId(source: ModelSource): string {
  switch (source.kind) {
    case 'hub':
      return `hub/${source.modelId}@${source.revision ?? 'main'}`;
    case 'url':
      return `url/${trimSlashes(source.baseUrl)}`;
    case 'files':
      return `files/${fingerprintFiles(source.files)}`;
  }
}

/** A human-readable name for error messages. */
export function describeModelSource(source: ModelSource): string {
  switch (source.kind) {
    case 'hub':
      return `hub model ${source.modelId}${source.revision ? `@${source.revision}` : ''}`;
    case 'url':
      return trimSlashes(source.baseUrl);
    case 'files':
      return 'the selected folder';
  }
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The model download was aborted.', 'AbortError');
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    // undici wraps the socket error ("other side closed") in `cause`; it says more than "terminated".
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
  }
  return String(error);
}

/** Joins chunks into one buffer of exactly `length` bytes. */
function concatChunks(chunks: Uint8Array[], length: number): ArrayBuffer {
  const out = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out.buffer;
}

interface FileReport {
  file: string;
  fromCache: boolean;
  report?: (progress: LoadProgress) => void;
}

/**
 * Reads a byte stream while reporting progress. With a known expected length the destination is allocated once
 * (a 500 MB weights file is never held twice); more bytes than announced is an error.
 */
async function readStream(
  stream: ReadableStream<Uint8Array>,
  expectedBytes: number | null,
  where: FileReport,
  signal: AbortSignal | undefined,
  describeFailure: (loaded: number, error: unknown) => ModelLoadError,
): Promise<ArrayBuffer> {
  let preallocated: Uint8Array<ArrayBuffer> | null = null;
  if (expectedBytes !== null) {
    try {
      preallocated = new Uint8Array(expectedBytes);
    } catch (error) {
      // A length no ArrayBuffer can hold (a lying header, or a model far too large for this browser's memory).
      await stream.cancel().catch(() => undefined);
      throw new ModelLoadError(
        `${where.file} is ${expectedBytes} bytes, more than this browser can hold in memory (${errorMessage(error)}).`,
        where.file,
      );
    }
  }
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  try {
    for (;;) {
      throwIfAborted(signal);
      const { done, value } = await reader.read();
      if (done) break;
      if (preallocated) {
        if (loaded + value.byteLength > preallocated.byteLength) {
          throw new ModelLoadError(
            `${where.file}: received more bytes than the announced Content-Length (${preallocated.byteLength}).`,
            where.file,
          );
        }
        preallocated.set(value, loaded);
      } else {
        chunks.push(value);
      }
      loaded += value.byteLength;
      where.report?.({ file: where.file, loadedBytes: loaded, totalBytes: expectedBytes, fromCache: where.fromCache, done: false });
    }
  } catch (error) {
    await reader.cancel().catch(() => undefined);
    if (signal?.aborted) throw abortError(signal);
    if (error instanceof ModelLoadError) throw error;
    throw describeFailure(loaded, error);
  }
  if (preallocated) {
    if (loaded !== preallocated.byteLength) throw describeFailure(loaded, null);
    return preallocated.buffer;
  }
  return concatChunks(chunks, loaded);
}

/** Downloads one file; resolves null for a missing optional file (HTTP 404). */
async function downloadFile(
  url: string,
  file: string,
  optional: boolean,
  fetchImpl: typeof fetch,
  signal: AbortSignal | undefined,
  onProgress: ((p: LoadProgress) => void) | undefined,
): Promise<ArrayBuffer | null> {
  throwIfAborted(signal);
  let response: Response;
  try {
    response = await fetchImpl(url, { signal, cache: 'no-store' });
  } catch (error) {
    if (signal?.aborted) throw abortError(signal);
    throw new ModelLoadError(`Could not download ${file} from ${url}: ${errorMessage(error)}`, file, url);
  }
  if (optional && response.status === 404) {
    await response.body?.cancel().catch(() => undefined);
    return null;
  }
  if (!response.ok) {
    await response.body?.cancel().catch(() => undefined);
    const hint =
      response.status === 401 || response.status === 403
        ? ' (the model may be private or gated)'
        : response.status === 404
          ? ' (no such file: check the model id / URL and revision)'
          : response.status === 429 || response.status >= 500
            ? ' (the server failed or is busy; nothing was cached, try again later)'
            : '';
    const statusText = response.statusText ? ` ${response.statusText}` : '';
    throw new ModelLoadError(`Could not download ${file} from ${url}: HTTP ${response.status}${statusText}${hint}.`, file, url);
  }

  const lengthHeader = response.headers.get('content-length');
  const encoding = response.headers.get('content-encoding');
  // With a content encoding (gzip), Content-Length counts compressed bytes and cannot be checked against the body.
  const expectedBytes =
    lengthHeader !== null && /^\d+$/.test(lengthHeader.trim()) && (!encoding || encoding === 'identity') ? Number(lengthHeader) : null;
  const where: FileReport = { file, fromCache: false, report: onProgress };
  onProgress?.({ file, loadedBytes: 0, totalBytes: expectedBytes, fromCache: false, done: false });

  const describeFailure = (loaded: number, error: unknown): ModelLoadError =>
    new ModelLoadError(
      `The download of ${file} from ${url} was cut off after ${loaded}` +
        (expectedBytes !== null ? ` of ${expectedBytes} bytes` : ' bytes') +
        (error ? `: ${errorMessage(error).replace(/\.?$/, '.')}` : '.') +
        ' Nothing was cached; try again.',
      file,
      url,
    );
  const data = response.body
    ? await readStream(response.body, expectedBytes, where, signal, describeFailure)
    : await response.arrayBuffer();
  if (expectedBytes !== null && data.byteLength !== expectedBytes) throw describeFailure(data.byteLength, null);
  onProgress?.({ file, loadedBytes: data.byteLength, totalBytes: data.byteLength, fromCache: false, done: true });
  return data;
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
