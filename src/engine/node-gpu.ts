import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, globals } from 'webgpu';
import { GpuContext } from './gpu';
import { nodeShaderSource } from './shaders-node';
import { hasHardwareVulkanDriver } from './vulkan-drivers';

let liveInstance: GPU | null = null;

const swiftshaderIcd = '/usr/lib/chromium/vk_swiftshader_icd.json';
/**
 * WebGPU in Node through dawn.node. On machines without a GPU driver we point Vulkan at the
 * SwiftShader that Debian's chromium package ships (Dawn rejects Mesa's lavapipe).
 */
export async function createNodeGpuContext(): Promise<GpuContext> {
  if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && !hasHardwareVulkanDriver()) {
    if (!existsSync(swiftshaderIcd)) {
      throw new Error(
        `No Vulkan driver found and no SwiftShader at ${swiftshaderIcd}. Install it with: apt-get install -y chromium libvulkan1`,
      );
    }
    process.env.VK_ICD_FILENAMES = swiftshaderIcd;
  }
  // Dawn's windowing probe prints "XDG_RUNTIME_DIR is invalid" on headless machines; give it a private one.
  process.env.XDG_RUNTIME_DIR ??= mkdtempSync(join(tmpdir(), 'sparsemm-xdg-'));
  Object.assign(globalThis, globals);
  // Keep the dawn instance referenced for the life of the process: if it is garbage-collected,
  // dawn frees the instance under live devices and the process crashes in its event loop.
  liveInstance ??= create([]);
  const gpu = liveInstance;
  try {
    const ctx = await GpuContext.create(gpu, nodeShaderSource);
    // dawn.node's createComputePipelineAsync costs about 2.5x the CPU of the sync path (see PipelinePreparation).
    ctx.pipelines.preparation = 'sync';
    return ctx;
  } catch (error) {
    const hint = existsSync('/usr/lib/x86_64-linux-gnu/libvulkan.so.1') || existsSync('/usr/lib/aarch64-linux-gnu/libvulkan.so.1')
      ? ''
      : ' (libvulkan.so.1 is missing: apt-get install -y libvulkan1)';
    throw new Error(`${(error as Error).message}${hint}`);
  }
}
