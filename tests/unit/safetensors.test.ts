import { describe, expect, it } from 'vitest';
import { f32ArrayToBf16 } from '../../src/model-io/bf16';
import { SafetensorsError, SafetensorsFile, safetensorsLayout, writeSafetensors } from '../../src/model-io/safetensors';

/** A file from a hand-written header object and `dataBytes` bytes of data (filled with 0, 1, 2, ...). */
function rawFile(header: Record<string, unknown>, dataBytes: number, headerLengthOverride?: number): ArrayBuffer {
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + headerBytes.byteLength + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLengthOverride ?? headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  for (let i = 0; i < dataBytes; i++) out[8 + headerBytes.byteLength + i] = i & 0xff;
  return out.buffer;
}

function exactBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function goodFile(): ArrayBuffer {
  const weights = Float32Array.from([1, -2, 0.5, 3.25, -0.125, 100]);
  const bias = Float32Array.from([0.1, 0.2, 0.3]);
  // F16 bits: 1.0, -2.0, the smallest subnormal, +infinity.
  const half = Uint16Array.from([0x3c00, 0xc000, 0x0001, 0x7c00]);
  return exactBuffer(
    writeSafetensors(
      [
        { name: 'layer.weight', dtype: 'BF16', shape: [2, 3], data: new Uint8Array(f32ArrayToBf16(weights).buffer) },
        { name: 'layer.bias', dtype: 'F32', shape: [3], data: new Uint8Array(bias.buffer) },
        { name: 'half', dtype: 'F16', shape: [2, 2], data: new Uint8Array(half.buffer) },
      ],
      { format: 'pt', note: 'test' },
    ),
  );
}

