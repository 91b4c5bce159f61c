// `npm test`: system check, dependencies, app build, tiny fixture, then the unit, gpu and e2e vitest
// projects in sequence. Prints per-project counts and a last line "N passed, N failed[, N skipped]";
// exits non-zero on any failure. CI=true or SPARSEMM_REQUIRE_GPU=1: a missing browser or adapter fails.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensureSystem, swiftshaderIcdPath } from './ensure-system.mjs';
import { buildApp, ensureDependencies, projectRoot, run } from './project.mjs';

const projects = ['unit', 'gpu', 'e2e'];
const requireGpu = process.env.CI === 'true' || process.env.CI === '1' || process.env.SPARSEMM_REQUIRE_GPU === '1';
const resultsDir = join(projectRoot, 'test-results');

function say(line) {
  process.stdout.write(`${line}\n`);
}

/** Same rule as src/engine/node-gpu.ts: an NVIDIA ICD or a DRM render node counts as hardware Vulkan. */
function hasHardwareVulkanDriver() {
  const icdDirs = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d', '/usr/local/nvidia/share/vulkan/icd.d'];
  const nvidia = icdDirs.some((dir) => existsSync(dir) && readdirSync(dir).some((f) => f.startsWith('nvidia')));
  const renderNode = existsSync('/dev/dri') && readdirSync('/dev/dri').some((f) => f.startsWith('renderD'));
  return nvidia || renderNode;
}

function finish(counts, setupError) {
  if (setupError) say(`\nSetup failed: ${setupError}`);
  const failed = counts.failed + (setupError ? 1 : 0);
  say('');
  say(`${counts.passed} passed, ${failed} failed${counts.skipped > 0 ? `, ${counts.skipped} skipped` : ''}`);
  process.exit(failed > 0 ? 1 : 0);
}

const totals = { passed: 0, failed: 0, skipped: 0 };

// 1. System packages (Chromium + SwiftShader, libvulkan).
if (!ensureSystem({ log: say })) {
  if (requireGpu) finish(totals, 'Chromium / libvulkan are missing and CI=true requires them (see the install command above).');
  say('Continuing: the gpu and e2e tests will fail until these are installed.');
}

// 2-4. Dependencies, app build, tiny fixture.
try {
  ensureDependencies();
  buildApp();
  say('Making sure the tiny test model exists…');
  run(process.execPath, [join(projectRoot, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(projectRoot, 'scripts', 'ensure-fixture.mjs')]);
} catch (error) {
  finish(totals, error instanceof Error ? error.message : String(error));
}

// 5. The three vitest projects, one after the other (SwiftShader is CPU-bound).
const env = { ...process.env };
if (!env.VK_ICD_FILENAMES && !env.VK_DRIVER_FILES && !hasHardwareVulkanDriver() && existsSync(swiftshaderIcdPath)) {
  env.VK_ICD_FILENAMES = swiftshaderIcdPath;
  say(`No hardware Vulkan driver: WebGPU runs on SwiftShader (VK_ICD_FILENAMES=${swiftshaderIcdPath}).`);
}
if (requireGpu) env.SPARSEMM_REQUIRE_GPU = '1';
mkdirSync(resultsDir, { recursive: true });

const perProject = [];
for (const project of projects) {
  const reportPath = join(resultsDir, `vitest-${project}.json`);
  rmSync(reportPath, { force: true });
  say(`\n=== ${project} tests ===`);
  const result = spawnSync(
    process.execPath,
    [
      join(projectRoot, 'node_modules', 'vitest', 'vitest.mjs'),
      'run',
      '--project',
      project,
      '--passWithNoTests',
      '--reporter=default',
      '--reporter=json',
      `--outputFile=${reportPath}`,
    ],
    { cwd: projectRoot, stdio: 'inherit', env },
  );
  const counts = { passed: 0, failed: 0, skipped: 0, note: '' };
  if (existsSync(reportPath)) {
    const report = JSON.parse(readFileSync(reportPath, 'utf8'));
    // Count per test, not from vitest's totals: when a test process crashes, the report lists that
    // file's unfinished tests as "pending" and the file as passed. Unfinished tests are failures;
    // only tests marked skip / todo in the code count as skipped.
    let unfinished = 0;
    let brokenFiles = 0;
    for (const file of report.testResults ?? []) {
      const tests = file.assertionResults ?? [];
      if (file.status === 'failed' && tests.length === 0) brokenFiles += 1; // failed to load or to collect
      for (const t of tests) {
        if (t.status === 'passed') counts.passed += 1;
        else if (t.status === 'failed') counts.failed += 1;
        else if (t.status === 'skipped' || t.status === 'todo' || t.status === 'disabled') counts.skipped += 1;
        else unfinished += 1;
      }
    }
    counts.failed += unfinished + brokenFiles;
    if (unfinished > 0) counts.note += `; ${unfinished} test(s) did not finish (crashed test process?)`;
    if (brokenFiles > 0) counts.note += `; ${brokenFiles} file(s) failed to load`;
  }
  if (result.status !== 0 && counts.failed === 0) {
    // vitest failed without a test to blame (crash, config error, unhandled error between tests).
    counts.failed += 1;
    counts.note += `; vitest exited with ${result.status ?? result.signal} (${existsSync(reportPath) ? 'errors outside tests' : 'no report written'})`;
  }
  totals.passed += counts.passed;
  totals.failed += counts.failed;
  totals.skipped += counts.skipped;
  perProject.push(`${project.padEnd(5)} ${counts.passed} passed, ${counts.failed} failed${counts.skipped ? `, ${counts.skipped} skipped` : ''}${counts.note}`);
}

say('\n=== Summary ===');
for (const line of perProject) say(line);
finish(totals, null);
