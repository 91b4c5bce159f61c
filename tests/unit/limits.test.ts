/**
 * The engine's limit check (src/engine/limits.ts): its per-kernel table agrees with what shaders/*.wgsl declare
 * (read here by a small WGSL reader: workgroup sizes, workgroup memory and storage bindings each entry point reaches),
 * the spec's default limits pass, and a limit below what is needed is refused naming the limit.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkRequiredLimits,
  GpuLimitError,
  kernelNeeds,
  kernelShapesOf,
  largestSupportedShapes,
  largestWeightTensor,
  type KernelShapes,
  type LimitValues,
  requiredLimits,
} from '../../src/engine/limits';
import { packedBf16Bytes } from '../../src/engine/weights';
import { parseModelConfig } from '../../src/model-io/config';
import { defaultReferenceModelDir, randomWeightSpecs, tinyFixtureFiles } from '../../src/model-io/fixture';
import { readShader, shaderNames, stripComments } from '../helpers/wgsl';

const smolVlmConfig = parseModelConfig(readFileSync(join(defaultReferenceModelDir(), 'config.json'), 'utf8'));
const tinyConfig = parseModelConfig(new TextDecoder().decode(tinyFixtureFiles().get('config.json')));

/** The WebGPU spec's default limits: what every adapter offers at least (at most, for the alignment). */
const specDefaultLimits: LimitValues = {
  maxBindGroups: 4,
  maxStorageBuffersPerShaderStage: 8,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupsPerDimension: 65535,
  maxUniformBufferBindingSize: 65536,
  minUniformBufferOffsetAlignment: 256,
  maxStorageBufferBindingSize: 134217728,
  maxBufferSize: 268435456,
};

// ---------------------------------------------------------------- a small WGSL reader

interface WgslFunction {
  name: string;
  body: string;
  /** The expression in @workgroup_size(...) for a @compute entry point. */
  workgroupSize?: string;
}

interface WgslModule {
  constants: Map<string, string>;
  workgroupVars: { name: string; bytes: string }[];
  storageVars: { name: string; binding: number }[];
  functions: Map<string, WgslFunction>;
}

/** Element bytes of a WGSL type we use in workgroup memory (scalars and vectors of 32-bit values). */
function typeBytes(type: string): string {
  const vector = /^vec([234])<(f32|u32|i32)>$/.exec(type);
  if (vector) return String(4 * Number(vector[1]));
  if (/^(f32|u32|i32|atomic<u32>|atomic<i32>)$/.test(type)) return '4';
  throw new Error(`unexpected workgroup type ${type}`);
}

function parseWgsl(text: string): WgslModule {
  const source = stripComments(text);
  const constants = new Map<string, string>();
  for (const match of source.matchAll(/^\s*(?:const|override)\s+(\w+)\s*(?::\s*\w+)?\s*=\s*([^;]+);/gm)) constants.set(match[1], match[2].trim());
  const workgroupVars: WgslModule['workgroupVars'] = [];
  for (const match of source.matchAll(/var<workgroup>\s+(\w+)\s*:\s*([^;]+);/g)) {
    const type = match[2].trim();
    const array = /^array<\s*([\w<>]+)\s*,\s*(.+)>$/.exec(type);
    workgroupVars.push({ name: match[1], bytes: array ? `(${typeBytes(array[1])}) * (${array[2]})` : typeBytes(type) });
  }
  const storageVars: WgslModule['storageVars'] = [];
  for (const match of source.matchAll(/@binding\((\d+)\)\s*var<storage[^>]*>\s+(\w+)/g)) storageVars.push({ name: match[2], binding: Number(match[1]) });
  const functions = new Map<string, WgslFunction>();
  for (const match of source.matchAll(/\bfn\s+(\w+)\s*\(/g)) {
    const open = source.indexOf('{', match.index);
    let depth = 0;
    let end = open;
    for (; end < source.length; end++) {
      if (source[end] === '{') depth++;
      else if (source[end] === '}' && --depth === 0) break;
    }
    // Attributes sit between the previous declaration and `fn`.
    const before = source.slice(Math.max(source.lastIndexOf(';', match.index), source.lastIndexOf('}', match.index)) + 1, match.index);
    const size = /@compute\s+@workgroup_size\(([^)]*)\)/.exec(before);
    functions.set(match[1], { name: match[1], body: source.slice(match.index, end + 1), workgroupSize: size?.[1].trim() });
  }
  return { constants, workgroupVars, storageVars, functions };
}

