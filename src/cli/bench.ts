/**
 * `npm run bench [-- --json FILE] [--quick] [--browser] [...]`: SparseMM vs full cache (and the other policies), decode
 * speed and KV memory against prompt length, on random weights at the real SmolVLM-256M shape (generated in memory,
 * never written to the repository). Node + dawn.node by default; --browser runs the same runBenchmark in headless
 * Chromium. Prints a table, writes bench-results/bench-<date>.json and .svg (and --json FILE).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, platform, release, totalmem } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runBenchmark, type BenchmarkPolicySpec, type BenchmarkProgress, type BenchmarkReport, type BenchmarkRun } from '../engine/benchmark';
import { createNodeGpuContext } from '../engine/node-gpu';
import { parseModelConfig, type ModelConfig } from '../model-io/config';
import { defaultReferenceModelDir, defaultReferenceScoreFile, randomWeights } from '../model-io/fixture';
import { loadModelFilesFromPathOrUrl } from '../model-io/node-loader';
import { expandPrompt } from '../model-io/prompt-expansion';
import { smolVlmFrameTokens } from '../model-io/video-prompt';
import { sampleVideoFrames } from '../model-io/video-sampling';
import { createProcessor } from '../model-io/processor';
import { budgetPolicies, type BudgetPolicy } from '../sparsemm/budgets';
import { randomHeadScores } from '../sparsemm/random';
import type { TimingVerdict } from '../sparsemm/timing-stats';
import { headScoreMatrix, parseScoreFile, scoreFileShape } from '../sparsemm/score-file';
import { benchmarkSvg, seriesLabel } from './bench-plot';

const weightSeed = 1234;
/** What --weights accepts (the loader makes q8 / q4 from the bf16 file while loading). */
const benchWeightFormats = ['bf16', 'q8', 'q4'] as const;

/** What the issue asks for: 1K-8K, full, sparsemm 64/256/1024, snapkv/pyramidkv/adakv 256. */
const fullPreset = {
  lengths: [1024, 2048, 4096, 8192],
  policies: 'full,sparsemm:64,sparsemm:256,sparsemm:1024,snapkv:256,pyramidkv:256,adakv:256',
  steps: 3,
  warmup: 1,
  prefillLengths: [256],
};
/**
 * --quick: one length, full vs sparsemm 256, 1 warm-up + 4 measured steps each (the fewest the spread rule of
 * sparsemm/timing-stats gives a verdict on), without the vision tower (minutes on SwiftShader).
 */
const quickPreset = { lengths: [1024], policies: 'full,sparsemm:256', steps: 4, warmup: 1, prefillLengths: [256] };

/** SmolVLM2's video sampling at most: 64 frames of one 512 px tile (64 image tokens) each (VIDEO.md). */
const videoQuestionFrames = 64;

const usage = `Usage: npm run bench [-- options]

  --quick                 1K prompt, full vs sparsemm 256, 4 steps, no vision tower (--skip-vision)
  --json FILE             also write the JSON report to FILE
  --browser               run in headless Chromium (/usr/bin/chromium, WebGPU) instead of Node + dawn.node
  --lengths L1,L2,...     prompt lengths in tokens (default ${fullPreset.lengths.join(',')})
  --policies P[:B],...    policies with budgets (default ${fullPreset.policies})
  --steps N               measured decode steps per run (default ${fullPreset.steps}; the median and IQR are reported;
                          fewer than 4 give no faster/slower verdict)
  --warmup N              warm-up decode steps per run (default ${fullPreset.warmup})
  --prefill-lengths L,... text lengths of the time-to-first-token figures (default 256; the kernel shapes use the
                          first); at a length that is also a prompt length every policy's prefill is measured too
  --skip-vision           leave the vision tower (one 512 px tile) out of the time-to-first-token figures
  --skip-prefill          no time-to-first-token figures at all (prefill kernels, vision tower, text prefill)
  --weights F[,F...]      weight formats to compare, interleaved in one run (bf16, q8, q4; repeatable; default bf16)
  --video-question        add a prompt shaped like a 64-frame video question (64 frames x 64 tokens + the
                          SmolVLM2 video prompt text, tokenized with the model's tokenizer)
  --lookahead N           decode steps submitted beyond the token being read back (default 2; 0: step by step)
  --ratio R               SparseMM ratio (default 0.1)
  --window W              recent-window tokens (default 32)
  --scores FILE           head-score file (official format); used when its shape matches the model, else random scores
  --seed N                seed of the random head scores and synthetic K/V (default 0)
  --out DIR               output folder (default bench-results)
`;

