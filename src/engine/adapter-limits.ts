/**
 * What the adapter itself can do, measured: the speed limits that kernel efficiencies are reported against, so that
 * the benchmark's figures mean the same on SwiftShader and on a real GPU. Kernels in shaders/adapter_limits.wgsl.
 */
import { params, type GpuContext } from './gpu';

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
    ctx.record().dispatch(pipeline, params([iterations, magic, { f: 0.999 }, { f: 1e-3 }]), [sink], grid);
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
