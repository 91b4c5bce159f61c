import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryModelCache, type ModelCache, type ModelCacheEntry } from '../../src/model-io/cache';
import { tinyFixtureFiles, writeFixture } from '../../src/model-io/fixture';
import {
  type LoadProgress,
  loadModel,
  loadModelFiles,
  ModelLoadError,
  type ModelSource,
  optionalModelFiles,
  readModelConfig,
  requiredModelFiles,
} from '../../src/model-io/loader';
import { FileSystemModelCache, modelDirectorySource } from '../../src/model-io/node-loader';

const baseUrl = 'https://models.example/tiny';
const fixture = tinyFixtureFiles();
const source: ModelSource = { kind: 'url', baseUrl };

interface FakeServerOptions {
  /** Files answered with 404. */
  missing?: string[];
  /** Files whose body is cut after this many bytes while Content-Length announces the whole file. */
  truncate?: Record<string, number>;
  /** Replacement bodies. */
  override?: Record<string, Uint8Array>;
  /** Files whose body stream errors (a dropped connection) after this many bytes, on the first `failingRequests` requests. */
  errorAfter?: Record<string, number>;
  /** How many requests of an `errorAfter` file fail before the server behaves (default: all of them). */
  failingRequests?: number;
  /** Files answered with this HTTP status (and a short text body). */
  status?: Record<string, number>;
  /** No Content-Length header at all (a chunked response). */
  noContentLength?: boolean;
  /** Replacement Content-Length header values. */
  contentLength?: Record<string, string>;
}

const statusTexts: Record<number, string> = { 404: 'Not Found', 500: 'Internal Server Error', 503: 'Service Unavailable' };

/** A fetch over the fixture's files that counts every call and streams bodies in small chunks. */
function fakeFetch(options: FakeServerOptions = {}): { fetch: typeof fetch; calls: string[] } {
  const calls: string[] = [];
  const fetchImpl = async (input: RequestInfo | URL): Promise<Response> => {
    const url = String(input);
    calls.push(url);
    const name = url.startsWith(`${baseUrl}/`) ? url.slice(baseUrl.length + 1) : '';
    const body = options.override?.[name] ?? fixture.get(name);
    if (!body || options.missing?.includes(name)) return new Response('Not Found', { status: 404, statusText: 'Not Found' });
    const status = options.status?.[name];
    if (status !== undefined) return new Response('server trouble', { status, statusText: statusTexts[status] ?? '' });
    const sent = options.truncate?.[name] ?? body.byteLength;
    const requestsSoFar = calls.filter((call) => call === url).length;
    const errorAfter = requestsSoFar <= (options.failingRequests ?? Infinity) ? options.errorAfter?.[name] : undefined;
    const chunkBytes = 4096;
    let offset = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (errorAfter !== undefined && offset >= errorAfter) {
          controller.error(new TypeError('network error: connection reset'));
          return;
        }
        if (offset >= sent) {
          controller.close();
          return;
        }
        const end = Math.min(sent, offset + chunkBytes);
        controller.enqueue(body.slice(offset, end));
        offset = end;
      },
    });
    const headers: Record<string, string> = options.noContentLength
      ? {}
      : { 'content-length': options.contentLength?.[name] ?? String(body.byteLength) };
    return new Response(stream, { status: 200, headers });
  };
  return { fetch: fetchImpl as typeof fetch, calls };
}

function expectedFiles(): string[] {
  return [...requiredModelFiles, ...optionalModelFiles].filter((name) => fixture.has(name));
}

function bytesOf(data: ArrayBuffer | undefined): number[] {
  return Array.from(new Uint8Array(data ?? new ArrayBuffer(0)));
}

