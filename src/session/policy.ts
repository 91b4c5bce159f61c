/**
 * Which KV policy and head scores a run uses, the same for the app, the CLI and the benchmark: the person's options
 * go through the engine's one `kvPolicyFromOptions`, and a model without visual-head scores gets uniform scores
 * (`uniformHeadScores`) with a warning that says so.
 */
import { kvPolicyFromOptions, type KvPolicy, type KvPolicyOptions } from '../engine/kv-policy';
import { uniformHeadScores } from '../sparsemm/random';

export const uniformScoresWarning = 'No visual-head scores for this model: SparseMM uses uniform scores (every head the same budget).';

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
