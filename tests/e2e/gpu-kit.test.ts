/**
 * The GPU kit end to end: `npm run gpu-kit` builds it (downloads cached in .gpu-kit-cache/), then its run.sh runs
 * the quick benchmark and one generate on the tiny model with SwiftShader (--allow-software), through the bundled CLI
 * and the kit's own Node (a `node` on PATH that fails proves the machine's Node is never used).
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDump } from '../../src/cli/dump';
import type { GenerateReport } from '../../src/cli/generate';
import type { BenchmarkReport } from '../../src/engine/benchmark';
import { hasHardwareVulkanDriver } from '../../src/engine/vulkan-drivers';

const root = join(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'sparsemm-gpu-kit-test-'));
const kitDir = join(work, 'kit');
const noSystemNode = join(work, 'no-system-node');

interface Finished {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command in its own process group; past `deadlineMs` the whole group is killed (run.sh's node included, so a
 * timed-out test leaves nothing running) and the result says so.
 */
function runProcess(command: string, args: string[], env: NodeJS.ProcessEnv = {}, deadlineMs = 380_000): Promise<Finished> {
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      stderr += `\n[test] ${command} ran past ${deadlineMs / 1000} s: killed its process group\n`;
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    }, deadlineMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolvePromise({ code: 127, stdout, stderr: `${stderr}${error.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

/** run.sh with the kit unpacked under the test's folder and a failing `node` first on PATH. */
function runKit(args: string[], deadlineMs: number): Promise<Finished> {
  return runProcess(join(kitDir, 'run.sh'), args, {
    SPARSEMM_KIT_TMP: join(work, 'unpacked'),
    PATH: `${noSystemNode}:${process.env.PATH ?? ''}`,
  }, deadlineMs);
}

let build: Finished;

beforeAll(async () => {
  mkdirSync(noSystemNode);
  writeFileSync(join(noSystemNode, 'node'), '#!/bin/sh\necho "the GPU kit must not use the machine\'s node" >&2\nexit 97\n');
  chmodSync(join(noSystemNode, 'node'), 0o755);
  build = await runProcess(process.execPath, [join(root, 'scripts', 'gpu-kit.mjs'), '--out', kitDir]);
  if (build.code !== 0) throw new Error(`npm run gpu-kit failed:\n${build.stdout}\n${build.stderr}`);
}, 400_000); // a first build downloads ~42 MB and compresses ~190 MB (about a minute on 2 idle cores); a rebuild takes seconds

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('GPU kit', () => {
  it('is built at most 60 MiB and says its size; holds run.sh, a manifest and the parts', () => {
    const sizeLine = /GPU kit: .*, ([\d.]+) MiB \(limit 60\.0 MiB\)/.exec(build.stdout);
    expect(sizeLine, build.stdout).not.toBeNull();
    const files = readdirSync(kitDir).sort();
    expect(files).toEqual(['app.tar.xz', 'manifest.json', 'native.tar.xz', 'node.tar.xz', 'run.sh', 'vulkan.tar.xz']);
    const total = files.reduce((sum, f) => sum + statSync(join(kitDir, f)).size, 0);
    expect(total).toBeLessThanOrEqual(60 * 2 ** 20);
    expect(Number(sizeLine?.[1])).toBeCloseTo(total / 2 ** 20, 1);
    const manifest = JSON.parse(readFileSync(join(kitDir, 'manifest.json'), 'utf8'));
    expect(manifest.node.split('.')[0]).toBe(process.versions.node.split('.')[0]); // this Node's, or the newest of its major
    expect(manifest.id).toMatch(/^[0-9a-f]{16}$/);
  });

  it('run.sh --quick --allow-software --model tiny benchmarks and generates on SwiftShader with the kit\'s Node', async () => {
    const out = join(work, 'out');
    const result = await runKit([out, '--quick', '--allow-software', '--model', 'tiny'], 380_000);
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout).toMatch(/WARNING: the adapter is a software/);

    const adapter = JSON.parse(readFileSync(join(out, 'adapter.json'), 'utf8'));
    expect(adapter.software).toBe(true);
    expect(`${adapter.vendor} ${adapter.architecture} ${adapter.description}`).toMatch(/swiftshader/i);

    const bench = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as BenchmarkReport;
    expect(bench.machine).toContain(`Node ${JSON.parse(readFileSync(join(kitDir, 'manifest.json'), 'utf8')).node}`); // the kit's Node ran it
    expect(bench.runs.map((r) => `${r.promptLen} ${r.policy}`)).toEqual(['96 full', '96 sparsemm']);
    for (const r of bench.runs) {
      expect(r.decodeMsPerToken).toBeGreaterThan(0);
      expect(r.prefillMs).toBeGreaterThan(0);
    }
    expect(bench.runs[1].kvBytes).toBeLessThan(bench.runs[0].kvBytes);
    expect(readFileSync(join(out, 'bench.txt'), 'utf8')).toMatch(/Adapter: .*SwiftShader/);
    expect(readdirSync(join(out, 'bench')).some((f) => f.endsWith('.svg'))).toBe(true);

    const generate = JSON.parse(readFileSync(join(out, 'generate.json'), 'utf8')) as GenerateReport;
    expect(generate.tokenIds.length).toBeGreaterThan(0);
    expect(generate.tokenIds.length).toBeLessThanOrEqual(8);
    expect(generate.imageTokens).toBeGreaterThan(0);
    expect(generate.policy).toBe('full');
    const dump = readDump(join(out, 'dump'));
    expect(dump.manifest.tokens).toEqual(generate.tokenIds);
    expect(dump.manifest.tensors.logits.shape).toEqual([generate.tokenIds.length, dump.manifest.vocabSize]);
    expect(dump.manifest.tensors.input_ids.shape).toEqual([generate.promptTokens]);
    // The transformers check runs where python3 has torch + transformers, and says it skipped where not.
    expect(readFileSync(join(out, 'run.log'), 'utf8')).toMatch(/== parity exit code 0 |== parity: skipped \(python3 has no numpy \+ torch \+ transformers\)/);
    for (const log of ['run.log', 'adapter.log', 'make-fixture.log', 'bench.log', 'generate.log', 'kit-manifest.json']) {
      expect(existsSync(join(out, log)), log).toBe(true);
    }
  }, 400_000); // about 10 s on 2 idle cores; the margin is for a machine shared with other test runs

  it.skipIf(hasHardwareVulkanDriver())('stops with exit code 3 and a clear message when the only adapter is software', async () => {
    const out = join(work, 'out-refused');
    const result = await runKit([out, '--quick', '--model', 'tiny'], 180_000);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/only WebGPU adapter is a software \(CPU\) implementation, not a GPU\. Nothing was benchmarked/);
    expect(existsSync(join(out, 'bench.json'))).toBe(false);
    expect(existsSync(join(out, 'adapter.json'))).toBe(true);
  }, 200_000);

  it('refuses a missing OUT_DIR and an unknown model preset with exit code 2', async () => {
    expect((await runKit([], 60_000)).code).toBe(2);
    const bad = await runKit([join(work, 'x'), '--model', 'large'], 60_000);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--model must be smolvlm-256m-shape or tiny/);
  });
});
