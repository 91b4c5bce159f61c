import { kernelParamLayout } from './kernel-params';
import { paramStructWgsl } from './params';

/** Returns the WGSL text of `shaders/<name>.wgsl`, includes resolved. The browser and Node supply different loaders. */
export type ShaderSource = (name: string) => string;

/** A line `// #include NAME.wgsl`: still a comment to any WGSL tool, replaced by the loader. */
const includeLine = /^[ \t]*\/\/[ \t]*#include[ \t]+([\w-]+)\.wgsl[ \t]*$/gm;

/** A line `// #params NAME` (anything after the name is a remark for the reader): where struct NAME goes. */
const paramsLine = /^[ \t]*\/\/[ \t]*#params[ \t]+(\w+)\b.*$/gm;

/** The struct names of a text's `// #params NAME` lines, in order (the structs the loader writes from layouts). */
export function paramsLineStructs(text: string): string[] {
  return [...text.matchAll(paramsLine)].map((match) => match[1]);
}

/** Returns the WGSL declaration of `struct` for shaders/`file`.wgsl (the engine renders it from the TS ParamLayout). */
export type ParamStructSource = (file: string, struct: string) => string;

/**
 * The text of shaders/`name`.wgsl with each `// #include OTHER.wgsl` line replaced by that file's text (resolved the
 * same way; a file included twice is placed once, at its first include), so helpers such as bf16 unpacking exist in
 * one file. `read` returns a file's raw text; a file that includes itself, directly or not, is refused. With
 * `paramStruct`, each `// #params NAME` line is replaced by that struct's declaration (without it the line stays, a
 * comment: tests that read a shader's own code need no layouts).
 */
export function resolveIncludes(name: string, read: (name: string) => string, paramStruct?: ParamStructSource): string {
  const placed = new Set<string>();
  const withParams = (file: string, text: string): string => (paramStruct ? text.replace(paramsLine, (_line, struct: string) => paramStruct(file, struct)) : text);
  const expand = (file: string, chain: readonly string[]): string =>
    withParams(file, read(file)).replace(includeLine, (_line, included: string) => {
      if (chain.includes(included) || included === file) throw new Error(`shaders/${file}.wgsl: include cycle ${[...chain, file, included].join(' -> ')}`);
      if (placed.has(included)) return `// (${included}.wgsl is included above)`;
      placed.add(included);
      return expand(included, [...chain, file]);
    });
  return expand(name, []);
}

/** The struct of a `// #params NAME` line from its layout in kernel-params.ts (what both engine loaders use). */
export const paramStructFromLayouts: ParamStructSource = (file, struct) => paramStructWgsl(kernelParamLayout(file, struct));