describe('loadModel from a URL (fake fetch)', () => {
  it('downloads every file with progress that reaches each file\'s total, then validates config and weights', async () => {
    const { fetch, calls } = fakeFetch();
    const events: LoadProgress[] = [];
    const model = await loadModel(source, { cache: new MemoryModelCache(), fetch, onProgress: (p) => events.push({ ...p }) });
    expect(model.fromCache).toBe(false);
    expect(model.sourceId).toBe(`url/${baseUrl}`);
    expect(calls.length).toBe(requiredModelFiles.length + optionalModelFiles.length);
    expect([...model.files.keys()].sort()).toEqual(expectedFiles().sort());
    for (const [name, bytes] of fixture) {
      if (!model.files.has(name)) continue;
      expect(model.files.get(name)?.byteLength, name).toBe(bytes.byteLength);
      const fileEvents = events.filter((e) => e.file === name);
      const last = fileEvents[fileEvents.length - 1];
      expect(last, name).toMatchObject({ loadedBytes: bytes.byteLength, totalBytes: bytes.byteLength, done: true, fromCache: false });
      // Progress never goes backwards and never exceeds the total.
      for (let i = 1; i < fileEvents.length; i++) expect(fileEvents[i].loadedBytes).toBeGreaterThanOrEqual(fileEvents[i - 1].loadedBytes);
      expect(fileEvents.every((e) => e.totalBytes === bytes.byteLength && e.loadedBytes <= bytes.byteLength)).toBe(true);
    }
    // The weights (~350 KB) arrive in several chunks, each reported.
    expect(events.filter((e) => e.file === 'model.safetensors' && !e.done).length).toBeGreaterThan(10);
    const total = [...model.files.values()].reduce((sum, data) => sum + data.byteLength, 0);
    expect(model.totalBytes).toBe(total);
    expect(model.config.text.numLayers).toBe(2);
    expect(model.weights.has('lm_head.weight')).toBe(true);
  });

  it('the second load comes from the cache with ZERO fetch calls', async () => {
    const cache = new MemoryModelCache();
    const first = fakeFetch();
    const firstModel = await loadModel(source, { cache, fetch: first.fetch });
    const second = fakeFetch();
    const events: LoadProgress[] = [];
    const model = await loadModel(source, { cache, fetch: second.fetch, onProgress: (p) => events.push(p) });
    expect(second.calls).toEqual([]);
    expect(model.fromCache).toBe(true);
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.fromCache && e.done)).toBe(true);
    expect(bytesOf(model.files.get('model.safetensors'))).toEqual(bytesOf(firstModel.files.get('model.safetensors')));
    expect(model.weights.toF32('model.text_model.norm.weight')).toEqual(firstModel.weights.toF32('model.text_model.norm.weight'));
  });

  it('remembers that an optional file is absent (404) and does not ask again', async () => {
    const cache = new MemoryModelCache();
    const first = fakeFetch({ missing: ['chat_template.json'] });
    const model = await loadModelFiles(source, { cache, fetch: first.fetch });
    expect(model.files.has('chat_template.json')).toBe(false);
    const second = fakeFetch();
    const again = await loadModelFiles(source, { cache, fetch: second.fetch });
    expect(second.calls).toEqual([]);
    expect(again.files.has('chat_template.json')).toBe(false);
  });

  it('a 404 on a required file is a clear error naming the file and URL', async () => {
    const { fetch } = fakeFetch({ missing: ['tokenizer.json'] });
    const load = loadModel(source, { cache: new MemoryModelCache(), fetch });
    await expect(load).rejects.toThrow(ModelLoadError);
    await expect(load).rejects.toThrow(
      `Could not download tokenizer.json from ${baseUrl}/tokenizer.json: HTTP 404 Not Found (no such file: check the model id / URL and revision).`,
    );
    await expect(load).rejects.toMatchObject({ file: 'tokenizer.json', url: `${baseUrl}/tokenizer.json` });
  });

  it('a truncated download (Content-Length larger than the body) is an error and nothing is cached', async () => {
    const cache = new MemoryModelCache();
    const size = fixture.get('model.safetensors')?.byteLength ?? 0;
    const { fetch } = fakeFetch({ truncate: { 'model.safetensors': 10_000 } });
    const load = loadModel(source, { cache, fetch });
    await expect(load).rejects.toThrow(
      `The download of model.safetensors from ${baseUrl}/model.safetensors was cut off after 10000 of ${size} bytes. Nothing was cached; try again.`,
    );
    expect(await cache.list()).toEqual([]);
    // A later good download works and is cached.
    const good = fakeFetch();
    const model = await loadModel(source, { cache, fetch: good.fetch });
    expect(model.fromCache).toBe(false);
    expect(good.calls.some((url) => url.endsWith('/model.safetensors'))).toBe(true);
    expect((await cache.list()).some((entry) => entry.key.endsWith('/model.safetensors'))).toBe(true);
  });

  it('a corrupt weights file (valid length, broken header) is an error and is not cached', async () => {
    const cache = new MemoryModelCache();
    const weights = fixture.get('model.safetensors')?.slice() ?? new Uint8Array(0);
    new DataView(weights.buffer).setBigUint64(0, BigInt(weights.byteLength * 2), true);
    const { fetch } = fakeFetch({ override: { 'model.safetensors': weights } });
    await expect(loadModel(source, { cache, fetch })).rejects.toThrow(/model\.safetensors: header length \d+ does not fit/);
    expect(await cache.list()).toEqual([]);
  });

  it('rejects a wrong architecture from config.json before downloading the weights', async () => {
    const config = JSON.parse(new TextDecoder().decode(fixture.get('config.json'))) as Record<string, unknown>;
    config.model_type = 'qwen2_vl';
    const { fetch, calls } = fakeFetch({ override: { 'config.json': new TextEncoder().encode(JSON.stringify(config)) } });
    await expect(loadModel(source, { cache: new MemoryModelCache(), fetch })).rejects.toThrow(/model_type "qwen2_vl"/);
    expect(calls).toEqual([`${baseUrl}/config.json`]);
  });
});

