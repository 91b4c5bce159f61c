/** Returns the WGSL text of `shaders/<name>.wgsl`, includes resolved. The browser and Node supply different loaders. */
export type ShaderSource = (name: string) => string;

/** A line `// #include NAME.wgsl`: still a comment to any WGSL tool, replaced by the loader. */
const includeLine = /^[ \t]*\/\/[ \t]*#include[ \t]+([\w-]+)\.wgsl[ \t]*$/gm;

/**
 * The text of shaders/`name`.wgsl with each `// #include OTHER.wgsl` line replaced by that file's text (resolved the
 * same way; a file included twice is placed once, at its first include), so helpers such as bf16 unpacking exist in
 * one file. `read` returns a file's raw text; a file that includes itself, directly or not, is refused.
 */
export function resolveIncludes(name: string, read: (name: string) => string): string {
  const placed = new Set<string>();
  const expand = (file: string, chain: readonly string[]): string =>
    read(file).replace(includeLine, (_line, included: string) => {
      if (chain.includes(included) || included === file) throw new Error(`shaders/${file}.wgsl: include cycle ${[...chain, file, included].join(' -> ')}`);
      if (placed.has(included)) return `// (${included}.wgsl is included above)`;
      placed.add(included);
      return expand(included, [...chain, file]);
    });
  return expand(name, []);
}
