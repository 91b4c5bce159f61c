import { bf16ArrayToF32, f32ArrayToBf16 } from './bf16';

/**
 * safetensors: 8-byte little-endian header length N, N bytes of JSON header
 * ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}), then the data.
 * Offsets are relative to the start of the data. Every header field is checked before use.
 */
export type SafetensorsDtype = 'BF16' | 'F16' | 'F32';
const bytesPerElement: Record<SafetensorsDtype, number> = { BF16: 2, F16: 2, F32: 4 };
const maxHeaderBytes = 100 * 1024 * 1024;

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute offset in the file. */
  byteOffset: number;
  byteLength: number;
  elementCount: number;
}

export class SafetensorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

export class SafetensorsFile {
  private constructor(
    readonly buffer: ArrayBuffer,
    readonly tensors: Map<string, TensorInfo>,
    readonly metadata: Record<string, string>,
  ) {}

  static parse(buffer: ArrayBuffer, fileName = 'model.safetensors'): SafetensorsFile {
    if (buffer.byteLength < 8) throw new SafetensorsError(`${fileName} is too short (${buffer.byteLength} bytes) to be a safetensors file.`);
    const headerLength = Number(new DataView(buffer).getBigUint64(0, true));
    if (headerLength > maxHeaderBytes || 8 + headerLength > buffer.byteLength) {
      throw new SafetensorsError(
        `${fileName}: header length ${headerLength} does not fit in the file (${buffer.byteLength} bytes): truncated or not a safetensors file.`,
      );
    }
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, headerLength)));
    } catch {
      throw new SafetensorsError(`${fileName}: the header is not valid JSON.`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) {
      throw new SafetensorsError(`${fileName}: the header is not a JSON object.`);
    }
    const dataStart = 8 + headerLength;
    const dataLength = buffer.byteLength - dataStart;
    const tensors = new Map<string, TensorInfo>();
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        metadata = parseMetadata(raw, fileName);
        continue;
      }
      const entry = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const dtype = entry?.dtype;
      if (dtype !== 'BF16' && dtype !== 'F16' && dtype !== 'F32') {
        throw new SafetensorsError(`${fileName}: tensor "${name}" has dtype ${JSON.stringify(dtype)}; supported are BF16, F16 and F32.`);
      }
      const shape = entry.shape;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
        throw new SafetensorsError(`${fileName}: tensor "${name}" has an invalid shape.`);
      }
      const offsets = entry.data_offsets;
      if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
        throw new SafetensorsError(`${fileName}: tensor "${name}" has invalid data_offsets.`);
      }
      const [begin, end] = offsets as [number, number];
      const elementCount = (shape as number[]).reduce((a, b) => a * b, 1);
      const byteLength = elementCount * bytesPerElement[dtype];
      if (end < begin || end - begin !== byteLength) {
        throw new SafetensorsError(
          `${fileName}: tensor "${name}" claims ${end - begin} bytes but its shape [${shape.join(', ')}] of ${dtype} needs ${byteLength}.`,
        );
      }
      if (end > dataLength) {
        throw new SafetensorsError(
          `${fileName}: tensor "${name}" ends at byte ${dataStart + end}, past the end of the file (${buffer.byteLength} bytes): the file is truncated.`,
        );
      }
      tensors.set(name, { name, dtype, shape: shape as number[], byteOffset: dataStart + begin, byteLength, elementCount });
    }
    checkContiguous(tensors, dataStart, dataLength, fileName);
    return new SafetensorsFile(buffer, tensors, metadata);
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  get(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new SafetensorsError(`The weights have no tensor "${name}".`);
    return info;
  }

  /** Zero-copy view of a tensor's raw bytes. */
  bytes(name: string): Uint8Array {
    const info = this.get(name);
    return new Uint8Array(this.buffer, info.byteOffset, info.byteLength);
  }

  /** The tensor as bf16 bits (a zero-copy view when it is stored as aligned BF16). */
  toBf16(name: string): Uint16Array {
    const info = this.get(name);
    if (info.dtype === 'BF16') {
      if (info.byteOffset % 2 === 0) return new Uint16Array(this.buffer, info.byteOffset, info.elementCount);
      return new Uint16Array(this.bytes(name).slice().buffer);
    }
    return f32ArrayToBf16(this.toF32(name));
  }

  /** The tensor converted to f32. */
  toF32(name: string): Float32Array {
    const info = this.get(name);
    const raw = this.bytes(name).slice();
    if (info.dtype === 'F32') return new Float32Array(raw.buffer);
    if (info.dtype === 'BF16') return bf16ArrayToF32(new Uint16Array(raw.buffer));
    return f16ArrayToF32(new Uint16Array(raw.buffer));
  }
}

