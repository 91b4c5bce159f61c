import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryModelCache } from '../../src/model-io/cache';
import { tinyFixtureFiles, writeFixture } from '../../src/model-io/fixture';
import {
  type LoadProgress,
  loadModel,
  loadModelFiles,
  ModelLoadError,
  type ModelSource,
  optionalModelFiles,
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
}

/** A fetch over the fixture's files that counts every call and streams bodies in small chunks. */
function fakeFetch(options: FakeServerOptions = {}): { fetch: typeof fetch; calls: string[] } {
  const calls: string[] = [];
  const fetchImpl = async (input: RequestInfo | URL): Promise<Response> => {
    const url = String(input);
    calls.push(url);
    const name = url.startsWith(`${baseUrl}/`) ? url.slice(baseUrl.length + 1) : '';
    const body = options.override?.[name] ?? fixture.get(name);
    if (!body || options.missing?.includes(name)) return new Response('Not Found', { status: 404, statusText: 'Not Found' });
    const sent = options.truncate?.[name] ?? body.byteLength;
    const chunkBytes = 4096;
    let offset = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (offset >= sent) {
          controller.close();
          return;
        }
        const end = Math.min(sent, offset + chunkBytes);
        controller.enqueue(body.slice(offset, end));
        offset = end;
      },
    });
    return new Response(stream, { status: 200, headers: { 'content-length': String(body.byteLength) } });
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