function parseList(text: string, name: string): number[] {
  const values = text.split(',').filter((s) => s.trim() !== '').map((s) => Number(s.trim()));
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`--${name} must be a comma-separated list of positive integers, got "${text}"`);
  return values;
}

export function parsePolicies(text: string): BenchmarkPolicySpec[] {
  return text.split(',').filter((s) => s.trim() !== '').map((item) => {
    const [name, budgetText] = item.trim().split(':');
    if (!(budgetPolicies as readonly string[]).includes(name)) throw new Error(`Unknown policy "${name}" (expected one of ${budgetPolicies.join(', ')})`);
    const policy = name as BudgetPolicy;
    const budget = policy === 'full' ? 0 : Number(budgetText ?? 256);
    if (policy !== 'full' && (!Number.isInteger(budget) || budget < 1)) throw new Error(`Policy "${item}": the budget must be a positive integer`);
    return { policy, budget };
  });
}

function positiveInt(text: string | undefined, fallback: number, name: string, allowZero = false): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) throw new Error(`--${name} must be an integer >= ${allowZero ? 0 : 1}, got "${text}"`);
  return value;
}

/** The official score file when it fits the model; otherwise seeded random scores (the SparseMM paper's ablation). */
export function chooseHeadScores(config: ModelConfig, scoreFile: string | undefined, seed: number): { scores: number[][]; source: string } {
  const { numLayers, numHeads } = config.text;
  const path = scoreFile ?? defaultReferenceScoreFile();
  let why: string;
  if (existsSync(path)) {
    const file = parseScoreFile(readFileSync(path, 'utf8'));
    const shape = scoreFileShape(file);
    if (shape.layers === numLayers && shape.heads === numHeads) {
      return { scores: headScoreMatrix(file, numLayers, numHeads), source: `score file ${path}` };
    }
    why = `${path} is for ${shape.layers} layers x ${shape.heads} heads, the model has ${numLayers} x ${numHeads}`;
  } else {
    why = `${path} does not exist`;
  }
  if (scoreFile !== undefined) throw new Error(`--scores: ${why}`);
  return { scores: randomHeadScores(numLayers, numHeads, seed), source: `random head scores (mulberry32 seed ${seed}; ${why})` };
}

/** --weights values: repeatable and/or comma lists of bf16, q8, q4 (order kept: the first is the reference). */
export function parseWeightFormats(values: readonly string[]): string[] {
  const formats = values.flatMap((value) => value.split(',')).map((f) => f.trim()).filter((f) => f !== '');
  for (const format of formats) {
    if (!(benchWeightFormats as readonly string[]).includes(format)) throw new Error(`--weights: unknown weight format "${format}" (expected ${benchWeightFormats.join(', ')})`);
  }
  return formats.length > 0 ? [...new Set(formats)] : ['bf16'];
}

/**
 * Prompt tokens of a question about a one-minute clip at SmolVLM2's sampling limit (64 frames at 1 fps, one 512 px
 * tile of imageSeqLen tokens each): transformers' video chat template and expansion (model-io/video-prompt.ts,
 * video-sampling.ts), tokenized by the model's tokenizer. The clip: 64 s at 30 fps.
 */
export async function videoQuestionLength(modelDir: string): Promise<number> {
  const processor = await createProcessor(await loadModelFilesFromPathOrUrl(modelDir, { includeWeights: false }));
  const frames = sampleVideoFrames({ nativeFps: 30, totalFrames: 30 * 64 }, { fps: 1, maxFrames: videoQuestionFrames });
  // The processor renders [video, text] with transformers' video chat template (VIDEO.md §1), then the entry is expanded.
  const prompt = processor.chatPrompt([{ role: 'user', text: 'What happens in this video?', videoCount: 1 }]);
  const text = expandPrompt(prompt, [{ kind: 'video', ...frames }], { ...smolVlmFrameTokens, imageSeqLen: processor.imageSeqLen });
  const ids = processor.tokenize(text);
  const imageTokens = ids.filter((id) => id === processor.imageTokenId).length;
  if (imageTokens !== videoQuestionFrames * processor.imageSeqLen) throw new Error(`video question: ${imageTokens} image tokens, expected ${videoQuestionFrames * processor.imageSeqLen}`);
  return ids.length;
}

