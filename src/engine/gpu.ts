import { GpuAllocator } from './allocator';
import { PipelineCache } from './pipelines';
import { ScratchBuffers } from './scratch';
import { checkRequiredLimits } from './limits';
import type { ShaderSource } from './shader-source';

export class WebGpuUnavailableError extends Error {
  /**
   * @param reason what is missing, in one sentence (the app adds its own how-to-enable list)
   * @param hint how to enable it, for consumers without such a list (the CLI, logs)
   */
  constructor(
    readonly reason: string,
    hint: string,
  ) {
    super(`${reason} ${hint}`);
    this.name = 'WebGpuUnavailableError';
  }
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  features: string[];
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  /** The decode GEMV variant the engine chose for this device (chooseGemvVariant). */
  gemv: GemvVariant;
  /** A CPU emulation of a GPU (isSoftwareAdapter): its timings are not GPU timings. */
  software: boolean;
}

/**
 * A CPU implementation of Vulkan / WebGPU (SwiftShader, llvmpipe / lavapipe, Microsoft's Basic Render Driver),
 * recognised by the names its adapter reports: its timings are not GPU timings.
 */
export function isSoftwareAdapter(adapter: Pick<AdapterSummary, 'vendor' | 'architecture' | 'device' | 'description'>): boolean {
  return /swiftshader|llvmpipe|lavapipe|software|basic render/i.test(`${adapter.vendor} ${adapter.architecture} ${adapter.device} ${adapter.description}`);
}

/**
 * How the decode GEMV (shaders/gemv.wgsl) reduces a team's partial sums, chosen once per device: subgroup shuffles
 * where the device has `subgroups`, else a tree in workgroup memory. `team` is the lanes per output feature; with
 * subgroups it must not exceed the smallest subgroup the adapter may use (a team must sit inside one subgroup).
 */
export interface GemvVariant {
  reduction: 'subgroup' | 'workgroup';
  team: number;
}

/** Lanes per output feature: 32 reads 512 contiguous bytes per step on a GPU; subgroups cap it at their smallest size. */
const gemvPreferredTeam = 32;
/** WebGPU guarantees subgroups of at least 4 invocations. */
const smallestSubgroupSize = 4;

export function chooseGemvVariant(hasSubgroups: boolean, subgroupMinSize: number | undefined): GemvVariant {
  if (!hasSubgroups) return { reduction: 'workgroup', team: gemvPreferredTeam };
  const smallest = subgroupMinSize && subgroupMinSize >= smallestSubgroupSize ? subgroupMinSize : smallestSubgroupSize;
  // A power of two no larger than the smallest subgroup (sizes are powers of two; guard against odd reports).
  let team = 1;
  while (team * 2 <= Math.min(smallest, gemvPreferredTeam)) team *= 2;
  return { reduction: 'subgroup', team };
}

export const paramSlotBytes = 256; // minUniformBufferOffsetAlignment is at most 256
const paramArenaSlots = 4096;

/**
 * One GPUDevice with its allocator, pipeline cache and a uniform-parameter arena.
 * Kernels follow one convention: binding 0 is a uniform `Params` struct (written by name: params.ts), bindings 1.. are
 * storage buffers in order.
 */
export class GpuContext {
  readonly allocator: GpuAllocator;
  readonly pipelines: PipelineCache;
  readonly hasTimestampQuery: boolean;
  readonly hasSubgroups: boolean;
  /** The decode GEMV variant of this device (see chooseGemvVariant). */
  readonly gemv: GemvVariant;
  private readonly paramBuffer: GPUBuffer;
  private readonly paramStaging = new Uint8Array(paramSlotBytes * paramArenaSlots);
  private paramSlot = 0;
  private dispatches = 0;
  private recorder: Recorder | null = null;
  private readonly bindGroups = new BindGroupCache();
  /** While set (captureDispatches), Recorder.dispatch describes dispatches here instead of encoding them. */
  private captureSink: CapturedDispatch[] | null = null;
  private readonly buffers: ScratchBuffers;

