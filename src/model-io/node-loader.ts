/**
 * Node-only parts of model loading: a filesystem cache and "path, URL or hub id" resolution for the CLI.
 * Kept apart from loader.ts so the browser bundle never imports node:fs.
 */
import { openAsBlob } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type ModelCache, type ModelCacheEntry, toExactArrayBuffer } from './cache';
import {
  type LoadedModel,
  type LoadedModelFiles,
  type LoadFilesOptions,
  type LoadOptions,
  type ModelSource,
  ModelLoadError,
  loadModel,
  loadModelFiles,
  optionalModelFiles,
  requiredModelFiles,
} from './loader';

/** ~/.cache/sparsemm-web, or $SPARSEMM_CACHE_DIR. */
export function defaultCacheDir(): string {
  return process.env.SPARSEMM_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'sparsemm-web');
}

/** One file per key; each key segment is URI-encoded so "hub/Org/Name@main/config.json" stays inside the directory. */
export class FileSystemModelCache implements ModelCache {
  readonly dir: string;

  constructor(dir: string = defaultCacheDir()) {
    this.dir = resolve(dir);
  }

  private pathOf(key: string): string {
    const segments = key.split('/').map((segment) => encodeURIComponent(segment).replace(/^\.+/, (dots) => '%2E'.repeat(dots.length)));
    return join(this.dir, ...segments);
  }

  async get(key: string): Promise<ArrayBuffer | null> {
    try {
      return toExactArrayBuffer(await readFile(this.pathOf(key)));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  async put(key: string, data: ArrayBuffer | Uint8Array): Promise<void> {
    const path = this.pathOf(key);
    await mkdir(dirname(path), { recursive: true });
    // Write then rename, so a crash mid-write never leaves a short file under the real name.
    const temporary = `${path}.partial-${process.pid}-${Date.now()}`;
    try {
      await writeFile(temporary, data instanceof ArrayBuffer ? new Uint8Array(data) : data);
      await rename(temporary, path);
    } catch (error) {
      // A full disk or a failed rename must not leave a partial file behind (it would hold space forever).
      await rm(temporary, { force: true }).catch(() => undefined);
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  async list(): Promise<ModelCacheEntry[]> {
    const entries: ModelCacheEntry[] = [];
    const walk = async (dir: string, prefix: string[]): Promise<void> => {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw error;
      }
      for (const name of names) {
        if (name.includes('.partial-')) continue;
        const path = join(dir, name);
        const info = await stat(path);
        const segments = [...prefix, decodeURIComponent(name)];
        if (info.isDirectory()) await walk(path, segments);
        else entries.push({ key: segments.join('/'), bytes: info.size });
      }
    };
    await walk(this.dir, []);
    return entries;
  }
}

/** The model files of a local directory as a 'files' source (blobs read lazily from disk). */
export async function modelDirectorySource(dir: string): Promise<ModelSource> {
  const absolute = resolve(dir);
  let names: string[];
  try {
    names = await readdir(absolute);
  } catch (error) {
    throw new ModelLoadError(`Cannot read the model folder ${absolute}: ${(error as Error).message}`);
  }
  const wanted = new Set<string>([...requiredModelFiles, ...optionalModelFiles]);
  const files = new Map<string, Blob>();
  for (const name of names) {
    if (wanted.has(name)) files.set(name, await openAsBlob(join(absolute, name)));
  }
  return { kind: 'files', files };
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** A local directory -> files source; http(s) URL -> url source; "Org/Name[@revision]" -> hub source. */
export async function resolveModelSource(pathOrUrl: string): Promise<ModelSource> {
  if (/^https?:\/\//i.test(pathOrUrl)) return { kind: 'url', baseUrl: pathOrUrl };
  if (await isDirectory(pathOrUrl)) return modelDirectorySource(pathOrUrl);
  const hub = /^([A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*)(?:@([\w./-]+))?$/.exec(pathOrUrl);
  if (hub && !/^[./~]/.test(pathOrUrl)) {
    return { kind: 'hub', modelId: hub[1], revision: hub[2] };
  }
  throw new ModelLoadError(
    `"${pathOrUrl}" is neither an existing model folder, an http(s) URL, nor a Hugging Face model id like "HuggingFaceTB/SmolVLM-256M-Instruct".`,
  );
}

export type NodeLoadOptions = Partial<LoadOptions>;

/** CLI convenience: loadModel with a filesystem cache by default. */
export async function loadModelFromPathOrUrl(pathOrUrl: string, options: NodeLoadOptions = {}): Promise<LoadedModel> {
  return loadModel(await resolveModelSource(pathOrUrl), { ...options, cache: options.cache ?? new FileSystemModelCache() });
}

/** Like loadModelFromPathOrUrl, but can skip the weights (tokenizer/processor only). */
export async function loadModelFilesFromPathOrUrl(
  pathOrUrl: string,
  options: Partial<LoadFilesOptions> = {},
): Promise<LoadedModelFiles> {
  return loadModelFiles(await resolveModelSource(pathOrUrl), { ...options, cache: options.cache ?? new FileSystemModelCache() });
}
