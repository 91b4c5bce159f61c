/**
 * `generate --dump DIR`: what the engine fed the model and what it computed, for checking it against another
 * implementation (scripts/parity/transformers_parity.py runs Hugging Face transformers on the same inputs).
 *
 * Format (version 1), one folder:
 *   manifest.json       {format: "sparsemm-generate-dump", version: 1, tensors: {name: {file, dtype, shape}}, ...}
 *   input_ids.npy       int32 [promptTokens]                       the prompt, image tokens included
 *   pixel_values.npy    float32 [numTiles, 3, tileHeight, tileWidth] the processor's normalised tiles (0 tiles: no image)
 *   image_token_positions.npy int32 [numTiles * imageSeqLen]       where the image features go in input_ids, in order
 *   tokens.npy          int32 [steps]                              the generated tokens
 *   logits.npy          float32 [steps, vocab]                     logits[i]: the next-token logits that chose tokens[i]
 *                                                                  (i = 0 after the prefill, i > 0 after feeding tokens[i-1])
 * .npy is NumPy's format (version 1.0 header, little-endian, C order): numpy.load reads it, and so does readNpy.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PreparedInputs } from '../model-io/processor';

export const dumpFormat = 'sparsemm-generate-dump';
export const dumpVersion = 1;

export type NpyDtype = '<f4' | '<i4';
export type NpyArray = Float32Array | Int32Array;

export interface DumpTensor {
  file: string;
  dtype: NpyDtype;
  shape: number[];
}

export interface DumpManifest {
  format: typeof dumpFormat;
  version: typeof dumpVersion;
  model: string;
  prompt: string;
  image: string | null;
  policy: string;
  /** Greedy (temperature 0) is what a parity check can compare token by token. */
  greedy: boolean;
  imageTokenId: number;
  imageSeqLen: number;
  numTiles: number;
  tileHeight: number;
  tileWidth: number;
  /** Local tile grid (0 x 0 when not split); the global tile comes last. */
  imageRows: number;
  imageCols: number;
  /** Runs of consecutive image tokens in input_ids: [start, length], one per tile. */
  imageTokenRuns: [number, number][];
  vocabSize: number;
  tokens: number[];
  text: string;
  stoppedBy: string;
  tensors: Record<'input_ids' | 'pixel_values' | 'image_token_positions' | 'tokens' | 'logits', DumpTensor>;
}

/** NumPy .npy bytes (format 1.0) of a C-order array. */
export function encodeNpy(data: NpyArray, shape: number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`encodeNpy: shape [${shape.join(', ')}] holds ${count} values, the data has ${data.length}`);
  const dtype: NpyDtype = data instanceof Float32Array ? '<f4' : '<i4';
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Magic (6) + version (2) + header length (2) + header + '\n', padded with spaces to a multiple of 64.
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]); // \x93NUMPY v1.0
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

