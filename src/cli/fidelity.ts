/**
 * `npm run cli -- fidelity --model M --image I --prompt P [options]`: how far each KV policy's answer drifts from the
 * full cache's on one question (ChatSession.fidelitySweep: one prefill, the full-cache reference, every policy x budget
 * teacher-forced along it). Prints a table, or with --json one object; --plot FILE writes the sweep as an SVG.
 */
import { writeFileSync } from 'node:fs';
import { parseScoreFile } from '../sparsemm/score-file';
import { ContextOverflowError } from '../session/chat-session';
import type { FidelitySweepRequest, FidelitySweepResult } from '../session/fidelity-types';
import { commandOptions, modelPromptOptions, parseCommandArgs, readCommandInputs, readText, reportUsageError, UsageError, weightFormatOption, weightsOption } from './args';
import { VlmModel } from '../engine/model';
import { sweepHelp, sweepOptions, sweepRequestOption } from './sweep-args';
import { cliChatSession, openNodeSession, readImageFile, stderrProgress } from './node-session';
import { fidelitySvg, formatBytes } from './fidelity-plot';

const defaultMaxNewTokens = 32;

const help = `Usage: npm run cli -- fidelity --model DIR_OR_URL --prompt TEXT [--image FILE ...] [options]

Answers the question with the full KV cache (the reference), then feeds the same tokens to each policy's compressed
cache (teacher forcing) and compares the next-token distributions on the GPU at every step: top-1 agreement, mean and
largest KL(full || policy). Each policy's own greedy answer is decoded too, with the index of its first token that
differs from the reference. One prefill serves every policy and budget.

With --weights q8 or q4 the reference stays the bf16 weights' full-cache answer, and every row runs on the model
loaded a second time in that format (both on the GPU at once): "full" then lists the quantized full cache itself, so
one table gives "q4 full" and "q4 + sparsemm 256" against "bf16 full". Default policies then: full and all others.

Options:
  --model M           model folder, http(s) base URL, or hub id
  --image FILE        image (PNG, JPEG, WebP), more than once for several; omitted: a text-only prompt
  --prompt TEXT       the question
${sweepHelp(defaultMaxNewTokens)}  --weights F         the rows' weight format: bf16 (default: rows against the same model's full cache), q8 or q4
  --json              print {reference: {tokenIds, text}, rows: [{policy, budget, kvBytes, top1Agreement, meanKl,
                      maxKl, firstDifference, tokenIds, text, ...}]} (firstDifference null when the answers agree)
  --plot FILE         write an SVG: top-1 agreement and mean KL against KV bytes, one line per policy
  -h, --help          this text

With random weights (the test fixture) the numbers only show the mechanics; with the real model they say how much a
policy changes what the model would have said on this image and question.
`;

interface FidelityArgs {
  model: string;
  prompt: string;
  images: string[];
  request: FidelitySweepRequest;
  scoresPath: string | null;
  json: boolean;
  plotPath: string | null;
}

export function parseFidelityArgs(args: string[]): FidelityArgs | 'help' {
  const values = commandOptions(args, {
    ...modelPromptOptions,
    ...sweepOptions,
    ...weightsOption,
    json: { type: 'boolean' },
    plot: { type: 'string' },
  });
  if (values === 'help') return 'help';
  if (!values.model) throw new UsageError('--model is required');
  if (values.prompt === undefined || values.prompt.trim() === '') throw new UsageError('--prompt is required and must not be empty');
  return {
    model: values.model,
    prompt: values.prompt,
    images: values.image ?? [],
    request: sweepRequestOption(values, defaultMaxNewTokens, weightFormatOption(values.weights)),
    scoresPath: values.scores ?? null,
    json: values.json === true,
    plotPath: values.plot ?? null,
  };
}

function fixed(value: number, digits: number): string {
  return value.toFixed(digits);
}

/**
 * The table a person reads: one line per (policy, budget) under the reference answer; with other weights than the
 * reference's, a first column names the rows' weights ("q4  sparsemm  256" against "bf16 weights, full cache").
 */
