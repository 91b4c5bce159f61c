/**
 * Which KV policy and head scores a run uses, the same for the app, the CLI and the benchmark: the person's options
 * go through the engine's one `kvPolicyFromOptions`, and a model without visual-head scores gets uniform scores
 * (`uniformHeadScores`) with a warning that says so.
 */
import { budgetParamsFromOptions, kvPolicyFromOptions, type KvPolicy, type KvPolicyOptions } from '../engine/kv-policy';
import { headCapacities } from '../sparsemm/budgets';
import { policyLabel } from '../sparsemm/policies';
import { uniformHeadScores } from '../sparsemm/random';
import type { BudgetPlan } from './types';
import { uniformScoresWarning } from './uniform-scores-note';

/** The [layer][query head] shape of a text model's scores. */
export interface HeadScoreShape {
  numLayers: number;
  numHeads: number;
}

/**
 * The engine policy for `options` plus what the person should be told. `scores` is the model's visual-head score
 * matrix, or null; `noScoresHint` says how to get scores in this front end (e.g. "Pass --scores FILE.").
 */
export function choosePolicy(
  options: KvPolicyOptions,
  scores: number[][] | null,
  shape: HeadScoreShape,
  noScoresHint: string,
): { kvPolicy: KvPolicy | undefined; warnings: string[] } {
  const warnings: string[] = [];
  let headScores: number[][] | undefined;
  if (options.policy === 'sparsemm') {
    if (scores) {
      headScores = scores;
    } else {
      headScores = uniformHeadScores(shape.numLayers, shape.numHeads);
      warnings.push(`${uniformScoresWarning} ${noScoresHint}`);
    }
  }
  return { kvPolicy: kvPolicyFromOptions(options, headScores), warnings };
}

/** The benchmark's head scores: the model's own, or uniform ones, with the line the report prints about them. */
export function benchmarkHeadScores(
  scores: { matrix: number[][]; origin: string } | null,
  shape: HeadScoreShape,
): { headScores: number[][]; headScoresSource: string } {
  if (scores) return { headScores: scores.matrix, headScoresSource: `this model's visual-head scores (${scores.origin})` };
  return {
    headScores: uniformHeadScores(shape.numLayers, shape.numHeads),
    headScoresSource: 'uniform scores (no visual-head scores for this model yet)',
  };
}

/** KV budgets `chosen` (choosePolicy's answer for `options`) gives a prompt of `promptLength`, for the budget bars. */
export function budgetPlan(
  options: KvPolicyOptions,
  promptLength: number,
  text: HeadScoreShape & { numKvHeads: number },
  chosen: { kvPolicy: KvPolicy | undefined; warnings: string[] },
): BudgetPlan {
  const capacities = headCapacities(options.policy, {
    layers: text.numLayers,
    qHeads: text.numHeads,
    kvHeads: text.numKvHeads,
    promptLength,
    params: budgetParamsFromOptions(options),
    headScores: chosen.kvPolicy?.headScores,
  });
  const warnings = [...chosen.warnings];
  if (capacities.attentionDependent && capacities.compress) {
    warnings.push(`${policyLabel(options.policy)} splits each layer from the attention at prefill: the bars show the plan (every head the average).`);
  }
  return { promptLength, compressed: capacities.compress, capacities: capacities.capacity, windowLength: capacities.windowLength, warnings };
}