describe('SafetensorsFile.parse', () => {
  it('reads a good file: names, dtypes, shapes, offsets, metadata and values', () => {
    const buffer = goodFile();
    const file = SafetensorsFile.parse(buffer);
    expect([...file.tensors.keys()]).toEqual(['layer.weight', 'layer.bias', 'half']);
    expect(file.metadata).toEqual({ format: 'pt', note: 'test' });

    const weight = file.get('layer.weight');
    expect(weight).toMatchObject({ dtype: 'BF16', shape: [2, 3], byteLength: 12, elementCount: 6 });
    // The writer pads the header so the data starts 8-byte aligned.
    const headerLength = Number(new DataView(buffer).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0);
    expect(weight.byteOffset).toBe(8 + headerLength);
    expect(Array.from(file.toF32('layer.weight'))).toEqual([1, -2, 0.5, 3.25, -0.125, 100]);
    // BF16 stays a zero-copy view of the file.
    const bits = file.toBf16('layer.weight');
    expect(bits.buffer).toBe(buffer);
    expect(bits[0]).toBe(0x3f80);

    expect(file.get('layer.bias').byteOffset).toBe(weight.byteOffset + 12);
    expect(Array.from(file.toF32('layer.bias'))).toEqual(Array.from(Float32Array.from([0.1, 0.2, 0.3])));
    expect(Array.from(file.toF32('half'))).toEqual([1, -2, 2 ** -24, Infinity]);
    expect(Array.from(file.bytes('layer.bias'))).toEqual(Array.from(new Uint8Array(Float32Array.from([0.1, 0.2, 0.3]).buffer)));
  });

  it('names a missing tensor', () => {
    const file = SafetensorsFile.parse(goodFile());
    expect(file.has('nope')).toBe(false);
    expect(() => file.get('nope')).toThrow(/no tensor "nope"/);
  });

  it('rejects a truncated file, saying so', () => {
    const buffer = goodFile();
    const cut = buffer.slice(0, buffer.byteLength - 5);
    expect(() => SafetensorsFile.parse(cut, 'cut.safetensors')).toThrow(SafetensorsError);
    expect(() => SafetensorsFile.parse(cut, 'cut.safetensors')).toThrow(/cut\.safetensors: tensor "half" ends at byte \d+, past the end of the file .*truncated/);
  });

  it('rejects a file shorter than the length prefix', () => {
    expect(() => SafetensorsFile.parse(new ArrayBuffer(5))).toThrow(/too short \(5 bytes\)/);
  });

  it('rejects a header length that runs past the end of the file', () => {
    const buffer = rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 4, 10_000);
    expect(() => SafetensorsFile.parse(buffer)).toThrow(/header length 10000 does not fit in the file/);
    // A huge length (e.g. a random binary file) is refused before anything is decoded.
    const huge = rawFile({}, 0, 2 ** 40);
    expect(() => SafetensorsFile.parse(huge)).toThrow(/does not fit/);
  });

  it('rejects a header that is not JSON or not an object', () => {
    const text = new TextEncoder().encode('{not json');
    const bad = new Uint8Array(8 + text.byteLength);
    new DataView(bad.buffer).setBigUint64(0, BigInt(text.byteLength), true);
    bad.set(text, 8);
    expect(() => SafetensorsFile.parse(bad.buffer)).toThrow(/not valid JSON/);
    const array = new TextEncoder().encode('[1,2]');
    const arrayFile = new Uint8Array(8 + array.byteLength);
    new DataView(arrayFile.buffer).setBigUint64(0, BigInt(array.byteLength), true);
    arrayFile.set(array, 8);
    expect(() => SafetensorsFile.parse(arrayFile.buffer)).toThrow(/not a JSON object/);
  });

  it('rejects a header whose byte range does not match the shape', () => {
    // [2, 2] F32 needs 16 bytes, the header claims 12.
    const buffer = rawFile({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, 12);
    expect(() => SafetensorsFile.parse(buffer)).toThrow(/tensor "w" claims 12 bytes but its shape \[2, 2\] of F32 needs 16/);
    const backwards = rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, 8);
    expect(() => SafetensorsFile.parse(backwards)).toThrow(/tensor "w" claims -4 bytes/);
  });

  it('rejects overlapping tensors, gaps and trailing bytes (offsets that lie)', () => {
    const overlapping = rawFile(
      { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } },
      12,
    );
    expect(() => SafetensorsFile.parse(overlapping)).toThrow(/tensor "b" starts at data offset 4, which overlaps the tensor before it/);
    const gap = rawFile(
      { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } },
      12,
    );
    expect(() => SafetensorsFile.parse(gap)).toThrow(/tensor "b" starts at data offset 8, which leaves a gap/);
    const trailing = rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 10);
    expect(() => SafetensorsFile.parse(trailing)).toThrow(/cover 4 data bytes but the file has 10/);
  });

  it('rejects unsupported or missing dtypes, naming the tensor', () => {
    const int64 = rawFile({ ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, 8);
    expect(() => SafetensorsFile.parse(int64)).toThrow(/tensor "ids" has dtype "I64"; supported are BF16, F16 and F32/);
    const f64 = rawFile({ x: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, 8);
    expect(() => SafetensorsFile.parse(f64)).toThrow(/tensor "x" has dtype "F64"/);
    const none = rawFile({ x: { shape: [1], data_offsets: [0, 4] } }, 4);
    expect(() => SafetensorsFile.parse(none)).toThrow(/tensor "x" has dtype undefined/);
  });

  it('rejects invalid shapes, offsets and metadata', () => {
    expect(() => SafetensorsFile.parse(rawFile({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4))).toThrow(/"x" has an invalid shape/);
    expect(() => SafetensorsFile.parse(rawFile({ x: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, 4))).toThrow(/invalid shape/);
    expect(() => SafetensorsFile.parse(rawFile({ x: { dtype: 'F32', shape: [1], data_offsets: [0] } }, 4))).toThrow(/"x" has invalid data_offsets/);
    expect(() => SafetensorsFile.parse(rawFile({ x: { dtype: 'F32', shape: [1], data_offsets: ['0', '4'] } }, 4))).toThrow(/invalid data_offsets/);
    expect(() => SafetensorsFile.parse(rawFile({ __metadata__: { n: 3 } }, 0))).toThrow(/__metadata__ must be an object of strings/);
  });

  it('accepts a header without tensors and a scalar tensor', () => {
    expect(SafetensorsFile.parse(rawFile({}, 0)).tensors.size).toBe(0);
    const scalar = SafetensorsFile.parse(rawFile({ s: { dtype: 'F32', shape: [], data_offsets: [0, 4] } }, 4));
    expect(scalar.get('s').elementCount).toBe(1);
  });
});

describe('writeSafetensors / safetensorsLayout', () => {
  it('refuses data whose size does not match the shape, and duplicate names', () => {
    expect(() => writeSafetensors([{ name: 'x', dtype: 'F32', shape: [2], data: new Uint8Array(4) }])).toThrow(/x: 4 bytes, shape needs 8/);
    expect(() =>
      writeSafetensors([
        { name: 'x', dtype: 'F32', shape: [1], data: new Uint8Array(4) },
        { name: 'x', dtype: 'F32', shape: [1], data: new Uint8Array(4) },
      ]),
    ).toThrow(/Duplicate/);
  });

  it('plans the same header and offsets the writer produces', () => {
    const tensors = [
      { name: 'a', dtype: 'BF16' as const, shape: [3], data: new Uint8Array([1, 2, 3, 4, 5, 6]) },
      { name: 'b', dtype: 'F32' as const, shape: [1], data: new Uint8Array([7, 8, 9, 10]) },
    ];
    const bytes = writeSafetensors(tensors);
    const layout = safetensorsLayout(tensors);
    expect(layout.totalBytes).toBe(bytes.byteLength);
    expect(Array.from(bytes.subarray(0, layout.header.byteLength))).toEqual(Array.from(layout.header));
    const file = SafetensorsFile.parse(exactBuffer(bytes));
    expect([file.get('a').byteOffset, file.get('b').byteOffset]).toEqual(layout.offsets);
    expect(Array.from(file.bytes('b'))).toEqual([7, 8, 9, 10]);
  });
});
