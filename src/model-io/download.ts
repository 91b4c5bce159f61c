/**
 * Streamed reads with byte progress: a fetch with HTTP status and Content-Length checks, or a picked file's stream,
 * into one buffer allocated up front when the length is known. Browser-safe.
 */
import { errorMessage } from '../errors';
import { blockedByPolicy, unreachableMessage } from './unreachable';

export interface LoadProgress {
  file: string;
  loadedBytes: number;
  /** null when the server did not say (no Content-Length, or a compressed transfer). */
  totalBytes: number | null;
  fromCache: boolean;
  done: boolean;
}

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

/**
 * A request that got no answer (offline, a proxy, a blocked host, or the page's CSP: `blockedByPolicy`). The UI offers
 * the other sources for it; its name survives the worker boundary (comlink copies name and message).
 */
export class HostUnreachableError extends ModelLoadError {
  constructor(
    message: string,
    file: string,
    url: string,
    readonly blockedByPolicy: boolean,
  ) {
    super(message, file, url);
    this.name = 'HostUnreachableError';
  }
}

export function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The model download was aborted.', 'AbortError');
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
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

export interface FileReport {
  file: string;
  fromCache: boolean;
  report?: (progress: LoadProgress) => void;
}

/**
 * Reads a byte stream while reporting progress. With a known expected length the destination is allocated once
 * (a 500 MB weights file is never held twice); more bytes than announced is an error.
 */
export async function readStream(
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
export async function downloadFile(
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
    // No answer at all: offline, a proxy or firewall, or a host the page may not contact.
    const blocked = await blockedByPolicy(url);
    throw new HostUnreachableError(unreachableMessage(file, url, error, blocked), file, url, blocked);
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
