/** Runs the project's CLI (src/cli/main.ts through tsx) as a child process, as a person would from the shell. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `npx tsx src/cli/main.ts ...args` in the repository root; `env` replaces the environment (e.g. a private cache). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('npx', ['tsx', 'src/cli/main.ts', ...args], { cwd: repoRoot, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** runCli with its model cache under `scratch`/cache, so that a test neither reads nor fills the user's cache. */
export function runCliWithPrivateCache(scratch: string): (args: string[]) => Promise<CliResult> {
  return (args) => runCli(args, { ...process.env, SPARSEMM_CACHE_DIR: join(scratch, 'cache') });
}
