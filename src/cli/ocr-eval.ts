/**
 * `npm run cli -- ocr-eval --model M --samples N [--policies P,...] [--budgets B,...]`: OCR accuracy of the full cache
 * and each KV policy x budget on the synthetic OCR probes (the visual-head search's, whose text is known), scored with
 * ANLS (DocVQA's metric) and word accuracy — the shape of the paper's accuracy table (ChatSession.ocrEval).
 */
import { defaultProbeMaxNewTokens } from '../engine/visual-heads';
import { ocrProbePrompt } from '../sparsemm/head-scoring';
import { policyLabel } from '../sparsemm/policies';
import { parseScoreFile } from '../sparsemm/score-file';
import type { OcrEvalRequest, OcrEvalResult } from '../session/fidelity-types';
import { commandOptions, integerOption, parseCommandArgs, readCommandInputs, readText, UsageError, weightFormatOption, weightsHelp, weightsOption } from './args';
import type { WeightFormat } from '../model-io/quantize';
import { cliChatSession, openNodeSession, stderrProgress } from './node-session';
import { formatBytes } from './fidelity-plot';
import { nodeProbeRenderer } from './probe-canvas';
import { sweepHelp, sweepOptions, sweepRequestOption } from './sweep-args';

const help = `Usage: npm run cli -- ocr-eval --model DIR_OR_URL --samples N [options]

Renders N synthetic OCR probes (words at known places; the same probes as the heads command for the same seed), asks
"${ocrProbePrompt}" with the full cache and with each policy x budget (one prefill per probe serves them all), and
scores every answer against the probe's text: ANLS (DocVQA: normalized Levenshtein similarity, 0 past distance 0.5)
and word accuracy (share of the probe's words in the answer). Prints one row per policy x budget, means over probes.

Options:
  --model M           model folder, http(s) base URL, or hub id
${weightsHelp}  --samples N         probes (default 4)
  --seed S            probe-set seed (default 0)
${sweepHelp(defaultProbeMaxNewTokens)}  --json              print {rows: [{policy, budget, anls, wordAccuracy, top1Agreement, meanKvBytes, samples}],
                      samples: [{index, truth, answers: [{policy, budget, text, anls, wordAccuracy}]}]}
  -h, --help          this text

With random weights (the test fixture) the model cannot read, so the scores are near 0: only the mechanics show.
`;

interface OcrEvalArgs {
  model: string;
  request: OcrEvalRequest;
  scoresPath: string | null;
  json: boolean;
  weightFormat: WeightFormat;
}

export function parseOcrEvalArgs(args: string[]): OcrEvalArgs | 'help' {
  const values = commandOptions(args, { model: { type: 'string' }, samples: { type: 'string' }, seed: { type: 'string' }, ...sweepOptions, json: { type: 'boolean' }, ...weightsOption });
  if (values === 'help') return 'help';
  if (!values.model) throw new UsageError('--model is required');
  const samples = integerOption('samples', values.samples, 4);
  if (samples < 1) throw new UsageError('--samples must be at least 1');
  const seed = integerOption('seed', values.seed, 0);
  if (seed < 0 || seed > 0xffffffff) throw new UsageError('--seed must be in 0..4294967295');
  return {
    model: values.model,
    request: { ...sweepRequestOption(values, defaultProbeMaxNewTokens), samples, seed },
    scoresPath: values.scores ?? null,
    json: values.json === true,
    weightFormat: weightFormatOption(values.weights),
  };
}

/** One line per policy x budget: mean KV bytes, ANLS, word accuracy and top-1 agreement with the full cache. */
export function ocrEvalTable(result: OcrEvalResult): string {
  const header = ['policy', 'budget', 'kvBytes (mean)', 'ANLS', 'word accuracy', 'top-1 agreement', 'probes'];
  const lines = result.rows.map((row) => [
    row.policy === 'full' ? policyLabel('full') : row.policy,
    row.budget === null ? '-' : String(row.budget),
    formatBytes(row.meanKvBytes),
    row.anls.toFixed(3),
    row.wordAccuracy.toFixed(3),
    row.top1Agreement.toFixed(3),
    String(row.samples),
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i].length)));
  const format = (cells: string[]): string => cells.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd();
  const stopped = result.stoppedBy === 'cancel' ? ['(stopped: the means cover the probes finished)'] : [];
  return [format(header), ...lines.map(format), ...stopped].join('\n') + '\n';
}

export async function run(args: string[]): Promise<void> {
  const options = parseCommandArgs('ocr-eval', help, () => parseOcrEvalArgs(args));
  if (!options) return;
  const { request, json } = options;
  const inputs = await readCommandInputs('ocr-eval', () => ({ scoreText: options.scoresPath ? readText(options.scoresPath, 'score file') : null }));
  if (!inputs) return;
  const { scoreText } = inputs;
  const node = await openNodeSession(options.model, options.weightFormat);
  try {
    const session = cliChatSession(node);
    if (scoreText !== null) await session.useHeadScores(parseScoreFile(scoreText), 'import');
    const bar = stderrProgress('probes');
    const result = await session.ocrEval(request, nodeProbeRenderer, ({ done, total, sample }) => {
      bar.update(done, total, `${done}/${total} probes`);
      if (!process.stderr.isTTY) process.stderr.write(`ocr-eval: probe ${done}/${total}: ${JSON.stringify(sample.truth)} -> full cache ${JSON.stringify(sample.answers[0].text)}\n`);
    });
    bar.end();
    for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
    process.stdout.write(json ? `${JSON.stringify(result)}\n` : ocrEvalTable(result));
  } finally {
    node.destroy();
  }
}
