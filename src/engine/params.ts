/**
 * Kernel parameter blocks by name. Each kernel's uniform struct is written in TypeScript only, as a ParamLayout
 * (`paramLayout('norm', 'Params', { rows: 'u32', dim: 'u32', eps: 'f32' })`, all of them in kernel-params.ts); its
 * shader says where the struct goes with a line `// #params Params`, which the shader loader (shader-source.ts)
 * replaces by paramStructWgsl(layout). Wrappers write `kernelParams(layout, { rows, dim, eps })`, so field names,
 * order and types cannot drift between the two languages.
 */

/** A 4-byte scalar, or an array of 16-byte vectors (a uniform array's element stride is 16 bytes). */
export type ParamType = 'u32' | 'i32' | 'f32' | `array<vec4<${'u32' | 'f32'}>, ${number}>`;

/** One WGSL struct as TypeScript writes it: the file it lives in, its name, its fields in declaration order. */
export interface ParamStruct {
  shader: string;
  struct: string;
  fields: readonly { name: string; type: ParamType }[];
}

/** A ParamStruct whose field names are known to TypeScript, so kernelParams takes exactly those values. */
export interface ParamLayout<Fields extends Record<string, ParamType> = Record<string, ParamType>> extends ParamStruct {
  fields: readonly { name: keyof Fields & string; type: ParamType }[];
}

/**
 * A value per field: numbers (booleans are written as 1 / 0: WGSL flags are u32), up to 4 x N numbers for an array
 * (the rest is 0). Fields named `_...` are padding and take no value.
 */
export type ParamValues<Fields extends Record<string, ParamType>> = {
  [Name in keyof Fields as Name extends `_${string}` ? never : Name]: Fields[Name] extends `array<${string}` ? ArrayLike<number> : number | boolean;
};

/**
 * The layout of `struct` in shaders/`shader`.wgsl. Field order is the object's key order (insertion order, which
 * JavaScript keeps for non-numeric keys), so write the fields as the struct lists them, padding included. The
 * project's layouts are declared in kernel-params.ts.
 */
export function paramLayout<const Fields extends Record<string, ParamType>>(shader: string, struct: string, fields: Fields): ParamLayout<Fields> {
  return { shader, struct, fields: Object.entries(fields).map(([name, type]) => ({ name, type })) };
}

/** The WGSL struct of a layout, as the loader places it in the shader: one `name: type,` line per field. */
export function paramStructWgsl(layout: ParamStruct): string {
  return [`struct ${layout.struct} {`, ...layout.fields.map(({ name, type }) => `  ${name}: ${type},`), '}'].join('\n');
}

/**
 * Where field `name` starts in a layout's block, in 4-byte words: a plan replaying the same block step after step
 * rewrites only the fields that change there (DispatchPlan.setParamWords) instead of writing the whole block again.
 */
export function paramWordOffset<Fields extends Record<string, ParamType>>(layout: ParamLayout<Fields>, name: keyof Fields & string): number {
  let at = 0;
  for (const field of layout.fields) {
    if (field.name === name) return at;
    at += wordsOf(field.type).words;
  }
  throw new Error(`${layout.shader}.wgsl ${layout.struct} has no field ${name}`);
}

/** u32 words of a field and its alignment in words (WGSL uniform layout rules for the types we use). */
function wordsOf(type: ParamType): { words: number; align: number; element: 'u32' | 'i32' | 'f32' } {
  const array = /^array<vec4<(u32|f32)>, (\d+)>$/.exec(type);
  if (array) return { words: 4 * Number(array[2]), align: 4, element: array[1] as 'u32' | 'f32' };
  return { words: 1, align: 1, element: type as 'u32' | 'i32' | 'f32' };
}

/**
 * Writes one parameter block: each field at its offset (scalars 4 bytes, vector arrays 16-byte aligned: a layout
 * declares the padding before them as the struct does), typed as the layout says; padded to 16 bytes.
 */
export function kernelParams<Fields extends Record<string, ParamType>>(layout: ParamLayout<Fields>, values: ParamValues<Fields>): Uint32Array {
  const given = values as Record<string, number | boolean | ArrayLike<number> | undefined>;
  const placed: { name: string; at: number; words: number; element: 'u32' | 'i32' | 'f32'; value: number | boolean | ArrayLike<number> }[] = [];
  let at = 0;
  for (const { name, type } of layout.fields) {
    const { words, align, element } = wordsOf(type);
    if (at % align !== 0) throw new Error(`${layout.shader}.wgsl ${layout.struct}.${name}: not ${align * 4}-byte aligned (declare the padding)`);
    if (!name.startsWith('_')) placed.push({ name, at, words, element, value: given[name] ?? Number.NaN });
    at += words;
  }
  const out = new Uint32Array(Math.max(4, Math.ceil(at / 4) * 4));
  const view = new DataView(out.buffer);
  const write = (index: number, element: 'u32' | 'i32' | 'f32', value: number, name: string): void => {
    if (!Number.isFinite(value)) throw new Error(`${layout.shader}.wgsl ${layout.struct}.${name}: ${value} is not a finite number`);
    if (element === 'f32') view.setFloat32(index * 4, value, true);
    else if (element === 'i32') view.setInt32(index * 4, value, true);
    else view.setUint32(index * 4, value >>> 0, true);
  };
  for (const { name, at: start, words, element, value } of placed) {
    if (typeof value === 'number' || typeof value === 'boolean') {
      write(start, element, Number(value), name);
      continue;
    }
    if (value.length > words) throw new Error(`${layout.shader}.wgsl ${layout.struct}.${name}: ${value.length} values for ${words} places`);
    for (let j = 0; j < value.length; j++) write(start + j, element, value[j], name);
  }
  return out;
}
