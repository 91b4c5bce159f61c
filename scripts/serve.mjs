// A small static file server for the built app (dist/), with the app's Content-Security-Policy.
// `node scripts/serve.mjs [root]` serves on 127.0.0.1:$PORT (default 5173); tests import startServer().
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const contentSecurityPolicy = [
  "default-src 'self'",
  "connect-src 'self' https://huggingface.co https://*.huggingface.co https://*.hf.co",
  // wasm-unsafe-eval: transformers.js compiles WebAssembly (tokenizer / image processing helpers).
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self' blob:",
  "img-src 'self' blob: data:",
  "style-src 'self' 'unsafe-inline'",
  // Not covered by default-src: no plugins, no <base> hijacking, no framing of the app.
  "object-src 'none'",
  "base-uri 'self'",
  "frame-ancestors 'none'",
].join('; ');

const mimeTypes = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.wgsl': 'text/wgsl; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.ico': 'image/x-icon',
  '.safetensors': 'application/octet-stream',
  '.bin': 'application/octet-stream',
};

/**
 * Serves `root` (and each `mounts[prefix]` folder under its URL prefix) on 127.0.0.1.
 * `port` 0 picks a free port. `onRequest` sees every request (tests count downloads with it).
 * @param {{ root: string, port?: number, host?: string, mounts?: Record<string, string>,
 *           onRequest?: (info: { method: string, path: string, status: number }) => void }} options
 * @returns {Promise<{ url: string, port: number, close: () => Promise<void> }>}
 */
export async function startServer({ root, port = 0, host = '127.0.0.1', mounts = {}, onRequest }) {
  // Longest prefix first so "/a/b/" wins over "/a/".
  const folders = [
    ...Object.entries(mounts).map(([prefix, dir]) => ({ prefix: prefix.endsWith('/') ? prefix : `${prefix}/`, dir: resolve(dir) })),
    { prefix: '/', dir: resolve(root) },
  ].sort((a, b) => b.prefix.length - a.prefix.length);

  const server = createServer((request, response) => {
    handle(request, response, folders).then(
      (status) => onRequest?.({ method: request.method ?? 'GET', path: decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname), status }),
      (error) => {
        if (!response.headersSent) response.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        response.end(`Internal error: ${error.message}`);
      },
    );
  });
  await new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolveListen(undefined));
  });
  const address = server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  return {
    url: `http://${host}:${actualPort}/`,
    port: actualPort,
    close: () =>
      new Promise((resolveClose) => {
        server.closeAllConnections();
        server.close(() => resolveClose());
      }),
  };
}

/** Answers one request; returns the status code sent. */
async function handle(request, response, folders) {
  const headers = {
    'Content-Security-Policy': contentSecurityPolicy,
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': 'no-cache',
  };
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { ...headers, Allow: 'GET, HEAD' });
    response.end();
    return 405;
  }
  let pathname;
  try {
    pathname = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname);
  } catch {
    response.writeHead(400, headers);
    response.end('Bad request');
    return 400;
  }
  const folder = folders.find((f) => pathname.startsWith(f.prefix));
  const relative = normalize(pathname.slice(folder.prefix.length)).replace(/^([/\\])+/, '');
  let filePath = join(folder.dir, relative);
  // Refuse anything that resolves outside the served folder (../ tricks).
  if (filePath !== folder.dir && !filePath.startsWith(folder.dir + sep)) {
    response.writeHead(403, headers);
    response.end('Forbidden');
    return 403;
  }
  let info = await stat(filePath).catch(() => null);
  if (info?.isDirectory()) {
    filePath = join(filePath, 'index.html');
    info = await stat(filePath).catch(() => null);
  }
  if (!info?.isFile()) {
    response.writeHead(404, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
    response.end(`Not found: ${pathname}`);
    return 404;
  }
  const type = mimeTypes[extname(filePath).toLowerCase()] ?? 'application/octet-stream';
  response.writeHead(200, { ...headers, 'Content-Type': type, 'Content-Length': info.size });
  if (request.method === 'HEAD') {
    response.end();
    return 200;
  }
  await new Promise((resolveStream, reject) => {
    const stream = createReadStream(filePath);
    stream.on('error', reject);
    response.on('close', () => {
      stream.destroy();
      resolveStream(undefined);
    });
    stream.pipe(response);
  });
  return 200;
}

// Run directly: serve dist/ (or the folder given) until interrupted.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = process.argv[2] ?? fileURLToPath(new URL('../dist/', import.meta.url));
  const port = Number(process.env.PORT ?? 5173);
  const server = await startServer({ root, port });
  process.stdout.write(`SparseMM Web is served at ${server.url}\n(Ctrl+C stops it)\n`);
  const stop = () => server.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
