/**
 * What a fidelity sweep takes and gives (session/fidelity.ts): plain data, the same for the CLI's --json and the
 * worker API (structured-cloneable).
 */
import type { WeightFormat } from '../model-io/quantize';
import type { BudgetPolicy } from '../sparsemm/policies';

/** The policies and budgets to compare with the full cache on one question. */
export interface FidelitySweepRequest {
  /**
   * Compressing policies. 'full' only with `weightFormat`: the quantized model's full cache (the reference is the bf16
   * model's).
   */
  policies: BudgetPolicy[];
  /** Average tokens kept per KV head, window included; each above `window`. */
  budgets: number[];
  /** Most recent prompt tokens every head keeps. */
  window: number;
  /** SparseMM: share of the prefix budget every head gets regardless of its score. */
  ratio: number;
  /** Tokens of the reference answer (and of each policy's own answer) at most. */
  maxNewTokens: number;
  /**
   * The rows' weight format when it is not the reference's: the reference is the loaded (bf16) model's full-cache
   * answer, the rows run on the same model in this format (a second model the caller loads; CLI --weights).
   */
  weightFormat?: WeightFormat;
}

/** One (weights, policy, budget) against the reference (the full cache on the reference's weights). */
export interface FidelityRow {
  /** The weight format of the model this row ran on. */
  weights: WeightFormat;
  policy: BudgetPolicy;
  /** null for the full cache (a row of a quantized model against the bf16 reference). */
  budget: number | null;
  /** Bytes of this policy's KV cache (room for the new tokens included). */
  kvBytes: number;
  /** False when the budget is not below the prompt length: the cache is the full one. */
  compressed: boolean;
  /** Teacher-forced steps whose top-1 token is the full cache's, over all steps (agreedSteps / steps), in [0, 1]. */
  top1Agreement: number;
  agreedSteps: number;
  steps: number;
  /** KL(full || compressed) of the next-token distributions, in nats: mean and largest over the steps. */
  meanKl: number;
  maxKl: number;
  /** Index of the first token of the policy's own answer that differs from the reference; null when none does. */
  firstDifference: number | null;
  /** The policy's own greedy answer. */
  tokenIds: number[];
  text: string;
}

export interface FidelitySweepResult {
  promptTokens: number;
  /** The full-cache answer every row is compared with, and the weight format of the model that gave it. */
  reference: { tokenIds: number[]; text: string; kvBytes: number; weights: WeightFormat };
  /** One per (policy, budget), policies in the order asked, budgets ascending; fewer when stopped. */
  rows: FidelityRow[];
  stoppedBy: 'done' | 'cancel';
  /** Things the person should know (e.g. SparseMM ran on uniform head scores). */
  warnings: string[];
}

/** Progress of a sweep: the reference counts as the first of total parts. */
export interface FidelitySweepProgress {
  done: number;
  total: number;
  /** The row just finished, if the part was a row. */
  row?: FidelityRow;
  /** Before any row: a step of making the rows' weight copy ("q4 copy: uploading weights"); done is 0 then. */
  step?: string;
}

/** The OCR accuracy evaluation: the sweep's policies x budgets on `samples` synthetic OCR probes with known text. */
export interface OcrEvalRequest extends FidelitySweepRequest {
  samples: number;
  /** Seed of the probe set (the visual-head search's probes with the same seed are the same pictures). */
  seed: number;
}

/** One probe: its ground truth and each answer's scores. */
export interface OcrEvalSample {
  index: number;
  /** The probe's text chunks in reading order, one per line. */
  truth: string;
  answers: { policy: FidelityRow['policy'] | 'full'; budget: number | null; text: string; anls: number; wordAccuracy: number }[];
}

/** The scores of one policy x budget (or the full cache, budget null) averaged over the probes. */
export interface OcrEvalRow {
  policy: FidelityRow['policy'] | 'full';
  budget: number | null;
  /** Mean ANLS (DocVQA's metric: thresholded normalized Levenshtein similarity), in [0, 1]. */
  anls: number;
  /** Mean share of the ground-truth words found in the answer, in [0, 1]. */
  wordAccuracy: number;
  /** Mean top-1 agreement with the full cache along its answer (1 for the full cache). */
  top1Agreement: number;
  meanKvBytes: number;
  samples: number;
}

/** After each probe of an OCR evaluation. */
export interface OcrEvalProgress {
  done: number;
  total: number;
  sample: OcrEvalSample;
}

export interface OcrEvalResult {
  /** The full cache first, then the policies in the order asked, budgets ascending. */
  rows: OcrEvalRow[];
  samples: OcrEvalSample[];
  stoppedBy: 'done' | 'cancel';
  warnings: string[];
}

/** The fidelity line of a comparison's policy answer: its cache teacher-forced along the full-cache answer. */
export interface AnswerFidelity {
  agreedSteps: number;
  steps: number;
  meanKl: number;
  maxKl: number;
  /** First token of the policy's answer that differs from the full cache's; null when the answers are the same. */
  firstDifference: number | null;
  /** The policy answer's text before that token, and the token's own text (for marking it); null without one. */
  differenceText: { before: string; token: string } | null;
}