/** Evaluates + - * / ( ) over integer literals and the module's constants (override values from `overrides`). */
function evaluate(expression: string, module: WgslModule, overrides: Record<string, number>, depth = 0): number {
  if (depth > 20) throw new Error(`constant cycle in ${expression}`);
  const tokens = expression.match(/0x[0-9a-f]+u?|\d+u?|\w+|[-+*/()]/gi) ?? [];
  let at = 0;
  const primary = (): number => {
    const token = tokens[at++];
    if (token === '(') {
      const value = sum();
      at++; // ')'
      return value;
    }
    if (/^(0x[0-9a-f]+|\d+)u?$/i.test(token)) return Number(token.replace(/u$/i, ''));
    if (token in overrides) return overrides[token];
    const definition = module.constants.get(token);
    if (definition === undefined) throw new Error(`unknown constant ${token}`);
    return evaluate(definition, module, overrides, depth + 1);
  };
  const product = (): number => {
    let value = primary();
    while (tokens[at] === '*' || tokens[at] === '/') value = tokens[at++] === '*' ? value * primary() : Math.floor(value / primary());
    return value;
  };
  const sum = (): number => {
    let value = product();
    while (tokens[at] === '+' || tokens[at] === '-') value = tokens[at++] === '+' ? value + product() : value - product();
    return value;
  };
  return sum();
}

const uses = (body: string, name: string): boolean => new RegExp(`\\b${name}\\b`).test(body);

/** What one entry point needs: the code it reaches is its body plus the functions it calls, transitively. */
function analyse(shader: string, entryPoint: string, overrides: Record<string, number>, prelude?: string) {
  // A prelude is compiled in the same module, before the shader (PipelineCache).
  const files = [...(prelude ? prelude.split('+') : []), shader];
  const text = files.map(readShader).join('\n');
  const module = parseWgsl(text);
  const entry = module.functions.get(entryPoint);
  if (!entry?.workgroupSize) throw new Error(`${shader}.wgsl has no @compute entry point ${entryPoint}`);
  const reached = new Set([entryPoint]);
  const queue = [entry];
  while (queue.length > 0) {
    const fn = queue.pop() as WgslFunction;
    for (const other of module.functions.values()) {
      if (!reached.has(other.name) && new RegExp(`\\b${other.name}\\s*\\(`).test(fn.body.slice(fn.body.indexOf('{')))) {
        reached.add(other.name);
        queue.push(other);
      }
    }
  }
  const code = [...reached].map((name) => module.functions.get(name)?.body ?? '').join('\n');
  return {
    workgroupStorageBytes: module.workgroupVars.filter((v) => uses(code, v.name)).reduce((total, v) => total + evaluate(v.bytes, module, overrides), 0),
    invocationsPerWorkgroup: entry.workgroupSize.split(',').reduce((product, part) => product * evaluate(part, module, overrides), 1),
    storageBuffers: new Set(module.storageVars.filter((v) => uses(code, v.name)).map((v) => v.binding)).size,
  };
}

function allEntryPoints(): string[] {
  const names: string[] = [];
  for (const shader of shaderNames()) {
    const module = parseWgsl(readShader(shader));
    for (const fn of module.functions.values()) if (fn.workgroupSize) names.push(`${shader}:${fn.name}`);
  }
  return names.sort();
}

// ---------------------------------------------------------------- tests

describe('the kernel table in limits.ts matches shaders/*.wgsl', () => {
  it('lists every @compute entry point, and nothing else', () => {
    const listed = [...new Set(kernelNeeds(largestSupportedShapes).map((k) => `${k.shader}:${k.entryPoint}`))].sort();
    expect(listed).toEqual(allEntryPoints());
    expect(listed.length).toBeGreaterThan(20);
  });

  const shapes: [string, KernelShapes][] = [
    ['the tiny fixture', kernelShapesOf(tinyConfig)],
    ['SmolVLM-256M', kernelShapesOf(smolVlmConfig)],
    ['the largest supported shapes', largestSupportedShapes],
  ];
  for (const [label, shape] of shapes) {
    it(`workgroup memory, workgroup size and storage buffers per entry point agree for ${label}`, () => {
      const kernels = kernelNeeds(shape);
      const label = (k: (typeof kernels)[number]) => `${k.prelude ? `${k.prelude}+` : ''}${k.shader}:${k.entryPoint} ${JSON.stringify(k.constants)}`;
      const measured = kernels.map((k) => ({ kernel: label(k), ...analyse(k.shader, k.entryPoint, { ...k.constants }, k.prelude) }));
      const table = kernels.map((k) => ({
        kernel: label(k),
        workgroupStorageBytes: k.workgroupStorageBytes,
        invocationsPerWorkgroup: k.invocationsPerWorkgroup,
        storageBuffers: k.storageBuffers,
      }));
      expect(table).toEqual(measured);
    });
  }

  it('the largest weight tensor is the largest tensor of the checkpoint', () => {
    for (const config of [tinyConfig, smolVlmConfig]) {
      const largest = Math.max(...randomWeightSpecs(config).map((spec) => packedBf16Bytes(spec.shape.reduce((a, b) => a * b, 1))));
      expect(largestWeightTensor(config).bytes).toBe(largest);
    }
    // SmolVLM-256M: embed_tokens / lm_head, 49280 x 576 bf16.
    expect(largestWeightTensor(smolVlmConfig)).toEqual({ name: 'text embed_tokens / lm_head', bytes: 49280 * 576 * 2 });
  });
});

