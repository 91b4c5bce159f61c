/**
 * GPU memory faults without a GPU: a fake GPUDevice whose out-of-memory error scope reports an error for chosen
 * buffers. The allocator must turn it into a GpuOutOfMemoryError naming the buffer, free what it made, and keep its
 * byte counts right; uploading weights must roll back every buffer it made when one allocation fails.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GpuAllocator, GpuOutOfMemoryError } from '../../src/engine/allocator';
import type { GpuContext } from '../../src/engine/gpu';
import { checkPlannedFit, GpuWeights, WeightTooLargeError } from '../../src/engine/weights';
import { weightTensorBytes } from '../../src/model-io/quantize';
import { SafetensorsFile, writeSafetensors } from '../../src/model-io/safetensors';

const storageUsage = 0x80 | 0x08; // STORAGE | COPY_DST, as the WebGPU constants define them

interface FakeBuffer {
  size: number;
  label: string;
  destroyed: boolean;
  destroy(): void;
}

/** The shape of the error popErrorScope resolves with (GPUOutOfMemoryError is a GPUError with a message). */
class FakeOutOfMemoryError {
  constructor(readonly message: string) {}
}

/** Records buffers and error scopes; buffers whose label matches `outOfMemory` fail like an exhausted GPU. */
class FakeDevice {
  readonly limits = { maxBufferSize: 1 << 20, maxStorageBufferBindingSize: 1 << 19 };
  readonly buffers: FakeBuffer[] = [];
  readonly scopeLog: string[] = [];
  private readonly scopes: (FakeOutOfMemoryError | null)[] = [];

  constructor(private readonly outOfMemory: (label: string) => boolean = () => false) {}

  pushErrorScope(filter: string): void {
    this.scopeLog.push(`push ${filter}`);
    this.scopes.push(null);
  }

  async popErrorScope(): Promise<FakeOutOfMemoryError | null> {
    this.scopeLog.push('pop');
    if (this.scopes.length === 0) throw new Error('popErrorScope without a scope');
    return this.scopes.pop() ?? null;
  }

  createBuffer(descriptor: { size: number; usage: number; label?: string }): FakeBuffer {
    const label = descriptor.label ?? '';
    const buffer: FakeBuffer = {
      size: descriptor.size,
      label,
      destroyed: false,
      destroy() {
        this.destroyed = true;
      },
    };
    this.buffers.push(buffer);
    // WebGPU returns an (invalid) buffer and reports the failure to the innermost error scope.
    if (this.outOfMemory(label) && this.scopes.length > 0) {
      this.scopes[this.scopes.length - 1] = new FakeOutOfMemoryError(`Failed to allocate ${descriptor.size} bytes`);
    }
    return buffer;
  }
}

function allocatorOn(device: FakeDevice): GpuAllocator {
  return new GpuAllocator(device as unknown as GPUDevice);
}

describe('GpuAllocator.createChecked and the out-of-memory error scope', () => {
  it('turns an out-of-memory error into GpuOutOfMemoryError naming the buffer, and frees it', async () => {
    const device = new FakeDevice((label) => label === 'kv cache layer 0');
    const allocator = allocatorOn(device);
    const allocation = allocator.createChecked('kv', 3 * 2 ** 18, storageUsage, 'kv cache layer 0');
    await expect(allocation).rejects.toThrow(GpuOutOfMemoryError);
    await expect(allocation).rejects.toThrow('The GPU ran out of memory allocating kv cache layer 0 (0.8 MiB).');
    expect(device.buffers).toHaveLength(1);
    expect(device.buffers[0].destroyed).toBe(true);
    expect(allocator.bytesByCategory()).toEqual({ weights: 0, kv: 0, activations: 0, scratch: 0, imageFeatures: 0 });
    expect(allocator.liveBufferCount()).toBe(0);
    // The scope it pushed is the one it popped: nothing is left open for later errors to land in.
    expect(device.scopeLog).toEqual(['push out-of-memory', 'pop']);
  });

  it('keeps and counts the buffer when the scope reports no error', async () => {
    const device = new FakeDevice();
    const allocator = allocatorOn(device);
    const buffer = await allocator.createChecked('weights', 1001, storageUsage, 'w');
    expect((buffer as unknown as FakeBuffer).size).toBe(1004); // rounded up to 4 bytes
    expect(allocator.bytesByCategory().weights).toBe(1004);
    expect(allocator.liveBufferCount()).toBe(1);
    // A later failure leaves the earlier buffer alone.
    const failing = new FakeDevice((label) => label === 'big');
    const other = allocatorOn(failing);
    await other.createChecked('weights', 8, storageUsage, 'small');
    await expect(other.createChecked('activations', 8, storageUsage, 'big')).rejects.toThrow(GpuOutOfMemoryError);
    expect(other.bytesByCategory()).toEqual({ weights: 8, kv: 0, activations: 0, scratch: 0, imageFeatures: 0 });
  });

  it('refuses a buffer above maxBufferSize before asking the device', () => {
    const device = new FakeDevice();
    const allocator = allocatorOn(device);
    expect(() => allocator.create('kv', (1 << 20) + 4, storageUsage, 'huge cache')).toThrow(
      `huge cache needs ${(1 << 20) + 4} bytes, above this GPU's maxBufferSize (${1 << 20}).`,
    );
    expect(device.buffers).toEqual([]);
  });
});

