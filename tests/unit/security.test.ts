/**
 * Security rules that hold for the whole code base (issue 8): no code built from strings, no HTML built from strings,
 * a Content-Security-Policy on every response of the app server that allows only our origin, the Hugging Face hosts
 * for model files and WebAssembly compilation, and score files that reach the engine only through the validator.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentSecurityPolicy, startServer, type RunningServer } from '../../scripts/serve.mjs';

const projectRoot = join(import.meta.dirname, '../..');

function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...sourceFiles(path));
    else if (/\.(ts|tsx|js|mjs|cjs)$/.test(name)) files.push(path);
  }
  return files;
}

/** Comments may mention the words; code may not use them. */
function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

/** Constructs that run a string as code, or parse a string as HTML into the page. */
const forbidden: [string, RegExp][] = [
  ['eval(', /(^|[^\w.$])eval\s*\(/],
  ['new Function', /\bnew\s+Function\s*\(/],
  ['Function(...) called as a constructor', /(?<![\w.$]|new\s)Function\s*\(\s*['"`]/],
  ['setTimeout/setInterval with a string', /\bset(Timeout|Interval)\s*\(\s*['"`]/],
  ['innerHTML / outerHTML', /\.(inner|outer)HTML\b/],
  ['insertAdjacentHTML', /\binsertAdjacentHTML\b/],
  ['dangerouslySetInnerHTML', /\bdangerouslySetInnerHTML\b/],
  ['document.write', /\bdocument\.write(ln)?\s*\(/],
];

function violations(text: string): string[] {
  const code = withoutComments(text);
  return forbidden.filter(([, pattern]) => pattern.test(code)).map(([name]) => name);
}

describe('no code or HTML from strings', () => {
  it('the detector catches each construct and ignores comments and look-alikes', () => {
    expect(violations('const x = eval("1 + 1");')).toEqual(['eval(']);
    expect(violations('const f = new Function("a", "return a");')).toEqual(['new Function']);
    expect(violations("const g = Function('return this')();")).toEqual(['Function(...) called as a constructor']);
    expect(violations("setTimeout('alert(1)', 10);")).toEqual(['setTimeout/setInterval with a string']);
    expect(violations('node.innerHTML = text;')).toEqual(['innerHTML / outerHTML']);
    expect(violations('<div dangerouslySetInnerHTML={{ __html: x }} />')).toEqual(['dangerouslySetInnerHTML']);
    expect(violations('// eval("x") in a comment\n/* new Function() */ const ok = 1;')).toEqual([]);
    expect(violations('const evaluate = retrieval(x); model.eval(); isFunction(y); setTimeout(run, 0);')).toEqual([]);
  });

  it('no file under src/ or scripts/ uses eval, new Function or HTML strings', () => {
    const files = [...sourceFiles(join(projectRoot, 'src')), ...sourceFiles(join(projectRoot, 'scripts'))];
    expect(files.length).toBeGreaterThan(50);
    const found = files
      .map((file) => ({ file: relative(projectRoot, file), names: violations(readFileSync(file, 'utf8')) }))
      .filter((entry) => entry.names.length > 0);
    expect(found).toEqual([]);
  });
});

/** "default-src 'self'; connect-src ..." -> { 'default-src': ["'self'"], ... } */
function parsePolicy(policy: string): Map<string, string[]> {
  const directives = new Map<string, string[]>();
  for (const part of policy.split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (name) directives.set(name.toLowerCase(), sources);
  }
  return directives;
}

const hubHosts = ['https://huggingface.co', 'https://*.huggingface.co', 'https://*.hf.co'];

describe('Content-Security-Policy of the app server (scripts/serve.mjs)', () => {
  let root: string;
  let server: RunningServer;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'sparsemm-csp-'));
    writeFileSync(join(root, 'index.html'), '<!doctype html><title>t</title>');
    writeFileSync(join(root, 'app.js'), 'console.log(1);');
    server = await startServer({ root, port: 0 });
  });

  afterAll(async () => {
    await server?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('is sent on pages, scripts, errors and refused requests alike', async () => {
    const responses = await Promise.all([
      fetch(server.url),
      fetch(new URL('app.js', server.url)),
      fetch(new URL('no-such-file', server.url)),
      fetch(server.url, { method: 'POST' }),
    ]);
    expect(responses.map((r) => r.status)).toEqual([200, 200, 404, 405]);
    for (const response of responses) {
      expect(response.headers.get('content-security-policy')).toBe(contentSecurityPolicy);
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      await response.body?.cancel();
    }
  });

  it('allows only self, the Hugging Face hosts for model files and wasm-unsafe-eval', () => {
    const policy = parsePolicy(contentSecurityPolicy);
    expect(policy.get('default-src')).toEqual(["'self'"]);
    expect(policy.get('script-src')).toEqual(["'self'", "'wasm-unsafe-eval'"]);
    expect(policy.get('connect-src')).toEqual(["'self'", ...hubHosts]);
    for (const [directive, sources] of policy) {
      for (const source of sources) {
        // No 'unsafe-eval', no wildcard source, no whole scheme (http:, https:), no other site.
        expect(source, directive).not.toBe("'unsafe-eval'");
        expect(source, directive).not.toBe('*');
        expect(source, directive).not.toMatch(/^(https?|wss?|ws):?$/);
        const allowed = ["'self'", "'none'", "'wasm-unsafe-eval'", 'blob:', 'data:', ...hubHosts];
        if (directive === 'style-src') allowed.push("'unsafe-inline'"); // React sets style attributes
        expect(allowed, `${directive} ${source}`).toContain(source);
      }
    }
    expect(policy.get('object-src')).toEqual(["'none'"]);
    expect(policy.get('frame-ancestors')).toEqual(["'none'"]);
    // Scripts may never come from blob:, data: or inline code.
    expect(policy.get('script-src')).not.toContain("'unsafe-inline'");
  });
});
