/**
 * `npm run cli -- generate --model DIR_OR_URL --image FILE --prompt TEXT [options]`: runs the WebGPU engine through
 * dawn.node and prints the answer, or with --json one object with the answer and its measurements.
 */
import { parseArgs } from 'node:util';
import { budgetPolicies, defaultBudgetParams, validateBudgetParams, type BudgetParams, type BudgetPolicy } from '../sparsemm/budgets';
import { parseScoreFile } from '../sparsemm/score-file';
import type { GenerateResult } from '../engine/model';
import { ChatSession } from '../session/chat-session';
import { integerOption, numberOption, readText, UsageError, parseCommandArgs } from './args';
import { openNodeSession, readImageFile } from './node-session';
import { GenerateDump } from './dump';
import { errorMessage } from '../errors';

const help = `Usage: npm run cli -- generate --model DIR_OR_URL --prompt TEXT [--image FILE] [options]

Runs SmolVLM (Idefics3) in our WGSL kernels on dawn.node and prints the answer.

Options:
  --model M           model folder, http(s) base URL, or hub id (e.g. HuggingFaceTB/SmolVLM-256M-Instruct)
  --image FILE        image (PNG, JPEG, WebP); omitted: a text-only prompt
  --prompt TEXT       the question
  --max-new-tokens N  tokens to generate at most (default 64)
  --policy P          KV-cache policy: ${budgetPolicies.join(' | ')} (default full)
  --budget B          average tokens kept per KV head, window included (default ${defaultBudgetParams.budget})
  --window W          recent prompt tokens every head keeps (default ${defaultBudgetParams.window})
  --ratio R           sparsemm: share of the budget every head gets (default ${defaultBudgetParams.ratio})
  --scores FILE       visual-head scores {"<layer>-<head>": [...]} for sparsemm (omitted: uniform scores, with a warning)
  --temperature T     0 = greedy (default 0)
  --top-p P           nucleus sampling threshold when T > 0 (default 0.9)
  --seed S            sampling seed (default 0)
  --dump DIR          write the model's inputs and per-step logits into DIR (.npy + manifest.json, see src/cli/dump.ts)
                      for scripts/parity/transformers_parity.py; slows decoding (one logits read-back per token)
  --json              print {text, tokenIds, promptTokens, imageTokens, prefillMs, decodeMsPerToken, kvBytes, weightBytes, ...}
  -h, --help          this text
`;

interface GenerateArgs {
  model: string;
  image: string | null;
  prompt: string;
  maxNewTokens: number;
  policy: BudgetPolicy;
  params: BudgetParams;
  scoresPath: string | null;
  sampling: { temperature: number; topP: number; seed: number } | undefined;
  json: boolean;
  dumpDir: string | null;
}

