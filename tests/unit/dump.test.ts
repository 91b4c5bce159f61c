/**
 * The generate --dump format (src/cli/dump.ts): .npy bytes exactly as NumPy writes them, the folder layout and its
 * manifest, and errors for folders that do not match. The logits of a real run are checked in
 * tests/gpu/generate-dump.test.ts; the parity script's syntax here.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { consecutiveRuns, decodeNpy, encodeNpy, GenerateDump, readDump } from '../../src/cli/dump';
import type { PreparedInputs } from '../../src/model-io/processor';

const root = join(import.meta.dirname, '..', '..');
const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sparsemm-dump-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function headerOf(bytes: Uint8Array): string {
  const length = bytes[8] | (bytes[9] << 8);
  return String.fromCharCode(...bytes.subarray(10, 10 + length));
}

describe('.npy encoding', () => {
  it('writes the header NumPy 2.x writes (v1.0, 64-byte aligned) and the values little-endian', () => {
    const bytes = encodeNpy(new Float32Array([0, 1, 2, 3, 4, 5]), [2, 3]);
    expect([...bytes.subarray(0, 8)]).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    // What numpy.save(np.arange(6, dtype='<f4').reshape(2, 3)) writes: header length 0x76, data at byte 128.
    expect(bytes[8] | (bytes[9] << 8)).toBe(0x76);
    expect(headerOf(bytes)).toBe(`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }${' '.repeat(58)}\n`);
    expect(bytes.length).toBe(128 + 24);
    expect(new DataView(bytes.buffer).getFloat32(128 + 4 * 5, true)).toBe(5);
    expect(headerOf(encodeNpy(new Int32Array([5, -1, 7]), [3]))).toMatch(/^\{'descr': '<i4', 'fortran_order': False, 'shape': \(3,\), \} *\n$/);
  });

  it('round-trips f32 and i32 arrays of any rank, empty ones included', () => {
    for (const [data, shape] of [
      [new Float32Array([1.5, -2.25, 3e-8, 65504]), [2, 1, 2]],
      [new Int32Array([0, -2147483648, 2147483647]), [3]],
      [new Float32Array(0), [0, 3, 4, 4]],
    ] as const) {
      const decoded = decodeNpy(encodeNpy(data, [...shape]));
      expect(decoded.shape).toEqual(shape);
      expect(decoded.dtype).toBe(data instanceof Float32Array ? '<f4' : '<i4');
      expect([...decoded.data]).toEqual([...data]);
      const bytes = encodeNpy(data, [...shape]);
      expect((10 + (bytes[8] | (bytes[9] << 8))) % 64).toBe(0);
    }
  });

  it('refuses a shape that does not fit the data, and bytes that are not .npy', () => {
    expect(() => encodeNpy(new Float32Array(5), [2, 3])).toThrow(/holds 6 values, the data has 5/);
    expect(() => decodeNpy(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))).toThrow(/not a \.npy file/);
    const truncated = encodeNpy(new Float32Array([1, 2, 3]), [3]).slice(0, -4);
    expect(() => decodeNpy(truncated)).toThrow(/data is 8 bytes, the shape needs 12/);
  });
});

describe('dump folder', () => {
  // A prompt of 10 tokens with two tiles of 2 image tokens (id 9) at positions 2-3 and 6-7, vocabulary 5.
  const inputs: PreparedInputs = {
    inputIds: new Uint32Array([1, 4, 9, 9, 4, 3, 9, 9, 4, 2]),
    pixelValues: Float32Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => i / 10),
    numTiles: 2,
    tileHeight: 2,
    tileWidth: 2,
    imageRows: 1,
    imageCols: 1,
    images: [{ numTiles: 2, rows: 1, cols: 1, firstTile: 0, imageTokenCount: 4, firstImageToken: 0 }],
    videos: [],
    promptText: '',
    imageTokenCount: 4,
    imageTokenPositions: new Uint32Array([2, 3, 6, 7]),
  };
  const context = { model: 'test', prompt: 'hi', image: 'x.png', policy: 'full', greedy: true, imageTokenId: 9, imageSeqLen: 2, vocabSize: 5 };

  it('writes the manifest and every tensor with the documented shapes and dtypes', () => {
    const dir = tempDir();
    const dump = new GenerateDump(dir, context, inputs);
    const engineBuffer = new Float32Array([0.5, 3, -1, 0, 2]);
    dump.onLogits(engineBuffer, 0);
    engineBuffer.set([1, 0, 0, 7, 0]); // the engine reuses its read-back array: the dump must have copied step 0
    dump.onLogits(engineBuffer, 1);
    dump.write({ tokenIds: [1, 3], text: 'ok', stoppedBy: 'max' });

    const { manifest, tensors } = readDump(dir);
    expect(manifest.tensors.input_ids).toEqual({ file: 'input_ids.npy', dtype: '<i4', shape: [10] });
    expect(manifest.tensors.pixel_values.shape).toEqual([2, 3, 2, 2]);
    expect(manifest.tensors.logits).toEqual({ file: 'logits.npy', dtype: '<f4', shape: [2, 5] });
    expect(manifest.imageTokenRuns).toEqual([[2, 2], [6, 2]]);
    expect(manifest.tokens).toEqual([1, 3]);
    expect([...tensors.logits]).toEqual([0.5, 3, -1, 0, 2, 1, 0, 0, 7, 0]);
    expect([...tensors.input_ids]).toEqual([...inputs.inputIds]);
    expect([...tensors.image_token_positions]).toEqual([2, 3, 6, 7]);
    expect(tensors.pixel_values[23]).toBeCloseTo(2.3, 6);
  });

  it('refuses logits out of order, of the wrong size, or a step count that does not match the tokens', () => {
    const dump = new GenerateDump(tempDir(), context, inputs);
    expect(() => dump.onLogits(new Float32Array(5), 1)).toThrow(/step 1 arrived after 0 steps/);
    expect(() => dump.onLogits(new Float32Array(4), 0)).toThrow(/4 logits, the vocabulary is 5/);
    dump.onLogits(new Float32Array(5), 0);
    expect(() => dump.write({ tokenIds: [1, 2], text: '', stoppedBy: 'max' })).toThrow(/1 steps of logits for 2 tokens/);
  });

  it('readDump names a tensor whose file does not match the manifest', () => {
    const dir = tempDir();
    const dump = new GenerateDump(dir, context, inputs);
    dump.onLogits(new Float32Array(5), 0);
    dump.write({ tokenIds: [4], text: '', stoppedBy: 'max' });
    writeFileSync(join(dir, 'tokens.npy'), encodeNpy(new Int32Array([4, 4]), [2]));
    expect(() => readDump(dir)).toThrow(/tokens\.npy: <i4 \[2\], the manifest says <i4 \[1\]/);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...manifest, version: 99 }));
    expect(() => readDump(dir)).toThrow(/not a sparsemm-generate-dump v1 folder/);
  });

  it('consecutiveRuns splits positions into runs', () => {
    expect(consecutiveRuns([])).toEqual([]);
    expect(consecutiveRuns([4, 5, 6, 10, 11, 13])).toEqual([[4, 3], [10, 2], [13, 1]]);
  });
});

describe('scripts/parity/transformers_parity.py', () => {
  it('compiles with python3 -m py_compile', () => {
    const python = spawnSync('python3', ['--version'], { encoding: 'utf8' });
    if (python.error) throw new Error('python3 is not installed: the parity script cannot be checked (apt-get install -y python3)');
    const out = join(tempDir(), 'parity.pyc');
    execFileSync('python3', ['-c', `import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)`,
      join(root, 'scripts', 'parity', 'transformers_parity.py'), out]);
    expect(readFileSync(out).length).toBeGreaterThan(0);
  });
});
