import type { GpuContext } from './gpu';

/** resolveQuerySet's destination offset must be a multiple of 256 bytes. */
const resolveAlignment = 256;

/**
 * Brackets GPU work with timestamp queries: an empty pass writes the begin time, another the end time. `brackets`
 * pairs may be in flight at once (a pipelined decode times each of its steps in their own pair).
 */
export class GpuTimer {
  private readonly querySet: GPUQuerySet;
  private readonly resolved: GPUBuffer;

  constructor(
    private readonly ctx: GpuContext,
    readonly brackets = 1,
  ) {
    if (!Number.isInteger(brackets) || brackets < 1) throw new Error(`GpuTimer: brackets must be a positive integer, got ${brackets}`);
    this.querySet = ctx.device.createQuerySet({ type: 'timestamp', count: 2 * brackets });
    this.resolved = ctx.allocator.create('scratch', brackets * resolveAlignment, GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, 'timestamps');
  }

  /** Records the begin timestamp of `bracket` into the current encoder (the next kernels are recorded after it). */
  begin(bracket = 0): void {
    const recorder = this.ctx.record();
    recorder.endPass();
    recorder.encoder.beginComputePass({ timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * bracket } }).end();
  }

  /** Records the end timestamp of `bracket` and its resolve; submitted with the rest of the encoder. */
  end(bracket = 0): void {
    const recorder = this.ctx.record();
    recorder.endPass();
    recorder.encoder.beginComputePass({ timestampWrites: { querySet: this.querySet, endOfPassWriteIndex: 2 * bracket + 1 } }).end();
    recorder.encoder.resolveQuerySet(this.querySet, 2 * bracket, 2, this.resolved, bracket * resolveAlignment);
  }

  /** Records a copy of `bracket`'s two u64 timestamps (16 bytes, ns) to `destination` at `offset` (a readback slot). */
  copyTo(bracket: number, destination: GPUBuffer, offset: number): void {
    this.ctx.record().copy(this.resolved, bracket * resolveAlignment, destination, offset, 16);
  }

  /** Milliseconds between begin and end of the last bracket 0 (after the GPU finished it). */
  async elapsedMs(): Promise<number> {
    const stamps = new BigUint64Array(await this.ctx.read(this.resolved, 16));
    return Number(stamps[1] - stamps[0]) / 1e6;
  }

  destroy(): void {
    this.ctx.allocator.destroy(this.resolved);
    this.querySet.destroy();
  }
}
