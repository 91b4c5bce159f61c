import type { ShaderSource } from './shader-source';

export type PipelineConstants = Record<string, number>;

/** One compute pipeline: a shaders/ file, its entry point and the override constants it is specialised with. */
export interface PipelineSpec {
  shader: string;
  entryPoint?: string;
  constants?: PipelineConstants;
  /**
   * Another shaders/ file placed before the shader's text in the same module: a kernel family whose body is shared and
   * whose one helper differs by adapter (the GEMV's team reduction: subgroups or workgroup memory) keeps one body.
   * Several files are joined with '+' ('gemv_team_subgroup+rope_angle'), placed in that order.
   */
  prelude?: string;
}

/**
 * How prepare() compiles: 'async' with createComputePipelineAsync (the default: in a browser the GPU process compiles
 * while the worker stays responsive), 'sync' with createComputePipeline one after another, still at load. dawn.node on
 * SwiftShader spends about 2.5x the CPU time on the async path (31 pipelines of the 256M shape: 42 s async against 20 s
 * sync on a 2-core machine, one run each), so the Node context prepares synchronously.
 */
export type PipelinePreparation = 'async' | 'sync';

/** How many pipelines the cache has compiled, and how: `onFirstUse` ones blocked the dispatch that needed them. */
export interface PipelineCompilations {
  /** Compiled ahead by prepare() (at model load, before any question). */
  prepared: number;
  /** Compiled synchronously by get() when a dispatch asked for a pipeline nobody prepared. */
  onFirstUse: number;
}

/**
 * Compiles each (shader, entry point, override constants) once. prepare() compiles a list asynchronously ahead of use
 * (model load); get() returns the compiled pipeline, compiling it synchronously only when it was not prepared. The
 * counters make "the first question compiles nothing" checkable.
 */
export class PipelineCache {
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly counts: PipelineCompilations = { prepared: 0, onFirstUse: 0 };
  preparation: PipelinePreparation = 'async';

  constructor(
    private readonly device: GPUDevice,
    private readonly shaderSource: ShaderSource,
  ) {}

  get compilations(): Readonly<PipelineCompilations> {
    return { ...this.counts };
  }

  get(shader: string, entryPoint = 'main', constants: PipelineConstants = {}, prelude?: string): GPUComputePipeline {
    const key = pipelineKey({ shader, entryPoint, constants, prelude });
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      pipeline = this.device.createComputePipeline(this.descriptor(key, { shader, entryPoint, constants, prelude }));
      this.pipelines.set(key, pipeline);
      this.counts.onFirstUse += 1;
    }
    return pipeline;
  }

  /**
   * Compiles every spec not compiled yet, reporting (done, total) as each finishes; with preparation 'async' all at
   * once with createComputePipelineAsync (the driver may compile them in parallel). A spec that does not compile
   * rejects with its name.
   */
  async prepare(specs: readonly PipelineSpec[], onCompiled?: (done: number, total: number) => void): Promise<void> {
    const wanted = new Map<string, PipelineSpec>();
    for (const spec of specs) {
      const key = pipelineKey(spec);
      if (!this.pipelines.has(key)) wanted.set(key, spec);
    }
    let done = 0;
    onCompiled?.(0, wanted.size);
    if (this.preparation === 'sync') {
      for (const [key, spec] of wanted) {
        if (this.pipelines.has(key)) continue;
        this.pipelines.set(key, this.device.createComputePipeline(this.descriptor(key, spec)));
        this.counts.prepared += 1;
        done += 1;
        onCompiled?.(done, wanted.size);
      }
      return;
    }
    await Promise.all(
      [...wanted].map(async ([key, spec]) => {
        let pipeline: GPUComputePipeline;
        try {
          pipeline = await this.device.createComputePipelineAsync(this.descriptor(key, spec));
        } catch (error) {
          throw new Error(`Kernel ${key} did not compile: ${error instanceof Error ? error.message : String(error)}`);
        }
        // A dispatch may have compiled it synchronously meanwhile; keep that one.
        if (!this.pipelines.has(key)) {
          this.pipelines.set(key, pipeline);
          this.counts.prepared += 1;
        }
        done += 1;
        onCompiled?.(done, wanted.size);
      }),
    );
  }

  private descriptor(key: string, spec: PipelineSpec): GPUComputePipelineDescriptor {
    return {
      label: key,
      layout: 'auto',
      compute: { module: this.module(spec.shader, spec.prelude), entryPoint: spec.entryPoint ?? 'main', constants: spec.constants ?? {} },
    };
  }

  private module(shader: string, prelude?: string): GPUShaderModule {
    const key = prelude ? `${prelude}+${shader}` : shader;
    let module = this.modules.get(key);
    if (!module) {
      const code = [...(prelude ? prelude.split('+') : []), shader].map((name) => this.shaderSource(name)).join('\n');
      module = this.device.createShaderModule({ label: key, code });
      this.modules.set(key, module);
    }
    return module;
  }

}

function pipelineKey(spec: PipelineSpec): string {
  const constants = spec.constants ?? {};
  const module = spec.prelude ? `${spec.prelude}+${spec.shader}` : spec.shader;
  return `${module}:${spec.entryPoint ?? 'main'}:${JSON.stringify(constants, Object.keys(constants).sort())}`;
}
