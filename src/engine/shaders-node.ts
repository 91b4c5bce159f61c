import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { paramStructFromLayouts, resolveIncludes, type ShaderSource } from './shader-source';

const shaderDir = fileURLToPath(new URL('../../shaders/', import.meta.url));
const cache = new Map<string, string>();

/** Reads `shaders/<name>.wgsl` from disk, includes resolved (Node: CLI, benchmarks, GPU tests). */
export const nodeShaderSource: ShaderSource = (name) => {
  let text = cache.get(name);
  if (text === undefined) {
    text = resolveIncludes(name, (file) => readFileSync(shaderDir + file + '.wgsl', 'utf8'), paramStructFromLayouts);
    cache.set(name, text);
  }
  return text;
};
