/**
 * The fidelity sweep of a chat session: the person's policies x budgets on the prepared prompt, through the engine's
 * one-prefill sweep (engine/fidelity-run.ts), turned into rows with the answers as text.
 */
import { runFidelity, type FidelityRunOptions } from '../engine/fidelity-run';
import type { KvPolicy } from '../engine/kv-policy';
import type { VlmModel } from '../engine/model';
import type { PreparedInputs } from '../model-io/processor';
import { parseBudgetList, SweepInputError } from '../sparsemm/fidelity';
import { policyTable } from '../sparsemm/policies';
import type { SessionModel } from './answer-run';
import type { PictureInputs } from './conversation-pictures';
import { firstDifference } from '../sparsemm/fidelity';
import type { AnswerFidelity, FidelityRow, FidelitySweepProgress, FidelitySweepRequest, FidelitySweepResult } from './fidelity-types';
import type { AskOptions, RunResult } from './types';
import type { WeightFormat } from '../model-io/quantize';

export interface FidelitySweepRun {
  ready: SessionModel;
  prepared: PreparedInputs;
  pictures: PictureInputs;
  request: FidelitySweepRequest;
  /** The session's one policy rule (head scores, uniform-scores warning). */
  policyOf: (options: AskOptions) => { kvPolicy: KvPolicy | undefined; warnings: string[] };
  signal: AbortSignal;
  onProgress?: (progress: FidelitySweepProgress) => void;
  /**
   * With request.weightFormat other than the loaded model's: the same model loaded in that format, on the same device.
   * The reference is then the loaded model's full-cache answer and every row (the full cache included) runs on this one.
   */
  rowsModel?: VlmModel;
}

/**
 * Refuses a request that cannot run (no policy, full against itself, bad budgets), with the message to show; nothing
 * has started. `referenceFormat`: the loaded model's weight format (the reference's).
 */
export function checkSweepRequest(request: FidelitySweepRequest, referenceFormat: WeightFormat = 'bf16'): void {
  if (request.policies.length === 0) throw new SweepInputError('Pick at least one policy to compare with the full cache.');
  const otherWeights = request.weightFormat !== undefined && request.weightFormat !== referenceFormat;
  for (const policy of request.policies) {
    if (!Object.hasOwn(policyTable, policy)) throw new SweepInputError(`Unknown policy "${policy}".`);
    if (policy === 'full' && !otherWeights) {
      throw new SweepInputError(`"full" is the reference every row is compared with (${referenceFormat} weights); pick compressing policies, or other weights.`);
    }
  }
  // The same rules as a typed list: whole numbers above the window, no repeats.
  parseBudgetList(request.budgets.join(','), request.window);
}

/** Answer text without special tokens (the tokenizer refuses an empty list). */
function answerText(ready: SessionModel, ids: number[]): string {
  const eos = new Set(ready.processor.eosTokenIds);
  const shown = ids.filter((id) => !eos.has(id));
  return shown.length === 0 ? '' : ready.processor.decode(shown, { skipSpecialTokens: true });
}