export function fidelityTable(result: FidelitySweepResult): string {
  const otherWeights = result.rows.some((row) => row.weights !== result.reference.weights);
  const header = [...(otherWeights ? ['weights'] : []), 'policy', 'budget', 'kvBytes', 'top-1 agreement', 'mean KL', 'max KL', 'first difference'];
  const lines = result.rows.map((row) => [
    ...(otherWeights ? [row.weights] : []),
    row.policy,
    row.budget === null ? '-' : String(row.budget),
    `${row.kvBytes} (${formatBytes(row.kvBytes)})`,
    `${row.agreedSteps}/${row.steps} (${fixed(row.top1Agreement, 3)})`,
    fixed(row.meanKl, 4),
    fixed(row.maxKl, 4),
    row.firstDifference === null ? 'none' : `token ${row.firstDifference}`,
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i].length)));
  const format = (cells: string[]): string => cells.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd();
  const referenceWeights = otherWeights ? `${result.reference.weights} weights, ` : '';
  const reference = `reference (${referenceWeights}full cache, ${result.reference.kvBytes} bytes = ${formatBytes(result.reference.kvBytes)}), ` +
    `${result.reference.tokenIds.length} tokens: ${JSON.stringify(result.reference.text)}`;
  const stopped = result.stoppedBy === 'cancel' ? ['(stopped: the rows above are the ones finished)'] : [];
  return [reference, '', format(header), ...lines.map(format), ...stopped].join('\n') + '\n';
}

export async function run(args: string[]): Promise<void> {
  const options = parseCommandArgs('fidelity', help, () => parseFidelityArgs(args));
  if (!options) return;
  const { model: modelPath, prompt, images, request, scoresPath, json, plotPath } = options;
  const inputs = await readCommandInputs('fidelity', async () => ({
    scoreText: scoresPath ? readText(scoresPath, 'score file') : null,
    pictures: await Promise.all(images.map((file) => readImageFile(file))),
  }));
  if (!inputs) return;
  const { scoreText, pictures } = inputs;

  const node = await openNodeSession(modelPath);
  let rowsModel: VlmModel | undefined;
  try {
    if (request.weightFormat) {
      rowsModel = await VlmModel.load(node.ctx, node.loaded.weights, node.loaded.config, { weightFormat: request.weightFormat });
      const { bytes, note } = rowsModel.loadedWeights;
      process.stderr.write(`rows: ${request.weightFormat} weights, ${formatBytes(bytes)} on the GPU beside the bf16 reference's ${formatBytes(node.model.loadedWeights.bytes)}\n`);
      if (note) process.stderr.write(`note: ${note}\n`);
    }
    const session = cliChatSession(node);
    if (scoreText !== null) await session.useHeadScores(parseScoreFile(scoreText), 'import');
    pictures.forEach((image, i) => session.addImage(image, images[i]));
    const bar = stderrProgress('fidelity');
    const result = await session.fidelitySweep(prompt, request, ({ done, total, row }) =>
      bar.update(done, total, row ? `${row.weights} ${row.policy} ${row.budget ?? ''}` : 'reference'),
    rowsModel);
    bar.end();
    for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
    if (plotPath !== null && result.rows.length > 0) {
      writeFileSync(plotPath, fidelitySvg(result, `${node.loaded.sourceId}: ${JSON.stringify(prompt)}`));
      process.stderr.write(`plot: ${plotPath}\n`);
    }
    if (json) {
      process.stdout.write(`${JSON.stringify({ promptTokens: result.promptTokens, reference: result.reference, rows: result.rows, stoppedBy: result.stoppedBy })}\n`);
    } else {
      process.stdout.write(fidelityTable(result));
    }
  } catch (error) {
    if (!(error instanceof ContextOverflowError)) throw error;
    reportUsageError('fidelity', error);
  } finally {
    rowsModel?.destroy();
    node.destroy();
  }
}
