import { paramStructFromLayouts, resolveIncludes, type ShaderSource } from './shader-source';

// Vite inlines every shader file as text at build time.
const files = import.meta.glob('../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;

const byName = new Map<string, string>();
for (const [path, text] of Object.entries(files)) {
  byName.set(path.replace(/^.*\/(.*)\.wgsl$/, '$1'), text);
}

function rawShader(name: string): string {
  const text = byName.get(name);
  if (text === undefined) throw new Error(`Unknown shader "${name}"`);
  return text;
}

export const browserShaderSource: ShaderSource = (name) => resolveIncludes(name, rawShader, paramStructFromLayouts);
