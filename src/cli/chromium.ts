/** How we start Debian's Chromium headless for WebGPU (the e2e tests and `npm run bench -- --browser`). */
import { hasHardwareVulkanDriver } from '../engine/vulkan-drivers';

export const chromiumPath = '/usr/bin/chromium';

/** No network side traffic, nothing remembered between runs. */
const quietFlags = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** WebGPU on SwiftShader (the CPU): what tests use, so that they behave the same on every machine. */
export const swiftShaderChromiumFlags = ['--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--use-webgpu-adapter=swiftshader', ...quietFlags];

/** WebGPU on the machine's GPU through Vulkan when it has a hardware driver, else SwiftShader (benchmarks). */
export function benchmarkChromiumFlags(): string[] {
  return hasHardwareVulkanDriver() ? ['--enable-unsafe-webgpu', '--enable-features=Vulkan', ...quietFlags] : swiftShaderChromiumFlags;
}