describe('checkRequiredLimits', () => {
  it('passes on the spec default limits, for any supported model and for SmolVLM-256M', () => {
    expect(() => checkRequiredLimits(specDefaultLimits)).not.toThrow();
    expect(() => checkRequiredLimits(specDefaultLimits, smolVlmConfig)).not.toThrow();
    expect(() => checkRequiredLimits(specDefaultLimits, tinyConfig)).not.toThrow();
  });

  it('names each limit that falls short, with the numbers and what needs it', () => {
    for (const requirement of requiredLimits(smolVlmConfig)) {
      const atMost = requirement.limit === 'minUniformBufferOffsetAlignment';
      const lacking = { ...specDefaultLimits, [requirement.limit]: atMost ? requirement.required * 2 : requirement.required - 1 };
      let error: unknown;
      try {
        checkRequiredLimits(lacking, smolVlmConfig);
      } catch (caught) {
        error = caught;
      }
      expect(error, requirement.limit).toBeInstanceOf(GpuLimitError);
      const limitError = error as GpuLimitError;
      expect(limitError.limit).toBe(requirement.limit);
      expect(limitError.shortfalls.map((s) => s.limit)).toEqual([requirement.limit]);
      expect(limitError.message).toContain(`${requirement.limit} is ${lacking[requirement.limit]}`);
      expect(limitError.message).toContain(String(requirement.required));
      expect(limitError.message).toContain(requirement.reason);
    }
  });

  it('refuses SmolVLM-256M on an adapter whose storage binding cannot hold the embedding, naming the limit and tensor', () => {
    const small = { ...specDefaultLimits, maxStorageBufferBindingSize: 32 * 2 ** 20 };
    expect(() => checkRequiredLimits(small)).not.toThrow(); // the kernels alone fit
    expect(() => checkRequiredLimits(small, smolVlmConfig)).toThrow(
      `This GPU adapter lacks a limit SparseMM Web needs: maxStorageBufferBindingSize is ${32 * 2 ** 20}, but ${49280 * 576 * 2} is needed ` +
        '(the text embed_tokens / lm_head weight, bound whole as packed bf16).',
    );
  });

  it('workgroup memory depends on the head dim: head dim 128 needs more than head dim 64', () => {
    // Kernels with a fallback (attention.wgsl:flash) set no requirement, as in requiredLimits.
    const storage = (shape: KernelShapes) => Math.max(...kernelNeeds(shape).filter((k) => !k.hasFallback).map((k) => k.workgroupStorageBytes));
    expect(storage(largestSupportedShapes)).toBeGreaterThan(storage(kernelShapesOf(smolVlmConfig)));
    // An adapter with 12 KiB of workgroup memory runs SmolVLM-256M (head dim 64, GQA 3) but not every supported model.
    const twelveKiB = { ...specDefaultLimits, maxComputeWorkgroupStorageSize: 12 * 1024 };
    expect(() => checkRequiredLimits(twelveKiB, smolVlmConfig)).not.toThrow();
    expect(() => checkRequiredLimits(twelveKiB)).toThrow(/maxComputeWorkgroupStorageSize is 12288, but \d+ is needed \(kernel decode_attention\.wgsl:attend_partial \(HEAD_DIM=128, GROUP=16\)\)/);
  });

  it('lists every shortfall at once, and treats a missing limit as a shortfall', () => {
    const { maxBindGroups: _missing, ...withoutBindGroups } = specDefaultLimits;
    const poor = { ...withoutBindGroups, maxStorageBuffersPerShaderStage: 4, maxComputeInvocationsPerWorkgroup: 128 } as unknown as LimitValues;
    try {
      checkRequiredLimits(poor);
      expect.unreachable('the check should throw');
    } catch (error) {
      expect((error as GpuLimitError).shortfalls.map((s) => s.limit)).toEqual([
        'maxBindGroups',
        'maxStorageBuffersPerShaderStage',
        'maxComputeInvocationsPerWorkgroup',
      ]);
      expect((error as Error).message).toContain('maxStorageBuffersPerShaderStage is 4, but 8 is needed (kernel gemv.wgsl:gemv_qkv_rope');
    }
  });
});