function parseMetadata(raw: unknown, fileName: string): Record<string, string> {
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw) || !Object.values(raw).every((value) => typeof value === 'string')) {
    throw new SafetensorsError(`${fileName}: __metadata__ must be an object of strings.`);
  }
  return raw as Record<string, string>;
}

/**
 * As the reference implementation requires: the tensors tile the data section exactly, with no overlap (two tensors
 * sharing bytes means the header lies) and no gap or trailing bytes (a file longer than its header says is corrupt).
 */
function checkContiguous(tensors: Map<string, TensorInfo>, dataStart: number, dataLength: number, fileName: string): void {
  const sorted = [...tensors.values()].sort((a, b) => a.byteOffset - b.byteOffset || a.byteLength - b.byteLength);
  let expectedOffset = dataStart;
  for (const info of sorted) {
    if (info.byteOffset !== expectedOffset) {
      const problem = info.byteOffset < expectedOffset ? 'overlaps the tensor before it' : 'leaves a gap before it';
      throw new SafetensorsError(
        `${fileName}: tensor "${info.name}" starts at data offset ${info.byteOffset - dataStart}, which ${problem} ` +
          `(expected ${expectedOffset - dataStart}): the header's data_offsets are inconsistent.`,
      );
    }
    expectedOffset += info.byteLength;
  }
  if (expectedOffset !== dataStart + dataLength) {
    throw new SafetensorsError(
      `${fileName}: the tensors cover ${expectedOffset - dataStart} data bytes but the file has ${dataLength}: ` +
        'extra bytes after the last tensor (corrupt or not a safetensors file).',
    );
  }
}

function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function f16ArrayToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16ToF32(bits[i]);
  return out;
}

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  data: Uint8Array;
}

export interface SafetensorsLayout {
  /** The 8-byte length prefix followed by the JSON header (padded so the data starts 8-byte aligned). */
  header: Uint8Array;
  /** Absolute file offset of each tensor's data, in the order given. */
  offsets: number[];
  /** Size of the whole file. */
  totalBytes: number;
}

/**
 * Plans a safetensors file: the header bytes and where each tensor's data goes. Lets a writer fill one preallocated
 * buffer or stream tensor by tensor to a file without ever holding the tensors and the file at the same time.
 */
export function safetensorsLayout(
  tensors: { name: string; dtype: SafetensorsDtype; shape: number[] }[],
  metadata: Record<string, string> = { format: 'pt' },
): SafetensorsLayout {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const dataOffsets: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || t.name in header) throw new Error(`Duplicate or reserved tensor name "${t.name}".`);
    const byteLength = t.shape.reduce((a, b) => a * b, 1) * bytesPerElement[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + byteLength] };
    dataOffsets.push(offset);
    offset += byteLength;
  }
  let headerText = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned (zero-copy typed views).
  headerText += ' '.repeat((8 - ((8 + headerText.length) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(headerText);
  const prefixed = new Uint8Array(8 + headerBytes.byteLength);
  new DataView(prefixed.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  prefixed.set(headerBytes, 8);
  return { header: prefixed, offsets: dataOffsets.map((o) => prefixed.byteLength + o), totalBytes: prefixed.byteLength + offset };
}

/** Serialises tensors in the safetensors format (used by the fixture generator and tests). */
export function writeSafetensors(tensors: TensorToWrite[], metadata: Record<string, string> = { format: 'pt' }): Uint8Array {
  for (const t of tensors) {
    const expected = t.shape.reduce((a, b) => a * b, 1) * bytesPerElement[t.dtype];
    if (t.data.byteLength !== expected) throw new Error(`${t.name}: ${t.data.byteLength} bytes, shape needs ${expected}`);
  }
  const layout = safetensorsLayout(tensors, metadata);
  const out = new Uint8Array(layout.totalBytes);
  out.set(layout.header, 0);
  tensors.forEach((t, i) => out.set(t.data, layout.offsets[i]));
  return out;
}