  private constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterSummary,
    shaderSource: ShaderSource,
  ) {
    this.allocator = new GpuAllocator(device);
    this.pipelines = new PipelineCache(device, shaderSource);
    this.hasTimestampQuery = device.features.has('timestamp-query');
    this.hasSubgroups = device.features.has('subgroups');
    this.gemv = adapter.gemv;
    this.buffers = new ScratchBuffers(this.allocator, () => this.submit());
    this.paramBuffer = this.allocator.create(
      'scratch',
      this.paramStaging.byteLength,
      GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      'kernel parameters',
    );
  }

  /** Asks for the adapter's real buffer limits (the defaults are 128 MiB / 256 MiB, too small for real weights). */
  static async create(gpu: GPU | undefined, shaderSource: ShaderSource): Promise<GpuContext> {
    if (!gpu) {
      throw new WebGpuUnavailableError(
        'This browser has no WebGPU API (navigator.gpu is missing).',
        'Use a recent Chrome or Edge; on Linux start Chrome with --enable-unsafe-webgpu (and --enable-features=Vulkan), or enable chrome://flags/#enable-unsafe-webgpu.',
      );
    }
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) {
      throw new WebGpuUnavailableError(
        'WebGPU is present but no GPU adapter was found.',
        'Check chrome://gpu; on machines without a GPU start Chrome with --enable-unsafe-webgpu --enable-unsafe-swiftshader.',
      );
    }
    // Refuse an adapter below what our kernels need before creating anything, naming the limit.
    checkRequiredLimits(adapter.limits);
    const wanted: GPUFeatureName[] = ['timestamp-query', 'subgroups'];
    const requiredFeatures = wanted.filter((feature) => adapter.features.has(feature));
    const limits = adapter.limits;
    const device = await adapter.requestDevice({
      requiredFeatures,
      requiredLimits: {
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
        maxBufferSize: limits.maxBufferSize,
        maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
        maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
      },
    });
    const info = adapter.info;
    const gemv = chooseGemvVariant(device.features.has('subgroups'), info?.subgroupMinSize);
    const names = { vendor: info?.vendor ?? '', architecture: info?.architecture ?? '', device: info?.device ?? '', description: info?.description ?? '' };
    const summary: AdapterSummary = {
      ...names,
      software: isSoftwareAdapter(names),
      features: [...adapter.features].map(String).sort(),
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      maxBufferSize: device.limits.maxBufferSize,
      gemv,
    };
    return new GpuContext(device, summary, shaderSource);
  }

  /** Starts (or continues) recording kernels into one command encoder. */
  record(): Recorder {
    if (!this.recorder) this.recorder = new Recorder(this, this.device.createCommandEncoder());
    return this.recorder;
  }

  /** Submits what was recorded; parameters are uploaded in one write. */
  submit(): void {
    const recorder = this.recorder;
    if (!recorder) return;
    this.recorder = null;
    recorder.endPass();
    if (this.paramSlot > 0) {
      this.device.queue.writeBuffer(this.paramBuffer, 0, this.paramStaging, 0, this.paramSlot * paramSlotBytes);
    }
    this.device.queue.submit([recorder.encoder.finish()]);
    this.paramSlot = 0;
  }

  /**
   * Runs `record` and returns the dispatches it asked for, described instead of encoded (nothing is recorded or counted):
   * a DispatchPlan keeps them to replay step after step.
   */
  captureDispatches(record: () => void): CapturedDispatch[] {
    if (this.captureSink) throw new Error('captureDispatches does not nest');
    const sink: CapturedDispatch[] = [];
    this.captureSink = sink;
    try {
      record();
    } finally {
      this.captureSink = null;
    }
    return sink;
  }

  /** @internal The capture in progress (Recorder.dispatch). */
  get capturing(): CapturedDispatch[] | null {
    return this.captureSink;
  }

  /** Reserves a uniform slot for one dispatch. Submits early when the arena is full. */
  allocParams(bytes: ArrayBufferView): GPUBufferBinding {
    if (bytes.byteLength > paramSlotBytes) throw new Error('Kernel parameters exceed 256 bytes');
    if (this.paramSlot >= paramArenaSlots) throw new Error('Too many dispatches in one submit; call submit() more often');
    const offset = this.paramSlot * paramSlotBytes;
    this.paramStaging.set(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset);
    this.paramSlot += 1;
    return { buffer: this.paramBuffer, offset, size: paramSlotBytes };
  }

  /**
   * A 'scratch' buffer of at least `bytes` kept for `purpose` on this device, growing only (what was recorded is
   * submitted before an outgrown one is freed). Kernels' intermediates that live between dispatches of one call.
   */
  scratch(purpose: string, bytes: number): GPUBuffer {
    return this.buffers.scratch(purpose, bytes);
  }

  /** A small storage buffer to bind where a kernel expects a binding it does not read (a flag of its parameters says so). */
  placeholder(): GPUBuffer {
    return this.buffers.placeholder();
  }

  /** The buffer `make` creates for `key`, made once on this device (a constant table such as RoPE's inverse frequencies). */
  constant(key: string, make: () => GPUBuffer): GPUBuffer {
    return this.buffers.constant(key, make);
  }

  /** A bind group for these exact resources, reused across calls (decode steps repeat the same ones every token). */
  bindGroup(pipeline: GPUComputePipeline, entries: GPUBindGroupEntry[]): GPUBindGroup {
    return this.bindGroups.get(this.device, pipeline, entries);
  }

  get pendingDispatches(): number {
    return this.paramSlot;
  }

  /** Compute dispatches recorded on this device so far (the benchmark's dispatchesPerStep is a difference of two). */
  get dispatchCount(): number {
    return this.dispatches;
  }

  /** @internal Counts one dispatch (Recorder.dispatch). */
  countDispatch(): void {
    this.dispatches += 1;
  }

  upload(buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    this.device.queue.writeBuffer(buffer, offset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Copies a buffer back to the CPU (tests, sampling results, probes). Submits pending work first. */
  async read(buffer: GPUBuffer, byteLength = buffer.size, offset = 0): Promise<ArrayBuffer> {
    const size = Math.ceil(byteLength / 4) * 4;
    const staging = this.device.createBuffer({ size, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
    const recorder = this.record();
    recorder.endPass();
    recorder.encoder.copyBufferToBuffer(buffer, offset, staging, 0, size);
    this.submit();
    await staging.mapAsync(GPUMapMode.READ);
    const copy = staging.getMappedRange().slice(0, byteLength);
    staging.unmap();
    staging.destroy();
    return copy;
  }

  async readF32(buffer: GPUBuffer, count: number, offsetElements = 0): Promise<Float32Array> {
    return new Float32Array(await this.read(buffer, count * 4, offsetElements * 4));
  }

  async readU32(buffer: GPUBuffer, count: number, offsetElements = 0): Promise<Uint32Array> {
    return new Uint32Array(await this.read(buffer, count * 4, offsetElements * 4));
  }

  /** Waits until the GPU has finished everything submitted so far. */
  async finish(): Promise<void> {
    this.submit();
    await this.device.queue.onSubmittedWorkDone();
  }

  destroy(): void {
    this.allocator.destroyAll();
    this.device.destroy();
  }
}

/** A dispatch described instead of encoded (GpuContext.captureDispatches). */
export interface CapturedDispatch {
  pipeline: GPUComputePipeline;
  /** The params block (binding 0), copied. */
  params: Uint8Array;
  buffers: (GPUBuffer | GPUBufferBinding)[];
  workgroups: [number, number, number];
}

/** Records compute dispatches into one pass of one encoder. */
export class Recorder {
  private pass: GPUComputePassEncoder | null = null;

  constructor(
    private readonly ctx: GpuContext,
    readonly encoder: GPUCommandEncoder,
  ) {}

  /**
   * Dispatches `pipeline` with `params` at binding 0 and `buffers` at bindings 1..n.
   * Workgroup counts above the 65535 limit are folded into y; kernels recover the linear id
   * as `wid.x + wid.y * num_workgroups.x`.
   */
  dispatch(pipeline: GPUComputePipeline, params: ArrayBufferView, buffers: (GPUBuffer | GPUBufferBinding)[], workgroups: number | [number, number, number]): void {
    const sink = this.ctx.capturing;
    if (sink) {
      const copy = new Uint8Array(params.byteLength);
      copy.set(new Uint8Array(params.buffer, params.byteOffset, params.byteLength));
      sink.push({ pipeline, params: copy, buffers, workgroups: typeof workgroups === 'number' ? foldWorkgroups(workgroups) : workgroups });
      return;
    }
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: this.ctx.allocParams(params) }];
    buffers.forEach((b, i) => entries.push({ binding: i + 1, resource: 'buffer' in b ? b : { buffer: b } }));
    const bindGroup = this.ctx.bindGroup(pipeline, entries);
    const pass = this.beginPass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    const [x, y, z] = typeof workgroups === 'number' ? foldWorkgroups(workgroups) : workgroups;
    if (x > 0 && y > 0 && z > 0) {
      pass.dispatchWorkgroups(x, y, z);
      this.ctx.countDispatch();
    }
  }

  /** Dispatches with a bind group made ahead (DispatchPlan): no parameter slot, no bind-group lookup. */
  replay(pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, workgroups: readonly [number, number, number]): void {
    const pass = this.beginPass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    const [x, y, z] = workgroups;
    if (x > 0 && y > 0 && z > 0) {
      pass.dispatchWorkgroups(x, y, z);
      this.ctx.countDispatch();
    }
  }

  /** Copies between buffers (ends the compute pass; the next dispatch opens a new one). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    this.endPass();
    this.encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
  }

  endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  private beginPass(): GPUComputePassEncoder {
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    return this.pass;
  }
}

export function foldWorkgroups(count: number): [number, number, number] {
  const max = 65535;
  if (count <= max) return [count, 1, 1];
  const y = Math.ceil(count / max);
  return [Math.ceil(count / y), y, 1];
}

/**
 * Bind groups keyed by pipeline and the exact buffers, offsets and sizes bound. Creating one per dispatch costs CPU time
 * on every token (a decode step records hundreds of dispatches), while a decode step binds the same buffers, and the
 * same parameter slots of the uniform arena, token after token. Keys use an id per GPUBuffer object, never reused, so a
 * destroyed buffer's entries are simply never asked for again; they age out of the bounded map.
 */
class BindGroupCache {
  private static readonly maxEntries = 4096;
  private readonly groups = new Map<string, GPUBindGroup>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private readonly pipelineIds = new WeakMap<GPUComputePipeline, number>();
  private nextId = 1;

  get(device: GPUDevice, pipeline: GPUComputePipeline, entries: GPUBindGroupEntry[]): GPUBindGroup {
    let key = String(this.idOf(this.pipelineIds, pipeline));
    for (const entry of entries) {
      const binding = entry.resource as GPUBufferBinding;
      key += `|${this.idOf(this.bufferIds, binding.buffer)}:${binding.offset ?? 0}:${binding.size ?? -1}`;
    }
    let group = this.groups.get(key);
    if (!group) {
      group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
      if (this.groups.size >= BindGroupCache.maxEntries) {
        // Drop the oldest quarter (Map keeps insertion order): entries of freed buffers go first.
        let drop = BindGroupCache.maxEntries / 4;
        for (const old of this.groups.keys()) {
          this.groups.delete(old);
          if (--drop === 0) break;
        }
      }
      this.groups.set(key, group);
    }
    return group;
  }

  private idOf<T extends object>(ids: WeakMap<T, number>, object: T): number {
    let id = ids.get(object);
    if (id === undefined) {
      id = this.nextId++;
      ids.set(object, id);
    }
    return id;
  }
}
