/**
 * A host that never answers (offline, a proxy, a blocked host, the page's CSP): the message says which it may be and
 * points to Base URL and Local folder, instead of fetch's bare "Failed to fetch". The app's side (the error with its
 * buttons, in Chromium with the hub unreachable and with a host the CSP forbids) is tests/e2e/rough-edges.test.ts.
 */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { MemoryModelCache } from '../../src/model-io/cache';
import { HostUnreachableError } from '../../src/model-io/download';
import { loadModel } from '../../src/model-io/loader';
import { unreachableMessage, watchPolicyViolations } from '../../src/model-io/unreachable';

const hubConfig = 'https://huggingface.co/HuggingFaceTB/SmolVLM-256M-Instruct/resolve/main/config.json';

/** A port nothing listens on: bound once, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('unreachableMessage', () => {
  it('names the hub, the likely causes and the other sources', () => {
    const message = unreachableMessage('config.json', hubConfig, new TypeError('Failed to fetch'), false);
    expect(message).toBe(
      'Could not reach the Hugging Face hub (huggingface.co) to download config.json (Failed to fetch): this computer may be offline, ' +
        'or a proxy or firewall blocks huggingface.co. Load the model from a Base URL this browser can reach, or from a Local folder ' +
        'that holds its files.',
    );
  });

  it('names another host by its host and port', () => {
    const message = unreachableMessage('config.json', 'http://127.0.0.1:9/m/config.json', new TypeError('fetch failed'), false);
    expect(message).toMatch(/^Could not reach 127\.0\.0\.1:9 to download config\.json \(fetch failed\): this computer may be offline/);
    expect(message).toContain('Base URL');
    expect(message).toContain('Local folder');
  });

  it('a host the CSP refused: says the page may not contact it', () => {
    const message = unreachableMessage('config.json', 'https://example.org/m/config.json', new TypeError('Failed to fetch'), true);
    expect(message).toMatch(/^This page may not contact example\.org, so config\.json could not be downloaded/);
    expect(message).toContain('Content-Security-Policy');
    expect(message).toContain('Local folder');
    expect(message).not.toContain('offline');
  });
});

describe('a load from a host that does not answer', () => {
  it('a closed local port gives a HostUnreachableError with the message, and nothing is cached', async () => {
    const port = await closedPort();
    const cache = new MemoryModelCache();
    const failure = await loadModel({ kind: 'url', baseUrl: `http://127.0.0.1:${port}/tiny` }, { cache }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(HostUnreachableError);
    const error = failure as HostUnreachableError;
    expect(error.name).toBe('HostUnreachableError');
    expect(error.blockedByPolicy).toBe(false);
    expect(error.message).toMatch(new RegExp(`^Could not reach 127\\.0\\.0\\.1:${port} to download config\\.json \\(fetch failed`));
    expect(await cache.list()).toEqual([]);
  });

  it('a request the page CSP refused (its violation event recorded) is worded as not allowed', async () => {
    const scope = new EventTarget();
    watchPolicyViolations(scope);
    const fetchRefused: typeof fetch = () => {
      // Chromium fires the violation on the worker just after the fetch rejects.
      setTimeout(() => scope.dispatchEvent(Object.assign(new Event('securitypolicyviolation'), { blockedURI: 'https://blocked.example/m/config.json' })));
      return Promise.reject(new TypeError('Failed to fetch'));
    };
    const failure = await loadModel({ kind: 'url', baseUrl: 'https://blocked.example/m' }, { cache: new MemoryModelCache(), fetch: fetchRefused }).catch(
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(HostUnreachableError);
    expect((failure as HostUnreachableError).blockedByPolicy).toBe(true);
    expect((failure as Error).message).toMatch(/^This page may not contact blocked\.example/);
  });
});