describe('readModelConfig: config.json alone, to size a model before its weights are downloaded', () => {
  it('without download: null until the cache has the model, then from the cache with no request', async () => {
    const cache = new MemoryModelCache();
    const { fetch, calls } = fakeFetch();
    expect(await readModelConfig(source, { cache, fetch, download: false })).toBeNull();
    expect(calls).toEqual([]);
    await loadModel(source, { cache, fetch });
    calls.length = 0;
    const read = await readModelConfig(source, { cache, fetch, download: false });
    expect(read?.config.text.numLayers).toBeGreaterThan(0);
    expect(read?.sourceId).toBe('url/https://models.example/tiny');
    expect(calls).toEqual([]);
  });

  it('with download: fetches config.json only, caches nothing; a wrong architecture is refused', async () => {
    const cache = new MemoryModelCache();
    const { fetch, calls } = fakeFetch();
    expect((await readModelConfig(source, { cache, fetch, download: true }))?.config.imageSeqLen).toBe(16);
    expect(calls).toEqual([`${baseUrl}/config.json`]);
    expect(await cache.list()).toEqual([]);
    const config = JSON.parse(new TextDecoder().decode(fixture.get('config.json'))) as Record<string, unknown>;
    config.model_type = 'qwen2_vl';
    const wrong = fakeFetch({ override: { 'config.json': new TextEncoder().encode(JSON.stringify(config)) } });
    await expect(readModelConfig(source, { cache, fetch: wrong.fetch, download: true })).rejects.toThrow(/model_type "qwen2_vl"/);
    await expect(readModelConfig(source, { cache, fetch: fakeFetch({ missing: ['config.json'] }).fetch, download: true })).rejects.toThrow(/config\.json/);
  });

  it('picked files: reads config.json of the folder, nothing else', async () => {
    const files = new Map([['my-model/config.json', new Blob([fixture.get('config.json')!.slice()])]]);
    expect((await readModelConfig({ kind: 'files', files }, { cache: new MemoryModelCache(), download: false }))?.config.imageSeqLen).toBe(16);
  });
});

