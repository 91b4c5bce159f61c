/**
 * `// #include NAME.wgsl` in shaders/*.wgsl (src/engine/shader-source.ts resolveIncludes): what the loaders of Node and
 * the browser compile, and the one place the shared bf16 unpacking lives.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveIncludes } from '../../src/engine/shader-source';
import { browserShaderSource } from '../../src/engine/shaders-browser';
import { nodeShaderSource } from '../../src/engine/shaders-node';
import { compiledShader, shaderDir, shaderNames, stripComments } from '../helpers/wgsl';

const files = (texts: Record<string, string>) => (name: string): string => {
  const text = texts[name];
  if (text === undefined) throw new Error(`no file ${name}`);
  return text;
};

describe('resolveIncludes', () => {
  it('replaces each include line by the file, nested, each file once', () => {
    const read = files({
      main: 'a\n// #include helpers.wgsl\n  //   #include common.wgsl  \nmain body',
      helpers: '// #include common.wgsl\nfn helper() {}',
      common: 'fn common() {}',
    });
    expect(resolveIncludes('main', read)).toBe('a\nfn common() {}\nfn helper() {}\n// (common.wgsl is included above)\nmain body');
  });

  it('leaves other comments alone and refuses a cycle, naming the chain', () => {
    expect(resolveIncludes('x', files({ x: '// include bf16.wgsl\n// #include is how' }))).toBe('// include bf16.wgsl\n// #include is how');
    const cyclic = files({ a: '// #include b.wgsl', b: '// #include a.wgsl' });
    expect(() => resolveIncludes('a', cyclic)).toThrow('shaders/b.wgsl: include cycle a -> b -> a');
    expect(() => resolveIncludes('self', files({ self: '// #include self.wgsl' }))).toThrow('include cycle');
  });
});

describe('the shaders', () => {
  it('both loaders give the resolved text: no include line is left, and bf16 unpacking is defined once per kernel', () => {
    const readers: string[] = [];
    for (const name of shaderNames()) {
      const text = nodeShaderSource(name);
      expect(text).toBe(compiledShader(name));
      // The browser's loader (Vite inlines the files) gives the same text.
      expect(browserShaderSource(name), name).toBe(text);
      expect(text, name).not.toMatch(/^\s*\/\/\s*#(include|params)/m);
      const definitions = stripComments(text).match(/\bfn\s+unpack_bf16x2\b/g) ?? [];
      expect(definitions.length, name).toBeLessThanOrEqual(1);
      if (definitions.length === 1) readers.push(name);
    }
    // The kernels that read packed bf16 weights take the helper from bf16.wgsl instead of a copy each.
    expect(readers).toEqual(expect.arrayContaining(['bf16', 'embedding', 'gemv', 'matmul', 'norm']));
    const copies = shaderNames().filter((name) => name !== 'bf16' && /\bfn\s+unpack_bf16x\d\b/.test(stripComments(readFileSync(join(shaderDir, `${name}.wgsl`), 'utf8'))));
    expect(copies).toEqual([]);
  });
});