export function nodeMachine(): string {
  const cpuList = cpus();
  const model = cpuList[0]?.model.trim() ?? 'unknown CPU';
  return `${model} x ${cpuList.length} logical cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${platform()} ${release()}, Node ${process.versions.node}`;
}

function adapterLine(report: BenchmarkReport): string {
  const a = report.adapter;
  const isSwiftShader = /swiftshader/i.test(`${a.vendor} ${a.architecture} ${a.device} ${a.description}`);
  return `${[a.vendor, a.architecture, a.description].filter(Boolean).join(' / ')}${isSwiftShader ? ' (SwiftShader: a CPU emulation of a GPU, not GPU numbers)' : ''}`;
}

function fixed(value: number | null, digits: number): string {
  return value === null || !Number.isFinite(value) ? '-' : value.toFixed(digits);
}

/** "1.42x faster" as the shared rule says it; the ratio of the medians beside a verdict that claims nothing. */
function verdictCell(speedup: number, verdict: TimingVerdict, text: string): string {
  return verdict === 'faster' || verdict === 'slower' ? text : `${fixed(speedup, 3)}x: ${text}`;
}

/** The stdout table: one row per run, the ratios against full of the same prompt length and weight format. */
export function formatTable(report: BenchmarkReport): string {
  const formats = report.settings.weightFormats ?? ['bf16'];
  const crossFormat = formats.length > 1;
  const header = [
    'prompt', 'weights', 'policy', 'prefill ms', 'decode ms/tok', 'IQR', 'min ms/tok', 'wall ms/tok', 'KV MiB', 'GPU MiB', 'KV/full', 'speedup', 'verdict',
    'bound', 'bound eff', ...(crossFormat ? [`vs ${formats[0]}`, `${formats[0]} bound`] : []),
    'W MiB/step', 'MB/step', 'GB/s', 'BW eff', 'disp/step', 'rec ms (min)', 'GPU idle ms',
  ];
  const rows = report.runs.map((run: BenchmarkRun) => [
    run.promptLabel ? `${run.promptLen} (${run.promptLabel})` : String(run.promptLen),
    run.weightFormat,
    seriesLabel({ policy: run.policy, budget: run.budget }) + (run.policy !== 'full' && !run.compressed ? ' (not compressed)' : ''),
    fixed(run.prefillMs, 0),
    fixed(run.decodeMsPerToken, 1),
    fixed(run.decodeIqrMs, 1),
    fixed(run.decodeMinMsPerToken, 1),
    fixed(run.decodeWallMsPerToken, 1),
    fixed(run.kvBytes / 2 ** 20, 2),
    fixed(run.totalGpuBytes / 2 ** 20, 1),
    fixed(run.kvRatioVsFull, 4),
    `${fixed(run.decodeSpeedupVsFull, 3)}x`,
    run.speedupText,
    `${fixed(run.bytesBoundSpeedupVsFull, 3)}x`,
    fixed(run.boundEfficiency, 2),
    ...(crossFormat
      ? run.vsFirstFormat
        ? [verdictCell(run.vsFirstFormat.speedup, run.vsFirstFormat.verdict, run.vsFirstFormat.text), `${fixed(run.vsFirstFormat.bytesBound, 3)}x`]
        : ['-', '-']
      : []),
    fixed(run.decodeWeightBytes / 2 ** 20, 1),
    fixed(run.bytesReadPerToken / 1e6, 1),
    fixed(run.achievedGBps, 4),
    fixed(run.bandwidthEfficiency, 3),
    String(run.dispatchesPerStep),
    `${fixed(run.recordMsPerStep, 2)} (${fixed(run.recordMinMsPerStep, 2)})`,
    run.gpuIdleMsPerStep === null ? 'n/a' : fixed(run.gpuIdleMsPerStep, 3),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const weightLines = [...new Map(report.runs.map((run) => [run.weightFormat, run])).values()].map(
    (run) => `${run.weightFormat} ${(run.weightBytes / 2 ** 20).toFixed(1)} MiB on the GPU, ${(run.decodeWeightBytes / 2 ** 20).toFixed(1)} MiB read per decode step`,
  );
  const lookahead = report.settings.lookahead ?? 0;
  return [
    `Machine: ${report.machine}`,
    `Adapter: ${adapterLine(report)}`,
    `Model: ${report.model.textLayers} text layers, ${report.model.queryHeads} query / ${report.model.kvHeads} KV heads x ${report.model.headDim}; ` +
      `weights: ${weightLines.join('; ') || `${(report.model.weightBytes / 2 ** 20).toFixed(1)} MiB`}`,
    `Limits: streaming read ${fixed(report.limits.readGBps, 3)} GB/s over ${(report.limits.readBytes / 2 ** 20).toFixed(0)} MiB; decode GEMV: ${report.gemv.reduction} reduction, teams of ${report.gemv.team}`,
    `Timing: ${report.timing === 'gpu-timestamps' ? 'GPU timestamp queries' : 'wall clock'}; median and IQR of ${report.settings.decodeSteps} steps after ${report.settings.warmupSteps} warm-up per run; ` +
      (lookahead > 0 ? `pipelined decode, ${lookahead} steps submitted ahead of the token read back` : 'step by step (each step recorded after the previous token was read back)'),
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    ...prefillTable(report),
    'KV/full and speedup (median step): against the full cache of the same weight format at the same prompt length in this run; verdict: the speed-up only',
    'when the quartile boxes of the two runs\' step times do not overlap, else "no measurable difference" (fewer than 4 steps: no verdict).',
    'min speedup (JSON): the same from the fastest step. bound: the speedup the bytes read per step alone would allow; bound eff: (speedup - 1) / (bound - 1).',
    ...(crossFormat ? [`vs ${formats[0]}: the same policy and length in ${formats[0]} weights, same rule; ${formats[0]} bound: its bytes per step / this run's.`] : []),
    'W MiB/step: weight bytes a step reads in this format; MB/step: those + the K/V rows attended. BW eff: GB/s / the streaming-read limit.',
    'disp/step: compute dispatches per decode step (token to token); rec ms: CPU time to record and submit one step, median (fastest);',
    'GPU idle ms: median gap between the previous step\'s end and this step\'s start on the GPU (timestamp queries; n/a without them).',
    `NOTE: ${report.note}`,
  ].join('\n');
}

function pct(value: number): string {
  return Number.isFinite(value) ? `${(value * 100).toFixed(0)}%` : '-';
}

/** The time-to-first-token lines: the adapter's peak, each prefill kernel against it, the vision tile, the text prefill. */
export function prefillTable(report: BenchmarkReport): string[] {
  const lines = [`Adapter f32 multiply-add peak (limits.peakGflops): ${fixed(report.limits.peakGflops, 2)} GFLOP/s`];
  const p = report.prefill;
  if (!p) return [...lines, ''];
  const kernelRows = [...p.gemm.map((g) => ['gemm', g] as const), ...p.attention.map((a) => ['attention', a] as const)];
  const header = ['kernel', 'name', 'shape', 'ms', 'GFLOP/s', 'of peak'];
  const rows = kernelRows.map(([kind, f]) => [kind, f.name, f.shape, fixed(f.ms, 1), fixed(f.gflops, 2), pct(f.efficiency)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const tokensPerSecond = p.textLengths.map((n) => `${n} tokens ${fixed(p.textPrefillMs[String(n)], 0)} ms = ${fixed(p.textTokensPerSecond[String(n)], 1)} tokens/s`);
  return [
    ...lines,
    `Prefill (time to first token): gemmGflops text ${fixed(p.gemmGflops.text, 2)} (${pct(p.gemmEfficiency.text)} of peak), vision ${fixed(p.gemmGflops.vision, 2)} (${pct(p.gemmEfficiency.vision)}); ` +
      `attentionGflops text ${fixed(p.attentionGflops.text, 2)} (${pct(p.attentionEfficiency.text)}), vision ${fixed(p.attentionGflops.vision, 2)} (${pct(p.attentionEfficiency.vision)})`,
    `  vision tower: ${p.visionMsPerTile === null ? 'not measured' : `${fixed(p.visionMsPerTile, 0)} ms per tile`}; text prefill: ${tokensPerSecond.join(', ')}`,
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
  ];
}

function progressLine(p: BenchmarkProgress): string {
  return `[${String(p.completed).padStart(3)}/${p.total}] ${p.message}\n`;
}

function dateStamp(): string {
  return new Date().toISOString().replace(/[:]/g, '-').replace(/\..+$/, '');
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean' },
      json: { type: 'string' },
      browser: { type: 'boolean' },
      lengths: { type: 'string' },
      policies: { type: 'string' },
      steps: { type: 'string' },
      warmup: { type: 'string' },
      'prefill-lengths': { type: 'string' },
      'skip-vision': { type: 'boolean' },
      'skip-prefill': { type: 'boolean' },
      weights: { type: 'string', multiple: true },
      'video-question': { type: 'boolean' },
      lookahead: { type: 'string' },
      ratio: { type: 'string' },
      window: { type: 'string' },
      scores: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(usage);
    return;
  }
  const preset = values.quick ? quickPreset : fullPreset;
  const promptLengths = values.lengths ? parseList(values.lengths, 'lengths') : preset.lengths;
  const policies = parsePolicies(values.policies ?? preset.policies);
  const decodeSteps = positiveInt(values.steps, preset.steps, 'steps');
  const warmupSteps = positiveInt(values.warmup, preset.warmup, 'warmup', true);
  if (values['skip-prefill'] && values['prefill-lengths']) throw new Error('--skip-prefill and --prefill-lengths exclude each other');
  const prefillLengths = values['skip-prefill'] ? [] : values['prefill-lengths'] ? parseList(values['prefill-lengths'], 'prefill-lengths') : preset.prefillLengths;
  const ratio = values.ratio === undefined ? 0.1 : Number(values.ratio);
  if (!(ratio >= 0 && ratio <= 1)) throw new Error(`--ratio must be in [0, 1], got "${values.ratio}"`);
  const window = positiveInt(values.window, 32, 'window');
  const seed = positiveInt(values.seed, 0, 'seed', true);
  const lookahead = positiveInt(values.lookahead, 2, 'lookahead', true);
  const weightFormats = parseWeightFormats(values.weights ?? []);
  const visionTile = !(values['skip-vision'] || values.quick);
  const outDir = resolve(values.out ?? 'bench-results');

  const modelDir = defaultReferenceModelDir();
  const configPath = join(modelDir, 'config.json');
  if (!existsSync(configPath)) throw new Error(`SmolVLM-256M's config.json is not at ${configPath} (set SPARSEMM_REFERENCE_MODEL_DIR).`);
  const config = parseModelConfig(readFileSync(configPath, 'utf8'));
  const shape = `${basename(resolve(modelDir))} shape`;
  const headScores = chooseHeadScores(config, values.scores, seed);
  const promptLabels: Record<number, string> = {};
  if (values['video-question']) {
    const length = await videoQuestionLength(modelDir);
    promptLabels[length] = `video question (${videoQuestionFrames} frames x ${config.imageSeqLen} tokens + text)`;
    if (!promptLengths.includes(length)) promptLengths.push(length);
  }
  const settings = { promptLengths, policies, decodeSteps, warmupSteps, prefillLengths, ratio, window, seed, headScores, lookahead, weightFormats, promptLabels };

  let report: BenchmarkReport;
  if (values.browser) {
    const { runBrowserBenchmark } = await import('./bench-browser');
    report = await runBrowserBenchmark({ ...settings, weightSeed, machine: nodeMachine() }, (p) => process.stderr.write(progressLine(p)));
  } else {
    process.stderr.write(`Generating random weights at the ${shape} (seed ${weightSeed})...\n`);
    const weights = randomWeights(config, weightSeed);
    const ctx = await createNodeGpuContext();
    try {
      report = await runBenchmark(
        ctx,
        {
          config, weights, promptLengths, policies, decodeSteps, warmupSteps, prefillLengths, ratio, window, seed, visionTile, lookahead, weightFormats, promptLabels,
          headScores: headScores.scores, headScoresSource: headScores.source, machine: `${nodeMachine()}; Node + dawn.node`,
        },
        (p) => process.stderr.write(progressLine(p)),
      );
    } finally {
      ctx.destroy();
    }
  }

  process.stdout.write(`${formatTable(report)}\n`);
  mkdirSync(outDir, { recursive: true });
  const stem = join(outDir, `bench-${dateStamp()}${values.browser ? '-browser' : ''}`);
  const json = `${JSON.stringify(report, null, 2)}\n`;
  writeFileSync(`${stem}.json`, json);
  writeFileSync(
    `${stem}.svg`,
    benchmarkSvg(report.runs, { title: `SparseMM vs full cache, random weights at the ${shape}`, subtitle: `${adapterLine(report)}; synthetic KV cache` }),
  );
  const written = [`${stem}.json`, `${stem}.svg`];
  if (values.json) {
    const path = resolve(values.json);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, json);
    written.push(path);
  }
  process.stdout.write(`Wrote ${written.join(', ')}\n`);
}
