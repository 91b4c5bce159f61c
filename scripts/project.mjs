// Steps shared by `npm start` and `npm test`: install dependencies when needed, build the app.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = fileURLToPath(new URL('..', import.meta.url));

/** Runs a command in the project root with inherited output; throws with the exit status on failure. */
export function run(command, args, { env = {}, cwd = projectRoot } = {}) {
  const result = spawnSync(command, args, { cwd, stdio: 'inherit', env: { ...process.env, ...env } });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed with exit ${result.status ?? result.signal}`);
  }
}

/** node_modules is missing, or older than package-lock.json (npm rewrites node_modules/.package-lock.json on install). */
export function dependenciesOutdated() {
  const lock = join(projectRoot, 'package-lock.json');
  const installedLock = join(projectRoot, 'node_modules', '.package-lock.json');
  if (!existsSync(join(projectRoot, 'node_modules')) || !existsSync(installedLock)) return true;
  return existsSync(lock) && statSync(installedLock).mtimeMs < statSync(lock).mtimeMs;
}

export function ensureDependencies() {
  if (!dependenciesOutdated()) return;
  process.stdout.write('Installing dependencies (npm install)…\n');
  // onnxruntime-node (pulled in by @huggingface/transformers) would download binaries at install time; we never use it.
  run('npm', ['install', '--no-audit', '--no-fund'], { env: { ONNXRUNTIME_NODE_INSTALL: 'skip' } });
}

export function buildApp() {
  process.stdout.write('Building the app (vite build)…\n');
  run(process.execPath, [join(projectRoot, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--logLevel', 'warn']);
}
