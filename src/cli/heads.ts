/**
 * `npm run cli -- heads --model DIR_OR_URL --samples N --out scores.json [--seed S] [--mode greedy|teacher-forcing]
 * [--max-new-tokens N]`: scores every (layer, query head) on synthetic OCR probes by the official SparseMM rule and
 * writes the official score file {"<layer>-<head>": [score per probe]}, which `budgets --scores` and `generate
 * --scores` read. Progress goes to stderr (a bar on a terminal, one line per probe otherwise).
 */
import { writeFile } from 'node:fs/promises';
import { findVisualHeads, defaultProbeMaxNewTokens } from '../engine/visual-heads';
import { headScoringModes, type HeadScoringMode } from '../sparsemm/head-scoring';
import { headScoreMatrix, serializeScoreFile } from '../sparsemm/score-file';
import { commandOptions, integerOption, UsageError, parseCommandArgs, weightFormatOption, weightsHelp, weightsOption } from './args';
import type { WeightFormat } from '../model-io/quantize';
import { openNodeSession, stderrProgress } from './node-session';
import { nodeProbeRenderer } from './probe-canvas';

const help = `Usage: npm run cli -- heads --model DIR_OR_URL --samples N --out FILE [options]

Finds the visual heads of a model: renders N synthetic OCR probes, asks "Provide all the OCR results of this image.",
and scores each (layer, query head) by the official SparseMM rule. Writes {"<layer>-<head>": [score per probe]}.

Options:
  --model M            model folder, http(s) base URL, or hub id
${weightsHelp}  --samples N          probe images (default 4)
  --out FILE           where to write the score file (official JSON format)
  --seed S             probe-set seed (default 0)
  --mode M             greedy (official, default) | teacher-forcing (feeds the probe text; for models that do not read)
  --max-new-tokens N   tokens generated / fed per probe (default ${defaultProbeMaxNewTokens})
  -h, --help           this text
`;

export interface HeadsArgs {
  model: string;
  samples: number;
  out: string;
  seed: number;
  mode: HeadScoringMode;
  maxNewTokens: number;
  weightFormat: WeightFormat;
}

export function parseHeadsArgs(args: string[]): HeadsArgs | 'help' {
  const values = commandOptions(args, {
    model: { type: 'string' },
    samples: { type: 'string' },
    out: { type: 'string' },
    seed: { type: 'string' },
    mode: { type: 'string' },
    'max-new-tokens': { type: 'string' },
    ...weightsOption,
  });
  if (values === 'help') return 'help';
  if (!values.model) throw new UsageError('--model is required');
  if (!values.out) throw new UsageError('--out FILE is required');
  const samples = integerOption('samples', values.samples, 4);
  if (samples < 1) throw new UsageError('--samples must be at least 1');
  const maxNewTokens = integerOption('max-new-tokens', values['max-new-tokens'], defaultProbeMaxNewTokens);
  if (maxNewTokens < 1) throw new UsageError('--max-new-tokens must be at least 1');
  const seed = integerOption('seed', values.seed, 0);
  if (seed < 0 || seed > 0xffffffff) throw new UsageError('--seed must be in 0..4294967295');
  const mode = values.mode ?? 'greedy';
  if (!(headScoringModes as readonly string[]).includes(mode)) throw new UsageError(`--mode must be one of ${headScoringModes.join(', ')}, got "${mode}"`);
  return { model: values.model, samples, out: values.out, seed, mode: mode as HeadScoringMode, maxNewTokens, weightFormat: weightFormatOption(values.weights) };
}

export async function run(args: string[]): Promise<void> {
  const options = parseCommandArgs('heads', help, () => parseHeadsArgs(args));
  if (!options) return;
  const { samples, seed, mode, maxNewTokens, out } = options;
  const session = await openNodeSession(options.model, options.weightFormat);
  try {
    const { text } = session.loaded.config;
    const bar = stderrProgress('probes');
    const started = performance.now();
    let hitSteps = 0;
    let allSteps = 0;
    const file = await findVisualHeads(session.model, session.processor, {
      samples,
      seed,
      mode,
      maxNewTokens,
      ...nodeProbeRenderer(),
      onSample: (sample) => {
        allSteps += sample.steps.length;
        hitSteps += sample.result.matchedChunk.filter((chunk) => chunk >= 0).length;
        if (!process.stderr.isTTY) {
          process.stderr.write(
            `heads: probe ${sample.index + 1}/${samples}: ${sample.plan.chunks.length} chunks, ${sample.steps.length} tokens, ` +
              `${sample.result.matchedChunk.filter((chunk) => chunk >= 0).length} matched a single chunk\n`,
          );
        }
      },
      onProgress: (done, total) => bar.update(done, total, `${done}/${total} probes`),
    });
    bar.end();
    await writeFile(out, serializeScoreFile(file));
    const means = headScoreMatrix(file, text.numLayers, text.numHeads);
    const ranked = means
      .flatMap((row, layer) => row.map((score, head) => ({ layer, head, score })))
      .sort((a, b) => b.score - a.score)
      .slice(0, 5)
      .map(({ layer, head, score }) => `${layer}-${head} (${score.toPrecision(3)})`);
    process.stdout.write(
      `Wrote ${out}: ${text.numLayers} layers x ${text.numHeads} heads, ${samples} probe(s), mode ${mode}, ` +
        `${hitSteps}/${allSteps} tokens matched one chunk, ${((performance.now() - started) / 1000).toFixed(1)} s\n` +
        `Top heads (layer-head, mean score): ${ranked.join(', ')}\n`,
    );
    if (means.every((row) => row.every((score) => score === 0))) {
      process.stderr.write(
        'heads: warning: no generated token matched a single probe chunk, so every score is 0 (no visual head found). ' +
          'SparseMM then splits the budget evenly. A model that cannot read the probes (e.g. random weights) needs ' +
          '--mode teacher-forcing.\n',
      );
    }
  } finally {
    session.destroy();
  }
}