describe('GpuWeights.upload on a GPU that runs out of memory', () => {
  beforeEach(() => {
    // Node has no WebGPU globals; weights.ts reads GPUBufferUsage.STORAGE / COPY_DST.
    vi.stubGlobal('GPUBufferUsage', { STORAGE: 0x80, COPY_DST: 0x08 });
  });
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  function weightsFile(elements: number[]): SafetensorsFile {
    const bytes = writeSafetensors(
      elements.map((count, i) => ({ name: `t${i}`, dtype: 'BF16' as const, shape: [count], data: new Uint8Array(count * 2) })),
    );
    return SafetensorsFile.parse(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  }

  function fakeContext(device: FakeDevice): { ctx: GpuContext; allocator: GpuAllocator; uploads: string[] } {
    const allocator = allocatorOn(device);
    const uploads: string[] = [];
    const ctx = {
      device,
      allocator,
      upload: (buffer: FakeBuffer) => uploads.push(buffer.label),
    } as unknown as GpuContext;
    return { ctx, allocator, uploads };
  }

  it('a failed allocation half-way destroys every weight buffer made so far and reports the tensor', async () => {
    const device = new FakeDevice((label) => label === 't2');
    const { ctx, allocator, uploads } = fakeContext(device);
    await expect(GpuWeights.upload(ctx, weightsFile([16, 32, 64, 8]), ['t0', 't1', 't2', 't3'])).rejects.toThrow(
      'The GPU ran out of memory allocating t2 (0.0 MiB).',
    );
    expect(device.buffers.map((b) => b.label)).toEqual(['t0', 't1', 't2']);
    expect(device.buffers.every((b) => b.destroyed)).toBe(true);
    expect(uploads).toEqual(['t0', 't1']);
    expect(allocator.liveBufferCount()).toBe(0);
    expect(allocator.bytesByCategory().weights).toBe(0);
  });

  it('out of memory while uploading q8 weights says what each smaller format needs and which to choose', async () => {
    const device = new FakeDevice((label) => label === 't1');
    const { ctx, allocator } = fakeContext(device);
    const bytes = weightTensorBytes('q8', 64, 32);
    const tensors = ['t0', 't1'].map((name) => ({ name, source: name, format: 'q8' as const, shape: [64, 32], bytes }));
    const byFormat = { bf16: 4 * 64 * 32 * 2, q8: 2 * bytes, q4: 2 * weightTensorBytes('q4', 64, 32) };
    const upload = GpuWeights.uploadPlan(ctx, weightsFile([64 * 32, 64 * 32]), tensors, byFormat);
    await expect(upload).rejects.toThrow(GpuOutOfMemoryError);
    await expect(upload).rejects.toThrow(/^The GPU ran out of memory allocating t1 \(0\.0 MiB\)\. The weights in q8 need 0\.0 MiB; q4 needs 0\.0 MiB: choose q4 \(fewer bytes per weight\)\.$/);
    expect(allocator.liveBufferCount()).toBe(0);
  });

  it('a bf16 tensor above the binding limit that q8 / q4 would shrink below it says so', () => {
    const limits = { maxStorageBufferBindingSize: 1 << 20, maxBufferSize: 1 << 20 };
    const rows = 1024;
    const cols = 768; // bf16: 1.5 MiB; q8: 0.8 MiB; q4: 0.4 MiB
    const tensor = { name: 'lm_head.weight', source: 'lm_head.weight', format: 'bf16' as const, shape: [rows, cols], bytes: rows * cols * 2 };
    expect(() => checkPlannedFit(limits, [tensor])).toThrow(
      `Tensor "lm_head.weight" [1024, 768] needs ${rows * cols * 2} bytes as bf16, above this GPU's maxStorageBufferBindingSize (1048576 bytes). It would fit as q8 or q4: load the model with that weight format.`,
    );
    // One that no format shrinks enough, and a quantized one: no advice to switch.
    expect(() => checkPlannedFit(limits, [{ ...tensor, shape: [4096, 1024], bytes: 4096 * 1024 * 2 }])).toThrow(/as bf16, .*\. This model cannot run on this adapter\.$/);
    expect(() => checkPlannedFit(limits, [{ ...tensor, format: 'q4', shape: [8192, 1024], bytes: 8192 * 1024 * 0.5625 }])).toThrow(/as q4, .*This model cannot run on this adapter\.$/);
  });

  it('a tensor above maxStorageBufferBindingSize is refused before any buffer is made', async () => {
    const device = new FakeDevice();
    const { ctx } = fakeContext(device);
    const tooBig = (1 << 19) / 2 + 2; // bf16 elements: one word past the binding limit
    const upload = GpuWeights.upload(ctx, weightsFile([16, tooBig]), ['t0', 't1']);
    await expect(upload).rejects.toThrow(WeightTooLargeError);
    await expect(upload).rejects.toThrow(/Tensor "t1" \[\d+\] needs \d+ bytes as bf16, above this GPU's maxStorageBufferBindingSize \(524288 bytes\)/);
    expect(device.buffers).toEqual([]);
  });
});
