// Checks the system packages the tests need: Chromium (with its SwiftShader Vulkan ICD) for the e2e
// tests, libvulkan.so.1 for dawn.node, and ffmpeg (ffmpeg and ffprobe) that the video tests and the CLI's
// `generate --video` decode frames with. Installs them with apt-get when running as root;
// otherwise exits non-zero and prints the command to run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

export const chromiumPath = '/usr/bin/chromium';
export const swiftshaderIcdPath = '/usr/lib/chromium/vk_swiftshader_icd.json';
export const installCommand = 'apt-get update && apt-get install -y chromium libvulkan1 ffmpeg';

const libvulkanDirs = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'];

function hasLibvulkan() {
  if (libvulkanDirs.some((dir) => existsSync(`${dir}/libvulkan.so.1`))) return true;
  const ldconfig = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' });
  return ldconfig.status === 0 && /libvulkan\.so\.1\b/.test(ldconfig.stdout);
}

function hasCommand(name) {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/** @returns {string[]} what is missing, in words */
export function missingSystemParts() {
  const missing = [];
  if (!existsSync(chromiumPath)) missing.push(`Chromium (${chromiumPath})`);
  if (!existsSync(swiftshaderIcdPath)) missing.push(`Chromium's SwiftShader Vulkan driver (${swiftshaderIcdPath})`);
  if (!hasLibvulkan()) missing.push('the Vulkan loader libvulkan.so.1 (package libvulkan1)');
  if (!hasCommand('ffmpeg') || !hasCommand('ffprobe')) missing.push('ffmpeg and ffprobe (package ffmpeg)');
  return missing;
}

/** Returns true when everything is present (after installing it if it could). */
export function ensureSystem({ log = (line) => process.stdout.write(`${line}\n`) } = {}) {
  let missing = missingSystemParts();
  if (missing.length === 0) return true;
  log(`Missing: ${missing.join('; ')}.`);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && hasCommand('apt-get')) {
    log(`Installing: ${installCommand}`);
    const result = spawnSync('sh', ['-c', installCommand], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    if (result.status !== 0) {
      log(`The install failed (exit ${result.status}). Run it yourself: ${installCommand}`);
      return false;
    }
    missing = missingSystemParts();
    if (missing.length === 0) return true;
    log(`Still missing after the install: ${missing.join('; ')}.`);
    return false;
  }
  log(`Install them with (as root): ${installCommand}`);
  return false;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (ensureSystem()) process.stdout.write('System check: Chromium, SwiftShader, libvulkan and ffmpeg are present.\n');
  else process.exit(1);
}