describe('loadModel from picked files', () => {
  function blobs(skip: string[] = []): Map<string, Blob> {
    const files = new Map<string, Blob>();
    for (const [name, bytes] of fixture) if (!skip.includes(name)) files.set(`my-model/${name}`, new Blob([bytes.slice()]));
    return files;
  }

  it('loads a complete folder (names may carry a folder prefix) with progress to the total', async () => {
    const events: LoadProgress[] = [];
    const model = await loadModel({ kind: 'files', files: blobs() }, { cache: new MemoryModelCache(), onProgress: (p) => events.push(p) });
    expect(model.config.imageSeqLen).toBe(16);
    const weightsSize = fixture.get('model.safetensors')?.byteLength;
    expect(events.filter((e) => e.file === 'model.safetensors').pop()).toMatchObject({ loadedBytes: weightsSize, totalBytes: weightsSize, done: true });
  });

  it('a folder without config.json is a clear error', async () => {
    const load = loadModel({ kind: 'files', files: blobs(['config.json']) }, { cache: new MemoryModelCache() });
    await expect(load).rejects.toThrow(ModelLoadError);
    await expect(load).rejects.toThrow(/The selected folder is missing config\.json \(found: chat_template\.json, generation_config\.json, model\.safetensors/);
    await expect(load).rejects.toMatchObject({ file: 'config.json' });
  });
});

describe('loadModel over real HTTP (node:http on 127.0.0.1, global fetch)', () => {
  let server: Server;
  let root: string;
  let url: string;
  const gets: string[] = [];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'sparsemm-loader-'));
    await writeFixture(join(root, 'model'));
    server = createServer((request, response) => {
      const path = decodeURIComponent(new URL(request.url ?? '/', 'http://127.0.0.1').pathname);
      gets.push(path);
      const file = normalize(join(root, path));
      stat(file).then(
        (info) => {
          if (!file.startsWith(`${root}/`) || !info.isFile()) throw new Error('not a file');
          response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(info.size) });
          createReadStream(file).pipe(response);
        },
        () => {
          response.writeHead(404, { 'content-type': 'text/plain' });
          response.end('not found');
        },
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/model/`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await rm(root, { recursive: true, force: true });
  });

  it('downloads into a MemoryModelCache, then loads again with no request', async () => {
    gets.length = 0;
    const cache = new MemoryModelCache();
    const model = await loadModel({ kind: 'url', baseUrl: url }, { cache });
    expect(model.fromCache).toBe(false);
    expect(gets).toContain('/model/model.safetensors');
    expect(bytesOf(model.files.get('model.safetensors'))).toEqual(Array.from(fixture.get('model.safetensors') ?? []));
    gets.length = 0;
    const again = await loadModel({ kind: 'url', baseUrl: url }, { cache });
    expect(again.fromCache).toBe(true);
    expect(gets).toEqual([]);
  });

  it('downloads into the Node filesystem cache; a new cache object on the same folder needs no request', async () => {
    const cacheDir = join(root, 'cache');
    gets.length = 0;
    const model = await loadModel({ kind: 'url', baseUrl: url }, { cache: new FileSystemModelCache(cacheDir) });
    expect(model.fromCache).toBe(false);
    expect(gets.length).toBe(requiredModelFiles.length + optionalModelFiles.length);
    const cached = await new FileSystemModelCache(cacheDir).list();
    expect(cached.find((entry) => entry.key.endsWith('/model.safetensors'))?.bytes).toBe(fixture.get('model.safetensors')?.byteLength);

    gets.length = 0;
    const again = await loadModel({ kind: 'url', baseUrl: url }, { cache: new FileSystemModelCache(cacheDir) });
    expect(gets).toEqual([]);
    expect(again.fromCache).toBe(true);
    expect(again.weights.tensors.size).toBe(model.weights.tensors.size);
  });

  it('a URL without a model gives an error naming config.json', async () => {
    const load = loadModel({ kind: 'url', baseUrl: url.replace('/model/', '/nothing-here/') }, { cache: new MemoryModelCache() });
    await expect(load).rejects.toThrow(/Could not download config\.json from http:\/\/127\.0\.0\.1:\d+\/nothing-here\/config\.json: HTTP 404/);
  });

  it('the same folder also loads from disk as a files source', async () => {
    const model = await loadModel(await modelDirectorySource(join(root, 'model')), { cache: new MemoryModelCache() });
    expect(bytesOf(model.files.get('tokenizer.json'))).toEqual(Array.from(fixture.get('tokenizer.json') ?? []));
  });
});

/** A memory cache that refuses to store a file, as Cache Storage does when the origin's quota is used up. */
class QuotaLimitedCache implements ModelCache {
  readonly inner = new MemoryModelCache();
  constructor(private readonly refuse: (key: string) => boolean) {}
  get(key: string): Promise<ArrayBuffer | null> {
    return this.inner.get(key);
  }
  async put(key: string, data: ArrayBuffer | Uint8Array): Promise<void> {
    if (this.refuse(key)) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    await this.inner.put(key, data);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
  list(): Promise<ModelCacheEntry[]> {
    return this.inner.list();
  }
}

describe('reliability: broken downloads, bad files and a full cache (issue 8)', () => {
  const weights = fixture.get('model.safetensors') ?? new Uint8Array(0);
  const weightsUrl = `${baseUrl}/model.safetensors`;

  it('a truncated model.safetensors in a picked folder is refused as truncated', async () => {
    const files = new Map<string, Blob>();
    for (const [name, bytes] of fixture) files.set(name, new Blob([name === 'model.safetensors' ? bytes.slice(0, bytes.byteLength - 1000) : bytes.slice()]));
    const load = loadModel({ kind: 'files', files }, { cache: new MemoryModelCache() });
    await expect(load).rejects.toThrow(ModelLoadError);
    await expect(load).rejects.toThrow(/the selected folder: model\.safetensors: tensor ".+" ends at byte \d+, past the end of the file .*truncated/);
    await expect(load).rejects.toMatchObject({ file: 'model.safetensors' });
  });

  it('a truncated model.safetensors in a folder on disk is refused as truncated', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sparsemm-truncated-'));
    try {
      await writeFixture(dir);
      await writeFile(join(dir, 'model.safetensors'), weights.slice(0, weights.byteLength >> 1));
      const load = loadModel(await modelDirectorySource(dir), { cache: new MemoryModelCache() });
      await expect(load).rejects.toThrow(/model\.safetensors: tensor ".+" ends at byte \d+, past the end of the file \(\d+ bytes\): the file is truncated/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a server that serves a truncated model.safetensors (honest Content-Length) is refused and nothing is cached', async () => {
    const cache = new MemoryModelCache();
    const { fetch } = fakeFetch({ override: { 'model.safetensors': weights.slice(0, weights.byteLength - 4096) } });
    const load = loadModel(source, { cache, fetch });
    await expect(load).rejects.toThrow(/model\.safetensors: tensor ".+" ends at byte \d+, past the end of the file .*truncated/);
    expect(await cache.list()).toEqual([]);
  });

  it('HTTP 500 from the model URL names the file, the status and the URL, and nothing is cached', async () => {
    const cache = new MemoryModelCache();
    const { fetch } = fakeFetch({ status: { 'model.safetensors': 500 } });
    const load = loadModel(source, { cache, fetch });
    await expect(load).rejects.toThrow(
      `Could not download model.safetensors from ${weightsUrl}: HTTP 500 Internal Server Error (the server failed or is busy; nothing was cached, try again later).`,
    );
    await expect(load).rejects.toMatchObject({ file: 'model.safetensors', url: weightsUrl });
    expect(await cache.list()).toEqual([]);
    const configFailure = loadModel(source, { cache, fetch: fakeFetch({ status: { 'config.json': 503 } }).fetch });
    await expect(configFailure).rejects.toThrow(`Could not download config.json from ${baseUrl}/config.json: HTTP 503 Service Unavailable`);
  });

  it('a connection dropped half-way caches nothing, and the retry restarts cleanly and succeeds', async () => {
    const cache = new MemoryModelCache();
    // The same server drops the weights' connection after 20 chunks on the first request only.
    const server = fakeFetch({ errorAfter: { 'model.safetensors': 20 * 4096 }, failingRequests: 1 });
    const first = loadModel(source, { cache, fetch: server.fetch });
    await expect(first).rejects.toThrow(ModelLoadError);
    await expect(first).rejects.toThrow(
      `The download of model.safetensors from ${weightsUrl} was cut off after ${20 * 4096} of ${weights.byteLength} bytes: ` +
        'network error: connection reset. Nothing was cached; try again.',
    );
    // Neither the partial weights nor the files that did arrive are in the cache.
    expect(await cache.list()).toEqual([]);

    const events: LoadProgress[] = [];
    const model = await loadModel(source, { cache, fetch: server.fetch, onProgress: (p) => events.push({ ...p }) });
    expect(server.calls.filter((url) => url === weightsUrl).length).toBe(2);
    // The retry starts from byte 0, not from where the first attempt stopped.
    expect(events.find((e) => e.file === 'model.safetensors')?.loadedBytes).toBe(0);
    expect(bytesOf(model.files.get('model.safetensors'))).toEqual(Array.from(weights));
    expect((await cache.list()).find((entry) => entry.key.endsWith('/model.safetensors'))?.bytes).toBe(weights.byteLength);
    // And the cache now serves it without a request.
    const offline = fakeFetch();
    expect((await loadModel(source, { cache, fetch: offline.fetch })).fromCache).toBe(true);
    expect(offline.calls).toEqual([]);
  });

  it('a server without Content-Length: progress has no total until the end, the model loads and is cached', async () => {
    const cache = new MemoryModelCache();
    const { fetch } = fakeFetch({ noContentLength: true });
    const events: LoadProgress[] = [];
    const model = await loadModel(source, { cache, fetch, onProgress: (p) => events.push({ ...p }) });
    const weightEvents = events.filter((e) => e.file === 'model.safetensors');
    expect(weightEvents.filter((e) => !e.done).every((e) => e.totalBytes === null)).toBe(true);
    expect(weightEvents.filter((e) => !e.done).length).toBeGreaterThan(10);
    expect(weightEvents.at(-1)).toMatchObject({ done: true, loadedBytes: weights.byteLength, totalBytes: weights.byteLength });
    expect(bytesOf(model.files.get('model.safetensors'))).toEqual(Array.from(weights));
    expect(model.cacheWarning).toBeUndefined();
    expect((await cache.list()).some((entry) => entry.key.endsWith('/model.safetensors'))).toBe(true);
  });

  it('a body cut short without Content-Length still fails on the weights check, and nothing is cached', async () => {
    const cache = new MemoryModelCache();
    const { fetch } = fakeFetch({ noContentLength: true, truncate: { 'model.safetensors': 40_000 } });
    await expect(loadModel(source, { cache, fetch })).rejects.toThrow(/model\.safetensors: .*truncated/);
    expect(await cache.list()).toEqual([]);
  });

  it('a Content-Length no browser can hold is a clear error, not a RangeError', async () => {
    const { fetch } = fakeFetch({ contentLength: { 'model.safetensors': String(2 ** 52) } });
    const load = loadModel(source, { cache: new MemoryModelCache(), fetch });
    await expect(load).rejects.toThrow(ModelLoadError);
    await expect(load).rejects.toThrow(`model.safetensors is ${2 ** 52} bytes, more than this browser can hold in memory`);
  });

  it('a storage quota error while caching still loads the model, with a warning, and leaves no partial set behind', async () => {
    const cache = new QuotaLimitedCache((key) => key.endsWith('/model.safetensors'));
    const { fetch } = fakeFetch();
    const model = await loadModel(source, { cache, fetch });
    expect(model.weights.has('lm_head.weight')).toBe(true);
    expect(model.config.text.numLayers).toBe(2);
    expect(model.cacheWarning).toBe(
      'The model loaded but could not be cached (it will be downloaded again next time): The quota has been exceeded.',
    );
    // config.json etc. were written before the weights failed: they are taken back.
    expect(await cache.list()).toEqual([]);
    // The next load downloads again (and works).
    const again = fakeFetch();
    const second = await loadModel(source, { cache, fetch: again.fetch });
    expect(second.fromCache).toBe(false);
    expect(again.calls).toContain(weightsUrl);
  });

  it('the filesystem cache leaves no partial file when a write fails', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sparsemm-fscache-'));
    try {
      const cache = new FileSystemModelCache(dir);
      // A directory where the file should go makes the final rename fail after the data was written.
      await mkdir(join(dir, 'src', 'model.safetensors', 'in-the-way'), { recursive: true });
      await expect(cache.put('src/model.safetensors', new Uint8Array(1000))).rejects.toThrow();
      expect((await readdir(join(dir, 'src'))).filter((name) => name.includes('.partial-'))).toEqual([]);
      expect(await cache.get('src/config.json')).toBeNull();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
