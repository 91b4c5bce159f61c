import type { GpuContext } from './gpu';

/** Brackets GPU work with timestamp queries: an empty pass writes the begin time, another the end time. */
export class GpuTimer {
  private readonly querySet: GPUQuerySet;
  private readonly resolved: GPUBuffer;

  constructor(private readonly ctx: GpuContext) {
    this.querySet = ctx.device.createQuerySet({ type: 'timestamp', count: 2 });
    this.resolved = ctx.allocator.create('scratch', 16, GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, 'timestamps');
  }

  /** Records the begin timestamp into the current encoder (the next kernels are recorded after it). */
  begin(): void {
    const recorder = this.ctx.record();
    recorder.endPass();
    recorder.encoder.beginComputePass({ timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 0 } }).end();
  }

  /** Records the end timestamp and the resolve; submitted by the next read. */
  end(): void {
    const recorder = this.ctx.record();
    recorder.endPass();
    recorder.encoder.beginComputePass({ timestampWrites: { querySet: this.querySet, endOfPassWriteIndex: 1 } }).end();
    recorder.encoder.resolveQuerySet(this.querySet, 0, 2, this.resolved, 0);
  }

  /** Milliseconds between begin and end of the last bracket (after the GPU finished it). */
  async elapsedMs(): Promise<number> {
    const stamps = new BigUint64Array(await this.ctx.read(this.resolved, 16));
    return Number(stamps[1] - stamps[0]) / 1e6;
  }

  destroy(): void {
    this.ctx.allocator.destroy(this.resolved);
    this.querySet.destroy();
  }
}