/** Reads what encodeNpy writes (little-endian f4 / i4, C order); a clear error for anything else. */
export function decodeNpy(bytes: Uint8Array): { dtype: NpyDtype; shape: number[]; data: NpyArray } {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) throw new Error('not a .npy file (bad magic)');
  if (bytes[6] !== 1) throw new Error(`.npy version ${bytes[6]}.${bytes[7]} is not supported (only 1.0)`);
  const headerLength = bytes[8] | (bytes[9] << 8);
  const header = String.fromCharCode(...bytes.subarray(10, 10 + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if ((descr !== '<f4' && descr !== '<i4') || fortran !== 'False' || shapeText === undefined) throw new Error(`unsupported .npy header ${header.trim()}`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = 10 + headerLength;
  if (bytes.length - start !== count * 4) throw new Error(`.npy data is ${bytes.length - start} bytes, the shape needs ${count * 4}`);
  // A copy (new Uint8Array of a view copies): a Node Buffer's .slice is a view into a shared pool.
  const copy = new Uint8Array(bytes.subarray(start)).buffer;
  return { dtype: descr, shape, data: descr === '<f4' ? new Float32Array(copy) : new Int32Array(copy) };
}

/** [start, length] of each run of consecutive positions. */
export function consecutiveRuns(positions: ArrayLike<number>): [number, number][] {
  const runs: [number, number][] = [];
  for (let i = 0; i < positions.length; i++) {
    const last = runs[runs.length - 1];
    if (last && positions[i] === last[0] + last[1]) last[1] += 1;
    else runs.push([positions[i], 1]);
  }
  return runs;
}

/** What generate knows of the run before it starts: the manifest's fields that do not come from the answer. */
export type DumpContext = Pick<DumpManifest, 'model' | 'prompt' | 'image' | 'policy' | 'greedy' | 'imageTokenId' | 'imageSeqLen' | 'vocabSize'>;

/** Collects the per-step logits of one generate and writes the dump folder. */
export class GenerateDump {
  private readonly stepLogits: Float32Array[] = [];

  constructor(
    private readonly dir: string,
    private readonly context: DumpContext,
    private readonly inputs: PreparedInputs,
  ) {}

  /** The engine's onLogits hook: copies the step's logits (the engine reuses its buffer). */
  readonly onLogits = (logits: Float32Array, stepIndex: number): void => {
    if (stepIndex !== this.stepLogits.length) throw new Error(`dump: logits of step ${stepIndex} arrived after ${this.stepLogits.length} steps`);
    if (logits.length !== this.context.vocabSize) throw new Error(`dump: step ${stepIndex} has ${logits.length} logits, the vocabulary is ${this.context.vocabSize}`);
    this.stepLogits.push(Float32Array.from(logits));
  };

  /** Writes the folder; returns the manifest. */
  write(result: { tokenIds: number[]; text: string; stoppedBy: string }): DumpManifest {
    const { inputs, context } = this;
    const steps = result.tokenIds.length;
    if (this.stepLogits.length !== steps) throw new Error(`dump: ${this.stepLogits.length} steps of logits for ${steps} tokens`);
    const logits = new Float32Array(steps * context.vocabSize);
    this.stepLogits.forEach((row, i) => logits.set(row, i * context.vocabSize));
    const tensors: DumpManifest['tensors'] = {
      input_ids: { file: 'input_ids.npy', dtype: '<i4', shape: [inputs.inputIds.length] },
      pixel_values: { file: 'pixel_values.npy', dtype: '<f4', shape: [inputs.numTiles, 3, inputs.tileHeight, inputs.tileWidth] },
      image_token_positions: { file: 'image_token_positions.npy', dtype: '<i4', shape: [inputs.imageTokenPositions.length] },
      tokens: { file: 'tokens.npy', dtype: '<i4', shape: [steps] },
      logits: { file: 'logits.npy', dtype: '<f4', shape: [steps, context.vocabSize] },
    };
    const data: Record<keyof DumpManifest['tensors'], NpyArray> = {
      input_ids: new Int32Array(inputs.inputIds),
      pixel_values: inputs.numTiles > 0 ? inputs.pixelValues : new Float32Array(0),
      image_token_positions: new Int32Array(inputs.imageTokenPositions),
      tokens: Int32Array.from(result.tokenIds),
      logits,
    };
    mkdirSync(this.dir, { recursive: true });
    for (const [name, tensor] of Object.entries(tensors) as [keyof DumpManifest['tensors'], DumpTensor][]) {
      writeFileSync(join(this.dir, tensor.file), encodeNpy(data[name], tensor.shape));
    }
    const manifest: DumpManifest = {
      format: dumpFormat,
      version: dumpVersion,
      ...context,
      numTiles: inputs.numTiles,
      tileHeight: inputs.tileHeight,
      tileWidth: inputs.tileWidth,
      imageRows: inputs.imageRows,
      imageCols: inputs.imageCols,
      imageTokenRuns: consecutiveRuns(inputs.imageTokenPositions),
      tokens: result.tokenIds,
      text: result.text,
      stoppedBy: result.stoppedBy,
      tensors,
    };
    writeFileSync(join(this.dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  }
}

/** Reads a dump folder back (tests, tools): the manifest and every tensor, checked against the manifest's shapes. */
export function readDump(dir: string): { manifest: DumpManifest; tensors: Record<keyof DumpManifest['tensors'], NpyArray> } {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as DumpManifest;
  if (manifest.format !== dumpFormat || manifest.version !== dumpVersion) throw new Error(`${dir} is not a ${dumpFormat} v${dumpVersion} folder`);
  const tensors = {} as Record<keyof DumpManifest['tensors'], NpyArray>;
  for (const [name, spec] of Object.entries(manifest.tensors) as [keyof DumpManifest['tensors'], DumpTensor][]) {
    const npy = decodeNpy(readFileSync(join(dir, spec.file)));
    if (npy.dtype !== spec.dtype || npy.shape.join(',') !== spec.shape.join(',')) {
      throw new Error(`${spec.file}: ${npy.dtype} [${npy.shape.join(', ')}], the manifest says ${spec.dtype} [${spec.shape.join(', ')}]`);
    }
    tensors[name] = npy.data;
  }
  return { manifest, tensors };
}
