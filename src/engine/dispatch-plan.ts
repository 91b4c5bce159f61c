/**
 * A sequence of dispatches made once and replayed step after step (the decode step records the same ~180 kernels on
 * the same buffers every token). Each dispatch keeps its own 256-byte slot in one uniform buffer and a bind group made
 * once; a replay writes the whole parameter block in one writeBuffer and encodes setPipeline / setBindGroup /
 * dispatchWorkgroups, nothing else: no parameter packing, pipeline lookup or bind-group key per dispatch. What changes
 * between steps (a position, a length, a workgroup count) is set with setParams / setWorkgroups before record().
 */
import { foldWorkgroups, paramSlotBytes, type CapturedDispatch, type GpuContext } from './gpu';

interface PlannedDispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: [number, number, number];
}

export class DispatchPlan {
  private readonly captured: CapturedDispatch[] = [];
  private planned: PlannedDispatch[] = [];
  private staging: Uint8Array | null = null;
  /** The same bytes as u32 words (setParamWords). */
  private stagingWords: Uint32Array | null = null;
  private uniform: GPUBuffer | null = null;

  constructor(private readonly ctx: GpuContext) {}

  /** Appends the dispatches `record` asks for (before seal); returns the index of the first of them. */
  capture(record: () => void): number {
    if (this.uniform) throw new Error('DispatchPlan: capture after seal');
    const first = this.captured.length;
    this.captured.push(...this.ctx.captureDispatches(record));
    return first;
  }

  /** Allocates the parameter slots and makes the bind groups. */
  seal(): void {
    if (this.uniform) return;
    const count = Math.max(1, this.captured.length);
    this.staging = new Uint8Array(count * paramSlotBytes);
    this.stagingWords = new Uint32Array(this.staging.buffer);
    this.uniform = this.ctx.allocator.create('scratch', this.staging.byteLength, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'dispatch plan parameters');
    const uniform = this.uniform;
    this.planned = this.captured.map((dispatch, i) => {
      this.staging?.set(dispatch.params, i * paramSlotBytes);
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: uniform, offset: i * paramSlotBytes, size: paramSlotBytes } }];
      dispatch.buffers.forEach((b, j) => entries.push({ binding: j + 1, resource: 'buffer' in b ? b : { buffer: b } }));
      const bindGroup = this.ctx.device.createBindGroup({ layout: dispatch.pipeline.getBindGroupLayout(0), entries });
      return { pipeline: dispatch.pipeline, bindGroup, workgroups: [...dispatch.workgroups] };
    });
  }

  get size(): number {
    return this.captured.length;
  }

  /** New params for dispatch `index` (at most 256 bytes), written by the next record(). */
  setParams(index: number, params: ArrayBufferView): void {
    if (!this.staging) throw new Error('DispatchPlan: setParams before seal');
    if (params.byteLength > paramSlotBytes) throw new Error('Kernel parameters exceed 256 bytes');
    this.staging.set(new Uint8Array(params.buffer, params.byteOffset, params.byteLength), index * paramSlotBytes);
  }

  /**
   * Rewrites u32 words of dispatch `index`'s params from word `offset` on (paramWordOffset gives a field's): what
   * changes between steps is a few words of a block whose other fields (RoPE tables, shapes) stay as captured.
   */
  setParamWords(index: number, offset: number, words: ArrayLike<number>): void {
    if (!this.stagingWords) throw new Error('DispatchPlan: setParamWords before seal');
    if (offset < 0 || offset + words.length > paramSlotBytes / 4) throw new Error('Kernel parameters exceed 256 bytes');
    const base = index * (paramSlotBytes / 4) + offset;
    for (let i = 0; i < words.length; i++) this.stagingWords[base + i] = words[i];
  }

  /** A new (1-D) workgroup count for dispatch `index`. */
  setWorkgroups(index: number, count: number): void {
    this.planned[index].workgroups = foldWorkgroups(count);
  }

  /**
   * Uploads the parameters and encodes every dispatch into the context's recorder. The previous replay must have been
   * submitted (its commands read the parameters this write replaces; the queue runs them first).
   */
  record(): void {
    this.seal();
    if (!this.uniform || !this.staging) return;
    this.ctx.upload(this.uniform, this.staging);
    const recorder = this.ctx.record();
    for (const { pipeline, bindGroup, workgroups } of this.planned) recorder.replay(pipeline, bindGroup, workgroups);
  }

  destroy(): void {
    if (this.uniform) this.ctx.allocator.destroy(this.uniform);
    this.uniform = null;
    this.staging = null;
    this.stagingWords = null;
    this.planned = [];
  }
}