export async function runFidelitySweep(run: FidelitySweepRun): Promise<FidelitySweepResult> {
  const { ready, prepared, pictures, request, policyOf, signal, onProgress, rowsModel } = run;
  const referenceFormat = ready.model.weightFormat;
  checkSweepRequest(request, referenceFormat);
  const rowsFormat = request.weightFormat ?? referenceFormat;
  const otherWeights = rowsFormat !== referenceFormat;
  if (otherWeights && rowsModel?.weightFormat !== rowsFormat) throw new Error(`The sweep's rows need the model loaded in ${rowsFormat} weights beside the ${referenceFormat} one.`);
  const budgets = [...request.budgets].sort((a, b) => a - b);
  const cases: { policy: FidelityRow['policy']; budget: number | null; kvPolicy: KvPolicy | null }[] = [];
  const warnings = new Set<string>();
  for (const policy of request.policies) {
    if (policy === 'full') {
      cases.push({ policy, budget: null, kvPolicy: null });
      continue;
    }
    for (const budget of budgets) {
      const chosen = policyOf({ policy, budget, window: request.window, ratio: request.ratio, maxNewTokens: request.maxNewTokens });
      if (!chosen.kvPolicy) throw new Error(`Policy "${policy}" gave no KV policy.`);
      for (const warning of chosen.warnings) warnings.add(warning);
      cases.push({ policy, budget, kvPolicy: chosen.kvPolicy });
    }
  }
  const rows: FidelityRow[] = [];
  const prompt: Omit<FidelityRunOptions, 'policies'> = {
    inputIds: prepared.inputIds,
    pixelValues: prepared.pixelValues,
    numTiles: prepared.numTiles,
    // The vision tower and connector stay bf16 in every weight format: the features serve both models.
    imageFeatures: pictures.features.length > 0 ? pictures.features : undefined,
    maxNewTokens: request.maxNewTokens,
    eosTokenIds: ready.processor.eosTokenIds,
    signal,
  };
  // With other weights: first the reference model's full-cache answer alone, its logits kept for the rows' run.
  const reference = otherWeights ? await runFidelity(ready.model, { ...prompt, policies: [], keepReferenceLogits: true }) : null;
  try {
    const stoppedEarly = reference?.stoppedBy === 'cancel';
    const result = stoppedEarly ? reference : await runFidelity(otherWeights && rowsModel ? rowsModel : ready.model, {
      ...prompt,
      policies: cases.map((c) => c.kvPolicy),
      reference: reference?.reference.logits && { tokenIds: reference.reference.tokenIds, logits: reference.reference.logits },
      onProgress: ({ done, total }) => onProgress?.({ done, total, row: done > 1 ? rows[done - 2] : undefined }),
      onCase: (row, index) => {
        const { summary } = row;
        rows.push({
          weights: rowsFormat,
          policy: cases[index].policy,
          budget: cases[index].budget,
          kvBytes: row.kvBytes,
          compressed: row.compressed,
          top1Agreement: summary.top1Agreement,
          agreedSteps: summary.agreedSteps,
          steps: summary.steps,
          meanKl: summary.meanKl,
          maxKl: summary.maxKl,
          firstDifference: row.firstDifference,
          tokenIds: row.tokenIds,
          text: answerText(ready, row.tokenIds),
        });
      },
    });
    const { tokenIds, kvBytes } = (reference ?? result).reference;
    return {
      promptTokens: result.promptTokens,
      reference: { tokenIds, text: answerText(ready, tokenIds), kvBytes, weights: referenceFormat },
      rows,
      stoppedBy: result.stoppedBy,
      warnings: [...warnings],
    };
  } finally {
    ready.model.ctx.allocator.destroy(reference?.reference.logits ?? null);
  }
}

/**
 * The fidelity of a comparison's policy answer (Compare's "top-1 agreement 31/32, mean KL 0.004, first difference at
 * token 17"): one more prefill, the policy's cache teacher-forced along the full-cache answer; the first difference is
 * that of the two answers shown. Null when stopped.
 */
export async function answerFidelity(
  run: Omit<FidelitySweepRun, 'request' | 'onProgress'>,
  options: AskOptions,
  full: RunResult,
  policy: RunResult,
): Promise<AnswerFidelity | null> {
  const { policy: name, budget, window, ratio, maxNewTokens } = options;
  const sweep = await runFidelitySweep({ ...run, request: { policies: [name], budgets: [budget], window, ratio, maxNewTokens } });
  const row = sweep.rows[0];
  if (sweep.stoppedBy === 'cancel' || !row) return null;
  const difference = firstDifference(full.tokenIds, policy.tokenIds);
  let differenceText: AnswerFidelity['differenceText'] = null;
  if (difference !== null && difference < policy.tokenIds.length) {
    const before = answerText(run.ready, policy.tokenIds.slice(0, difference));
    const through = answerText(run.ready, policy.tokenIds.slice(0, difference + 1));
    if (through.startsWith(before)) differenceText = { before, token: through.slice(before.length) };
  }
  const { agreedSteps, steps, meanKl, maxKl } = row;
  return { agreedSteps, steps, meanKl, maxKl, firstDifference: difference, differenceText };
}
