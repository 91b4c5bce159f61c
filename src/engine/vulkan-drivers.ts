/** Whether this machine has a hardware Vulkan driver (Node only; no WebGPU import, so scripts can use it cheaply). */
import { existsSync, readdirSync } from 'node:fs';

const icdDirs = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d', '/usr/local/nvidia/share/vulkan/icd.d'];

/** A hardware Vulkan driver: an NVIDIA ICD, or a render node with Mesa's drivers (lavapipe alone does not count). */
export function hasHardwareVulkanDriver(): boolean {
  const nvidia = icdDirs.some((dir) => existsSync(dir) && readdirSync(dir).some((f) => f.startsWith('nvidia')));
  const renderNode = existsSync('/dev/dri') && readdirSync('/dev/dri').some((f) => f.startsWith('renderD'));
  return nvidia || renderNode;
}
