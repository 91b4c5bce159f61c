/** The options `fidelity` and `ocr-eval` share: which policies and budgets to sweep, and their knobs. */
import { defaultBudgetParams } from '../sparsemm/budgets';
import { parseBudgetList, parsePolicyList, sweepPolicies } from '../sparsemm/fidelity';
import type { FidelitySweepRequest } from '../session/fidelity-types';
import type { WeightFormat } from '../model-io/quantize';
import { integerOption, kvKnobOptions, numberOption, UsageError } from './args';
import { errorMessage } from '../errors';

export const defaultBudgets = '64,128,256,512';

/** The help lines of sweepOptions. */
export function sweepHelp(defaultTokens: number): string {
  return `  --policies P,...    policies to compare (default all: ${sweepPolicies.join(',')})
  --budgets B,...     average tokens kept per KV head, window included (default ${defaultBudgets})
  --window W          recent prompt tokens every head keeps (default ${defaultBudgetParams.window}); budgets must exceed it
  --ratio R           sparsemm/random: share of the budget every head gets (default ${defaultBudgetParams.ratio})
  --scores FILE       visual-head scores {"<layer>-<head>": [...]} for sparsemm (omitted: uniform scores, with a warning)
  --max-new-tokens N  tokens of the reference answer at most (default ${defaultTokens})
`;
}

/** The sweep options `fidelity` and `ocr-eval` share, as parseArgs declares them. */
export const sweepOptions = {
  policies: { type: 'string' },
  budgets: { type: 'string' },
  ...kvKnobOptions,
  'max-new-tokens': { type: 'string' },
} as const;

/**
 * --policies, --budgets, --window, --ratio and --max-new-tokens as a checked sweep request. `weightFormat`: the rows'
 * weights (fidelity --weights) when they are not bf16; `full` may then be listed.
 */
export function sweepRequestOption(
  values: { policies?: string; budgets?: string; window?: string; ratio?: string; 'max-new-tokens'?: string },
  defaultTokens: number,
  weightFormat: WeightFormat = 'bf16',
): FidelitySweepRequest {
  const window = integerOption('window', values.window, defaultBudgetParams.window);
  if (window < 1) throw new UsageError('--window must be at least 1');
  const ratio = numberOption('ratio', values.ratio, defaultBudgetParams.ratio);
  if (!(ratio >= 0 && ratio <= 1)) throw new UsageError('--ratio must be in [0, 1]');
  const maxNewTokens = integerOption('max-new-tokens', values['max-new-tokens'], defaultTokens);
  if (maxNewTokens < 1) throw new UsageError('--max-new-tokens must be at least 1');
  try {
    return {
      policies: parsePolicyList(values.policies ?? (weightFormat === 'bf16' ? sweepPolicies : ['full', ...sweepPolicies]).join(','), weightFormat !== 'bf16'),
      budgets: parseBudgetList(values.budgets ?? defaultBudgets, window),
      window,
      ratio,
      maxNewTokens,
      ...(weightFormat === 'bf16' ? {} : { weightFormat }),
    };
  } catch (error) {
    throw new UsageError(errorMessage(error));
  }
}
