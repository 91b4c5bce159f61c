/**
 * `npm run cli -- budgets ...`: prints the per-(layer, KV head) prefix capacities a budget policy gives,
 * as JSON `{"capacity": [[per KV head] per layer]}`. Usage errors go to stderr with exit code 2.
 */
import { budgetPolicies, defaultBudgetParams, headCapacities, type BudgetParams, type BudgetPolicy } from '../sparsemm/budgets';
import { policyTable } from '../sparsemm/policies';
import { headScoreMatrix, parseScoreFile } from '../sparsemm/score-file';
import { parseModelConfig } from '../model-io/config';
import { budgetOptions, budgetParamsOption, commandOptions, integerOption, readText, UsageError } from './args';
import { errorMessage } from '../errors';

/** Policies whose capacities are known before prefill (AdaKV's depend on the attention scores). */
// A policy whose split needs the attention at prefill (adakv) has no plan to print here.
const cliPolicies = budgetPolicies.filter((p) => !policyTable[p].attentionDependent);

const help = `Usage: npm run cli -- budgets --policy POLICY [options]

Prints {"capacity": [[prefix tokens kept per KV head] per layer]}: the prefix positions each KV head keeps
at the end of prefill, on top of the last --window prompt tokens, which every head keeps.

Options:
  --policy P        ${cliPolicies.join(' | ')} (adakv depends on attention at prefill: not available here)
  --scores FILE     visual-head score file {"<layer>-<head>": [scores...]} (required by sparsemm)
  --config FILE     model config.json to read the layer and head counts from (instead of the three below)
  --layers L        decoder layers
  --q-heads H       query heads per layer
  --kv-heads K      KV heads per layer (H must be a multiple of K)
  --budget B        average tokens kept per head, window included (default ${defaultBudgetParams.budget})
  --window W        recent tokens always kept (default ${defaultBudgetParams.window})
  --ratio R         sparsemm/random: share of the budget every head gets (default ${defaultBudgetParams.ratio})
  --prompt-len N    prompt length; capacities are clamped to N - W, and nothing is compressed when N < B.
                    Omitted: the prompt is assumed long enough that compression happens and nothing clamps.
  --seed S          seed of the random policy's head scores (default ${defaultBudgetParams.seed})
  -h, --help        this text
`;

/** Parses the arguments and computes the capacities; throws UsageError / RangeError / ScoreFileError on bad input. */
export function budgetsFromArgs(args: string[]): { capacity: number[][] } | 'help' {
  const values = commandOptions(args, {
    ...budgetOptions,
    config: { type: 'string' },
    layers: { type: 'string' },
    'q-heads': { type: 'string' },
    'kv-heads': { type: 'string' },
    'prompt-len': { type: 'string' },
    seed: { type: 'string' },
  });
  if (values === 'help') return 'help';

  const policy = values.policy;
  if (policy === undefined) throw new UsageError('--policy is required');
  if (!(cliPolicies as readonly string[]).includes(policy)) {
    throw new UsageError(`--policy must be one of ${cliPolicies.join(', ')}, got "${policy}"`);
  }

  let layers: number;
  let qHeads: number;
  let kvHeads: number;
  if (values.config !== undefined) {
    const text = parseModelConfig(readText(values.config, 'model config')).text;
    layers = integerOption('layers', values.layers, text.numLayers);
    qHeads = integerOption('q-heads', values['q-heads'], text.numHeads);
    kvHeads = integerOption('kv-heads', values['kv-heads'], text.numKvHeads);
  } else {
    layers = integerOption('layers', values.layers);
    qHeads = integerOption('q-heads', values['q-heads']);
    kvHeads = integerOption('kv-heads', values['kv-heads']);
  }

  const params: BudgetParams = { ...budgetParamsOption(values), seed: integerOption('seed', values.seed, defaultBudgetParams.seed) };
  // No prompt length given: the largest safe integer compresses (>= budget) and never clamps a capacity.
  const promptLength = integerOption('prompt-len', values['prompt-len'], Number.MAX_SAFE_INTEGER);

  let headScores: number[][] | undefined;
  if (policy === 'sparsemm') {
    if (values.scores === undefined) throw new UsageError('--scores FILE is required by the sparsemm policy');
    headScores = headScoreMatrix(parseScoreFile(readText(values.scores, 'score file')), layers, qHeads);
    if (headScores.every((row) => row.every((score) => score === 0))) {
      process.stderr.write('budgets: warning: every head score in the file is zero (no visual head was found); the budget is split evenly\n');
    }
  }

  const result = headCapacities(policy as BudgetPolicy, { layers, qHeads, kvHeads, promptLength, params, headScores });
  return { capacity: result.capacity };
}

export async function run(args: string[]): Promise<void> {
  let output: { capacity: number[][] } | 'help';
  try {
    output = budgetsFromArgs(args);
  } catch (error) {
    // Every failure here is a problem with the command line or its input files.
    process.stderr.write(`budgets: ${errorMessage(error)}\n(see: npm run cli -- budgets --help)\n`);
    process.exitCode = 2;
    return;
  }
  process.stdout.write(output === 'help' ? help : `${JSON.stringify(output)}\n`);
}
