import type { ShaderSource } from './shader-source';

export type PipelineConstants = Record<string, number>;

/** Compiles each (shader, entry point, override constants) once. */
export class PipelineCache {
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();

  constructor(
    private readonly device: GPUDevice,
    private readonly shaderSource: ShaderSource,
  ) {}

  get(shader: string, entryPoint = 'main', constants: PipelineConstants = {}): GPUComputePipeline {
    const key = `${shader}:${entryPoint}:${JSON.stringify(constants, Object.keys(constants).sort())}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      pipeline = this.device.createComputePipeline({
        label: key,
        layout: 'auto',
        compute: { module: this.module(shader), entryPoint, constants },
      });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  private module(shader: string): GPUShaderModule {
    let module = this.modules.get(shader);
    if (!module) {
      module = this.device.createShaderModule({ label: shader, code: this.shaderSource(shader) });
      this.modules.set(shader, module);
    }
    return module;
  }
}
