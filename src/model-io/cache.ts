/**
 * Where downloaded model files are kept between sessions. The loader only talks to this interface, so the
 * browser (Cache Storage), Node (filesystem, see cache-node.ts) and tests (memory) share one code path.
 * Keys look like "<sourceId>/<file name>"; values are whole files.
 */
export interface ModelCacheEntry {
  key: string;
  bytes: number;
}

export interface ModelCache {
  get(key: string): Promise<ArrayBuffer | null>;
  put(key: string, data: ArrayBuffer | Uint8Array): Promise<void>;
  delete(key: string): Promise<void>;
  list(): Promise<ModelCacheEntry[]>;
}

/** Copies the bytes into a fresh ArrayBuffer of exactly their length (views may share a larger buffer). */
export function toExactArrayBuffer(data: ArrayBuffer | Uint8Array): ArrayBuffer {
  if (data instanceof ArrayBuffer) return data;
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer) {
    return data.buffer;
  }
  return data.slice().buffer as ArrayBuffer;
}

/** In-memory cache for tests and for sessions that must not persist anything. */
export class MemoryModelCache implements ModelCache {
  private readonly entries = new Map<string, ArrayBuffer>();

  async get(key: string): Promise<ArrayBuffer | null> {
    return this.entries.get(key) ?? null;
  }

  async put(key: string, data: ArrayBuffer | Uint8Array): Promise<void> {
    // Store a private copy: the caller may keep using (or transfer) its buffer.
    this.entries.set(key, toExactArrayBuffer(data).slice(0));
  }

  async delete(key: string): Promise<void> {
    this.entries.delete(key);
  }

  async list(): Promise<ModelCacheEntry[]> {
    return [...this.entries].map(([key, data]) => ({ key, bytes: data.byteLength }));
  }
}

export const cacheStorageName = 'sparsemm-models';
/**
 * Cache Storage only accepts http(s) requests as keys, so every key is mapped onto a URL of a reserved
 * (.invalid, RFC 2606) host that is never fetched.
 */
const cacheKeyOrigin = 'https://sparsemm-model-cache.invalid/';
const bytesHeader = 'x-sparsemm-bytes';

/** Browser cache (window or worker) backed by `caches.open('sparsemm-models')`. */
export class CacheStorageModelCache implements ModelCache {
  private cachePromise: Promise<Cache> | null = null;

  constructor(private readonly cacheName: string = cacheStorageName) {}

  static isAvailable(): boolean {
    return typeof caches !== 'undefined' && typeof caches.open === 'function';
  }

  private open(): Promise<Cache> {
    if (!CacheStorageModelCache.isAvailable()) {
      throw new Error('Cache Storage is not available here (it needs a secure context: https or localhost).');
    }
    this.cachePromise ??= caches.open(this.cacheName);
    return this.cachePromise;
  }

  private static requestUrl(key: string): string {
    return cacheKeyOrigin + encodeURIComponent(key);
  }

  async get(key: string): Promise<ArrayBuffer | null> {
    const response = await (await this.open()).match(CacheStorageModelCache.requestUrl(key));
    return response ? response.arrayBuffer() : null;
  }

  async put(key: string, data: ArrayBuffer | Uint8Array): Promise<void> {
    const body = toExactArrayBuffer(data);
    const response = new Response(body, {
      headers: { 'content-type': 'application/octet-stream', [bytesHeader]: String(body.byteLength) },
    });
    await (await this.open()).put(CacheStorageModelCache.requestUrl(key), response);
  }

  async delete(key: string): Promise<void> {
    await (await this.open()).delete(CacheStorageModelCache.requestUrl(key));
  }

  async list(): Promise<ModelCacheEntry[]> {
    const cache = await this.open();
    const entries: ModelCacheEntry[] = [];
    for (const request of await cache.keys()) {
      if (!request.url.startsWith(cacheKeyOrigin)) continue;
      const key = decodeURIComponent(request.url.slice(cacheKeyOrigin.length));
      // The size is kept in a header so listing does not read every (possibly 500 MB) body.
      const response = await cache.match(request);
      const bytes = Number(response?.headers.get(bytesHeader) ?? NaN);
      entries.push({ key, bytes: Number.isFinite(bytes) ? bytes : (await response?.arrayBuffer())?.byteLength ?? 0 });
    }
    return entries;
  }
}
