/** A small WGSL reader for tests that check TypeScript against shaders/*.wgsl (limits, parameter layouts). */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { paramStructFromLayouts, resolveIncludes } from '../../src/engine/shader-source';

export const shaderDir = join(import.meta.dirname, '../../shaders');

/** The shader files' names without `.wgsl`, sorted. */
export function shaderNames(): string[] {
  return readdirSync(shaderDir)
    .filter((name) => name.endsWith('.wgsl'))
    .map((name) => name.replace(/\.wgsl$/, ''))
    .sort();
}

const readFile = (file: string): string => readFileSync(join(shaderDir, `${file}.wgsl`), 'utf8');

/** A shader's own code: its `// #include` lines resolved, its `// #params` lines left as they are (comments). */
export function readShader(name: string): string {
  return resolveIncludes(name, readFile);
}

/** A shader's text as the engine compiles it: includes resolved and each `// #params` line replaced by its struct. */
export function compiledShader(name: string): string {
  return resolveIncludes(name, readFile, paramStructFromLayouts);
}

export function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
}

export interface WgslStructField {
  name: string;
  type: string;
}

/** Every `struct Name { field: type, ... }` of a module, fields in declaration order. */
export function parseStructs(text: string): Map<string, WgslStructField[]> {
  const structs = new Map<string, WgslStructField[]>();
  for (const match of stripComments(text).matchAll(/\bstruct\s+(\w+)\s*\{([^}]*)\}/g)) {
    const fields = splitTopLevel(match[2])
      .map((part) => part.trim())
      .filter((part) => part.length > 0)
      .map((part) => {
        const field = /^(?:@\w+(?:\([^)]*\))?\s+)*(\w+)\s*:\s*(.+)$/.exec(part);
        if (!field) throw new Error(`cannot read struct ${match[1]} field "${part}"`);
        return { name: field[1], type: field[2].trim() };
      });
    structs.set(match[1], fields);
  }
  return structs;
}

/** Splits at the commas outside <...> (a field type may be `array<vec4<u32>, 4>`). */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '<') depth++;
    else if (text[i] === '>') depth--;
    else if (text[i] === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** The struct types bound as `var<uniform>` in a module. */
export function uniformStructNames(text: string): string[] {
  return [...new Set([...stripComments(text).matchAll(/var<uniform>\s+\w+\s*:\s*(\w+)\s*;/g)].map((match) => match[1]))];
}

/** The value of `const NAME` or `override NAME` (its default) as written, or undefined. */
export function constantText(text: string, name: string): string | undefined {
  return new RegExp(`^\\s*(?:const|override)\\s+${name}\\s*(?::\\s*\\w+)?\\s*=\\s*([^;]+);`, 'm').exec(stripComments(text))?.[1].trim();
}
