/**
 * TypeScript and WGSL agree on what a kernel reads from its uniform block: every `var<uniform>` struct of
 * shaders/*.wgsl is written from one ParamLayout (src/engine/params.ts) where its `// #params` line stands, with the
 * layout's field names, order and types; the constants TypeScript repeats from a shader (CHUNK, MAX_GROUP) have the
 * shader's value; and every shader that reads the KV-cache metadata reads it through META_* constants equal to
 * kvMetaLayout.
 */
import { describe, expect, it } from 'vitest';
import { kvMetaLayout } from '../../src/engine/kv-cache';
import { decodeChunkKeys, maxDecodeGroup } from '../../src/engine/ops/decode-attention';
import { kernelParamLayouts } from '../../src/engine/kernel-params';
import { kernelParams, paramLayout, paramStructWgsl, paramWordOffset } from '../../src/engine/params';
import { paramsLineStructs, paramStructFromLayouts, resolveIncludes } from '../../src/engine/shader-source';
import { compiledShader, constantText, parseStructs, readShader, shaderNames, stripComments, uniformStructNames } from '../helpers/wgsl';

const layouts = kernelParamLayouts;

const key = (shader: string, struct: string) => `${shader}.wgsl ${struct}`;

describe('uniform structs come from the TypeScript parameter layouts', () => {
  it('every uniform struct a shader binds is a // #params line with exactly one layout, and every layout is placed', () => {
    const uniforms: string[] = [];
    for (const shader of shaderNames()) {
      const own = readShader(shader);
      const placed = paramsLineStructs(own);
      for (const struct of uniformStructNames(own)) {
        expect(placed, `${shader}.wgsl binds a ${struct} uniform: declare it with a // #params ${struct} line`).toContain(struct);
        // Written by hand as well, the struct would be declared twice (a compile error) or drift from its layout.
        expect(parseStructs(own).has(struct), `${shader}.wgsl declares struct ${struct} by hand`).toBe(false);
      }
      uniforms.push(...placed.map((struct) => key(shader, struct)));
    }
    const declared = layouts.map((layout) => key(layout.shader, layout.struct));
    expect([...declared].sort()).toEqual([...uniforms].sort());
    expect(new Set(declared).size).toBe(declared.length);
    expect(uniforms.length).toBeGreaterThan(15);
  });

  it('the compiled shader holds each layout as a WGSL struct with its field names, order and types', () => {
    for (const layout of layouts) {
      const text = compiledShader(layout.shader);
      expect(text, layout.shader).not.toMatch(/^\s*\/\/\s*#params/m);
      expect(parseStructs(text).get(layout.struct), key(layout.shader, layout.struct)).toEqual(layout.fields);
    }
  });

  it('the loader writes the struct where its line stands, and names a struct no layout declares', () => {
    const read = (file: string) => (file === 'test' ? 'before\n// #params Placed (a remark)\nafter' : '// #params Missing');
    const layout = paramLayout('test', 'Placed', { rows: 'u32', scale: 'f32' });
    expect(paramStructWgsl(layout)).toBe('struct Placed {\n  rows: u32,\n  scale: f32,\n}');
    expect(resolveIncludes('test', read, () => paramStructWgsl(layout))).toBe(`before\n${paramStructWgsl(layout)}\nafter`);
    // Without a struct source the line stays a comment (tests that read a shader's own code).
    expect(resolveIncludes('test', read)).toBe(read('test'));
    expect(() => resolveIncludes('nowhere', read, paramStructFromLayouts)).toThrow("shaders/nowhere.wgsl asks for struct Missing (// #params Missing), but src/engine/kernel-params.ts declares no paramLayout('nowhere', 'Missing', ...)");
  });
});

describe('kernelParams', () => {
  const layout = paramLayout('test', 'Params', { count: 'u32', flag: 'u32', offset: 'i32', scale: 'f32', bias: 'f32' });

  it('writes each field at 4 x its index with its type, padded to 16 bytes', () => {
    const block = kernelParams(layout, { count: 7, flag: true, offset: -3, scale: 0.5, bias: -2 });
    expect(block.byteLength).toBe(32);
    const view = new DataView(block.buffer);
    expect([view.getUint32(0, true), view.getUint32(4, true), view.getInt32(8, true)]).toEqual([7, 1, -3]);
    expect([view.getFloat32(12, true), view.getFloat32(16, true)]).toEqual([0.5, -2]);
    expect([...block.slice(5)]).toEqual([0, 0, 0]);
    expect(kernelParams(paramLayout('test', 'One', { count: 'u32' }), { count: 1 }).byteLength).toBe(16);
  });

  it('places a vector array 16-byte aligned after the declared padding, zero past the values given', () => {
    const withArray = paramLayout('test', 'WithArray', { count: 'u32', _pad0: 'u32', _pad1: 'u32', _pad2: 'u32', rows: 'array<vec4<u32>, 2>', freqs: 'array<vec4<f32>, 1>' });
    const block = kernelParams(withArray, { count: 3, rows: [5, 6, 7], freqs: [0.25] });
    expect(block.byteLength).toBe(64);
    const quarter = new Uint32Array(new Float32Array([0.25]).buffer)[0];
    expect([...block]).toEqual([3, 0, 0, 0, 5, 6, 7, 0, 0, 0, 0, 0, quarter, 0, 0, 0]);
    expect(() => kernelParams(withArray, { count: 1, rows: new Array(9).fill(1), freqs: [] })).toThrow('test.wgsl WithArray.rows: 9 values for 8 places');
    const unaligned = paramLayout('test', 'Unaligned', { count: 'u32', rows: 'array<vec4<u32>, 1>' });
    expect(() => kernelParams(unaligned, { count: 1, rows: [] })).toThrow('test.wgsl Unaligned.rows: not 16-byte aligned');
  });

  it('paramWordOffset is where kernelParams writes the field (a plan patches those words)', () => {
    const withArray = paramLayout('test', 'WithArray', { count: 'u32', _pad0: 'u32', _pad1: 'u32', _pad2: 'u32', rows: 'array<vec4<u32>, 2>', last: 'u32' });
    const block = kernelParams(withArray, { count: 3, rows: [5, 6, 7], last: 9 });
    expect(block[paramWordOffset(withArray, 'count')]).toBe(3);
    expect([...block.slice(paramWordOffset(withArray, 'rows'), paramWordOffset(withArray, 'rows') + 3)]).toEqual([5, 6, 7]);
    expect(paramWordOffset(withArray, 'last')).toBe(12);
    expect(block[12]).toBe(9);
    expect(() => paramWordOffset(withArray, 'missing' as 'count')).toThrow('test.wgsl WithArray has no field missing');
  });

  it('refuses a value that is not a finite number, naming the field', () => {
    expect(() => kernelParams(layout, { count: 1, flag: false, offset: 0, scale: Number.NaN, bias: 0 })).toThrow('test.wgsl Params.scale: NaN');
  });
});

describe('constants TypeScript shares with the shaders', () => {
  it('decodeChunkKeys is CHUNK and maxDecodeGroup is MAX_GROUP of decode_attention.wgsl', () => {
    const shader = readShader('decode_attention');
    expect(constantText(shader, 'CHUNK')).toBe(`${decodeChunkKeys}u`);
    expect(constantText(shader, 'MAX_GROUP')).toBe(`${maxDecodeGroup}u`);
  });

  it('every shader that reads the KV-cache metadata uses META_* constants equal to kvMetaLayout, no bare offsets', () => {
    const expected: Record<string, number> = {
      META_FIELDS: kvMetaLayout.fields,
      META_SLOT_OFFSET: kvMetaLayout.slotOffset,
      META_KEPT: kvMetaLayout.kept,
      META_LIST_START: kvMetaLayout.listStart,
    };
    // The kernels that bind the metadata are the ones whose parameters carry meta_base.
    const readers = shaderNames().filter((name) => /\bmeta_base\b/.test(stripComments(readShader(name))));
    expect(readers.sort()).toEqual(['attention_probe', 'decode_attention', 'kv_cache']);
    for (const name of readers) {
      const text = readShader(name);
      const code = stripComments(text);
      for (const [constant, value] of Object.entries(expected)) {
        const declared = constantText(text, constant);
        // A shader may leave out an offset it never reads (attention_probe reads no list start).
        if (declared === undefined) expect(code, `${name}.wgsl uses ${constant} without declaring it`).not.toMatch(new RegExp(`\\b${constant}\\b`));
        else expect(declared, `${name}.wgsl ${constant}`).toBe(`${value}u`);
      }
      expect(constantText(text, 'META_FIELDS'), `${name}.wgsl declares META_FIELDS`).toBeDefined();
      // A record's start is meta_base + head * META_FIELDS, and a field is read at start + META_<FIELD>.
      expect(code, `${name}.wgsl: a literal stride or offset into the metadata`).not.toMatch(/meta_base\s*\+\s*\w+\s*\*\s*\d+u/);
      expect(code, `${name}.wgsl: a literal stride or offset into the metadata`).not.toMatch(/meta\w*\[\s*(head_meta|m)\s*(\+\s*\d+u\s*)?\]/);
    }
  });
});
