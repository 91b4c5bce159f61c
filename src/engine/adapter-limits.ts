/**
 * What the adapter itself can do, measured: the speed limits that kernel efficiencies are reported against, so that
 * the benchmark's figures mean the same on SwiftShader and on a real GPU. Kernels in shaders/adapter_limits.wgsl.
 */
import type { GpuContext } from './gpu';
import { GpuTimer } from './gpu-timer';
import { kernelParams } from './params';
import { peakParams, readParams } from './kernel-params';

export interface ComputePeak {
  /** Best of the measured passes, in GFLOP/s (1e9 f32 floating-point operations per second; a multiply-add is 2). */
  peakGflops: number;
  /** Floating-point operations per pass. */
  flopsPerPass: number;
  /** Wall time of each measured pass in ms (submit to queue idle), every grid size in turn. */
  passMs: number[];
}

const peakWorkgroupSize = 256; // PEAK_WORKGROUP in shaders/adapter_limits.wgsl
const peakMaddsPerIteration = 64; // PEAK_MADDS_PER_ITERATION
/**
 * Grid sizes tried: 64 workgroups already keep every CPU core of an emulation (SwiftShader) busy; 2048 fill a large GPU.
 * The best is the adapter's figure.
 */
const peakGrids = [64, 2048];
/** A pass should run this long at least, so that submit and readback overheads stay below a percent or so. */
const targetPassMs = 250;
const maxIterations = 1 << 20;

/**
 * Runs the compute_peak kernel: a calibration pass per grid size that scales the iteration count until a pass takes
 * about targetPassMs, then `passes` rounds over the grid sizes; reports the best rate. Wall clock, not timestamps: the
 * passes are long enough that the difference is noise, and every adapter has a wall clock.
 */
export async function measureComputePeak(ctx: GpuContext, passes = 2): Promise<ComputePeak> {
  const sink = ctx.allocator.create('scratch', 16, GPUBufferUsage.STORAGE, 'compute peak probe sink');
  const pipeline = ctx.pipelines.get('adapter_limits', 'compute_peak');
  // magic: the bits of -1, a sum of positive values never equals it.
  const magic = new Uint32Array(new Float32Array([-1]).buffer)[0];
  const timePass = async (grid: number, iterations: number): Promise<number> => {
    await ctx.finish();
    const started = performance.now();
    ctx.record().dispatch(pipeline, kernelParams(peakParams, { iterations, magic, multiplier: 0.999, addend: 1e-3 }), [sink], grid);
    await ctx.finish();
    return performance.now() - started;
  };
  const passMs: number[] = [];
  let best = 0;
  let flopsPerPass = 0;
  try {
    const iterationsFor = new Map<number, number>();
    for (const grid of peakGrids) {
      let iterations = 64;
      for (;;) {
        const ms = await timePass(grid, iterations);
        if (ms >= targetPassMs / 4 || iterations >= maxIterations) {
          iterations = Math.min(maxIterations, Math.max(1, Math.round((iterations * targetPassMs) / Math.max(ms, 1e-3))));
          break;
        }
        iterations = Math.min(maxIterations, iterations * 8);
      }
      iterationsFor.set(grid, iterations);
    }
    for (let pass = 0; pass < passes; pass++) {
      for (const grid of peakGrids) {
        const iterations = iterationsFor.get(grid) ?? 1;
        const ms = await timePass(grid, iterations);
        const flops = 2 * peakMaddsPerIteration * iterations * grid * peakWorkgroupSize;
        passMs.push(ms);
        const gflops = flops / (ms * 1e6);
        if (gflops > best) {
          best = gflops;
          flopsPerPass = flops;
        }
      }
    }
  } finally {
    ctx.submit();
    ctx.allocator.destroy(sink);
  }
  return { peakGflops: best, flopsPerPass, passMs };
}

export interface ReadBandwidth {
  /** Best of the measured passes, in GB/s (1e9 bytes per second). */
  readGBps: number;
  /** Bytes read per pass. */
  bytes: number;
  /** Time of each measured pass in ms, every grid size in turn (GPU timestamps where the adapter has them, else wall clock to queue idle). */
  passMs: number[];
}

/** At least 256 MiB: larger than any cache, so the figure is memory (or emulation) bandwidth, not cache bandwidth. */
export const defaultReadBytes = 256 * 1024 * 1024;
const readWorkgroupSize = 256; // READ_WORKGROUP in shaders/adapter_limits.wgsl
/**
 * Grid sizes tried: 4096 workgroups fill any GPU several times over; 256 suit CPU emulation (SwiftShader), where fewer,
 * longer-running invocations cost less. The best is the adapter's figure.
 */
const readGrids = [256, 4096];

/**
 * Streams `bytes` through the stream_read kernel (one warm-up pass, then `passes` rounds over the grid sizes) and
 * reports the best rate.
 * A buffer above maxStorageBufferBindingSize is bound in slices, one dispatch each, all in the measured pass.
 */
export async function measureReadBandwidth(ctx: GpuContext, bytes = defaultReadBytes, passes = 2): Promise<ReadBandwidth> {
  if (bytes % 16 !== 0 || bytes <= 0) throw new Error(`measureReadBandwidth: bytes ${bytes} must be a positive multiple of 16`);
  const limit = ctx.device.limits.maxStorageBufferBindingSize;
  const slice = Math.min(bytes, Math.floor(limit / 256) * 256);
  const source = ctx.allocator.create('scratch', bytes, GPUBufferUsage.STORAGE, 'read bandwidth probe source');
  const sink = ctx.allocator.create('scratch', 16, GPUBufferUsage.STORAGE, 'read bandwidth probe sink');
  const timer = ctx.hasTimestampQuery ? new GpuTimer(ctx) : null;
  const pipeline = ctx.pipelines.get('adapter_limits', 'stream_read');
  const recordPass = (grid: number): void => {
    for (let offset = 0; offset < bytes; offset += slice) {
      const size = Math.min(slice, bytes - offset);
      const words = size / 16;
      const workgroups = Math.max(1, Math.min(grid, Math.ceil(words / readWorkgroupSize)));
      // The buffer is zero-filled, so the sum is 0: 1 never matches and the store never happens.
      ctx.record().dispatch(pipeline, kernelParams(readParams, { words, magic: 1 }), [{ buffer: source, offset, size }, sink], workgroups);
    }
  };
  const passMs: number[] = [];
  try {
    recordPass(readGrids[0]);
    await ctx.finish();
    for (let pass = 0; pass < passes; pass++) {
      for (const grid of readGrids) {
        const started = performance.now();
        timer?.begin();
        recordPass(grid);
        timer?.end();
        await ctx.finish();
        passMs.push(timer ? await timer.elapsedMs() : performance.now() - started);
      }
    }
  } finally {
    ctx.submit();
    timer?.destroy();
    ctx.allocator.destroy(source);
    ctx.allocator.destroy(sink);
  }
  const best = Math.min(...passMs);
  return { readGBps: bytes / (best * 1e6), bytes, passMs };
}