export function parseGenerateArgs(args: string[]): GenerateArgs | 'help' {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      model: { type: 'string' },
      image: { type: 'string' },
      prompt: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      policy: { type: 'string' },
      budget: { type: 'string' },
      window: { type: 'string' },
      ratio: { type: 'string' },
      scores: { type: 'string' },
      temperature: { type: 'string' },
      'top-p': { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean' },
      dump: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (!values.model) throw new UsageError('--model is required');
  if (values.prompt === undefined || values.prompt.trim() === '') throw new UsageError('--prompt is required and must not be empty');
  const policy = values.policy ?? 'full';
  if (!(budgetPolicies as readonly string[]).includes(policy)) throw new UsageError(`--policy must be one of ${budgetPolicies.join(', ')}, got "${policy}"`);
  const params: BudgetParams = {
    ...defaultBudgetParams,
    budget: integerOption('budget', values.budget, defaultBudgetParams.budget),
    window: integerOption('window', values.window, defaultBudgetParams.window),
    ratio: numberOption('ratio', values.ratio, defaultBudgetParams.ratio),
  };
  try {
    validateBudgetParams(params);
  } catch (error) {
    throw new UsageError(errorMessage(error));
  }
  const maxNewTokens = integerOption('max-new-tokens', values['max-new-tokens'], 64);
  if (maxNewTokens < 1) throw new UsageError('--max-new-tokens must be at least 1');
  const temperature = numberOption('temperature', values.temperature, 0);
  if (temperature < 0) throw new UsageError('--temperature must be >= 0');
  const topP = numberOption('top-p', values['top-p'], 0.9);
  if (!(topP > 0 && topP <= 1)) throw new UsageError('--top-p must be in (0, 1]');
  return {
    model: values.model,
    image: values.image ?? null,
    prompt: values.prompt,
    maxNewTokens,
    policy: policy as BudgetPolicy,
    params,
    scoresPath: values.scores ?? null,
    sampling: temperature > 0 ? { temperature, topP, seed: integerOption('seed', values.seed, 0) } : undefined,
    json: values.json === true,
    dumpDir: values.dump ?? null,
  };
}

export interface GenerateReport extends Omit<GenerateResult, 'keptPerHead' | 'decodeStepMs'> {
  text: string;
  policy: BudgetPolicy;
  budget: number | null;
  /** Average prompt tokens kept per KV head. */
  keptTokensPerHead: number;
  /** True when every model file came from the cache (a second load makes no network request). */
  modelFromCache: boolean;
  warnings: string[];
}

export async function run(args: string[]): Promise<void> {
  const options = parseCommandArgs('generate', help, () => parseGenerateArgs(args));
  if (!options) return;
  const { model: modelPath, image: imagePath, prompt, maxNewTokens, policy, params, scoresPath, sampling, json, dumpDir } = options;
  let image: Awaited<ReturnType<typeof readImageFile>> | null;
  let scoreText: string | null;
  try {
    image = imagePath ? await readImageFile(imagePath) : null;
    scoreText = scoresPath ? readText(scoresPath, 'score file') : null;
  } catch (error) {
    process.stderr.write(`generate: ${errorMessage(error)}\n`);
    process.exitCode = 2;
    return;
  }

  const node = await openNodeSession(modelPath);
  try {
    // The same ChatSession the app's worker uses: one policy rule, one prompt, one answer path.
    const session = new ChatSession({ noScoresHint: 'Pass --scores FILE (see the heads command).', recordAttention: false });
    // The CLI hands the processor the picture as read (no scaling down first), so no longest edge applies.
    session.attachModel({ sourceId: node.loaded.sourceId, model: node.model, processor: node.processor, processorLongestEdge: Infinity }, null);
    if (scoreText !== null && policy === 'sparsemm') await session.useHeadScores(parseScoreFile(scoreText), 'import');
    if (image) session.setImage(image, imagePath ?? 'image');
    const askOptions = { policy, budget: params.budget, window: params.window, ratio: params.ratio, maxNewTokens, sampling };
    const { warnings } = session.policyFor(askOptions);
    for (const warning of warnings) process.stderr.write(`warning: ${warning}\n`);

    let printed = '';
    // Made once the prompt is prepared (the dump records the processor's inputs).
    const dump: { current: GenerateDump | null } = { current: null };
    const { config } = node.loaded;
    const { generation: result } = await session.answer(prompt, {
      ...askOptions,
      onPrepared: (inputs) => {
        if (dumpDir === null) return;
        dump.current = new GenerateDump(dumpDir, {
          model: node.loaded.sourceId, prompt, image: imagePath, policy, greedy: sampling === undefined,
          imageTokenId: config.imageTokenId, imageSeqLen: config.imageSeqLen, vocabSize: config.text.vocabSize,
        }, inputs);
      },
      // Only with --dump: reading the logits back costs a copy per step.
      onLogits: dumpDir === null ? undefined : (logits, step) => dump.current?.onLogits(logits, step),
    }, (event) => {
      if (json) return;
      // Stream the text as it grows (multi-byte characters may span tokens, so a rewritten tail is not printed twice).
      if (event.text.startsWith(printed)) process.stdout.write(event.text.slice(printed.length));
      printed = event.text;
    });
    const text = node.processor.decode(result.tokenIds, { skipSpecialTokens: true });
    dump.current?.write({ tokenIds: result.tokenIds, text, stoppedBy: result.stoppedBy });
    const keptAll = result.keptPerHead.flat();
    const { keptPerHead: _kept, decodeStepMs: _steps, ...measurements } = result;
    const report: GenerateReport = {
      text,
      ...measurements,
      policy,
      budget: policy === 'full' ? null : params.budget,
      keptTokensPerHead: keptAll.reduce((a, b) => a + b, 0) / keptAll.length,
      modelFromCache: node.loaded.fromCache,
      warnings,
    };
    if (json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else {
      process.stdout.write('\n');
      process.stderr.write(
        `[${result.promptTokens} prompt tokens (${result.imageTokens} image), ${result.tokenIds.length} generated, ` +
          `prefill ${result.prefillMs.toFixed(0)} ms, decode ${result.decodeMsPerToken.toFixed(1)} ms/token, ` +
          `KV ${(result.kvBytes / 2 ** 20).toFixed(2)} MiB (full cache ${(result.fullCacheKvBytes / 2 ** 20).toFixed(2)} MiB), policy ${policy}]\n`,
      );
    }
  } finally {
    node.destroy();
  }
}
