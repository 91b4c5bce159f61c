/**
 * Fidelity of a compressed KV cache against the full cache (pure): the per-step numbers the GPU computes while the
 * compressed cache is teacher-forced along the full-cache answer, summed up into one row per (policy, budget); and the
 * parsing of the sweep's policy and budget lists.
 */
import { budgetPolicies, policyTable, type BudgetPolicy } from './policies';

/** One decode step of the compressed cache fed the reference tokens (what shaders/fidelity.wgsl reads back). */
export interface FidelityStep {
  /** KL(full || compressed) of the next-token distributions, in nats, >= 0. */
  kl: number;
  /** Whether the two distributions' top-1 tokens are the same. */
  top1Agrees: boolean;
  /** Rank of the reference token under the compressed logits: 1 = its top-1 (ties: lower index first). */
  referenceRank: number;
}

export interface FidelitySummary {
  /** Steps whose top-1 tokens agree, over all steps, in [0, 1] (1 for no steps). */
  top1Agreement: number;
  agreedSteps: number;
  steps: number;
  /** Mean and largest KL over the steps (0 for no steps). */
  meanKl: number;
  maxKl: number;
}

/** Sums up the per-step numbers of one (policy, budget). */
export function summarizeFidelity(steps: readonly FidelityStep[]): FidelitySummary {
  let agreedSteps = 0;
  let klSum = 0;
  let maxKl = 0;
  for (const step of steps) {
    if (!(step.kl >= 0)) throw new RangeError(`KL must be a number >= 0, got ${step.kl}`);
    if (step.top1Agrees) agreedSteps += 1;
    klSum += step.kl;
    maxKl = Math.max(maxKl, step.kl);
  }
  const count = steps.length;
  return { top1Agreement: count === 0 ? 1 : agreedSteps / count, agreedSteps, steps: count, meanKl: count === 0 ? 0 : klSum / count, maxKl };
}

/**
 * Index of the first token where `answer` differs from `reference`, or null when they are the same. When one is a
 * prefix of the other, the shorter one's length (the first token one has and the other has not).
 */
export function firstDifference(reference: readonly number[], answer: readonly number[]): number | null {
  const common = Math.min(reference.length, answer.length);
  for (let i = 0; i < common; i++) if (reference[i] !== answer[i]) return i;
  return reference.length === answer.length ? null : common;
}

/** A sweep input that cannot be run: the message says what is wrong. */
export class SweepInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SweepInputError';
  }
}

/** Items of a comma (or space) separated list; empty items are dropped. */
function listItems(text: string): string[] {
  return text.split(/[\s,]+/).filter((item) => item.length > 0);
}

/**
 * Budgets of a sweep from "64,128,256": positive integers, each above the observation window (the budget counts the
 * window), no repeats; returned in ascending order.
 */
export function parseBudgetList(text: string, window: number): number[] {
  const items = listItems(text);
  if (items.length === 0) throw new SweepInputError('The budget list is empty: give one or more budgets, e.g. 64,128,256.');
  const budgets: number[] = [];
  for (const item of items) {
    const value = Number(item);
    if (!/^\d+$/.test(item) || !Number.isSafeInteger(value)) throw new SweepInputError(`Budget "${item}" is not a whole number of tokens.`);
    if (value <= window) throw new SweepInputError(`Budget ${value} must exceed the observation window (${window} tokens), which every head keeps.`);
    if (budgets.includes(value)) throw new SweepInputError(`Budget ${value} is listed twice.`);
    budgets.push(value);
  }
  return budgets.sort((a, b) => a - b);
}

/** Policies a sweep compares with the full cache: every policy but `full` itself (the reference). */
export const sweepPolicies: readonly BudgetPolicy[] = budgetPolicies.filter((policy) => policy !== 'full');

/**
 * Policies of a sweep from "sparsemm,snapkv": known names, no repeats, in the order given; `full` only with
 * `allowFull` (a sweep of other weights, whose full cache is a row against the reference weights' full cache).
 */
export function parsePolicyList(text: string, allowFull = false): BudgetPolicy[] {
  const items = listItems(text);
  if (items.length === 0) throw new SweepInputError(`The policy list is empty: give one or more of ${sweepPolicies.join(', ')}.`);
  const policies: BudgetPolicy[] = [];
  for (const item of items) {
    const name = item.toLowerCase();
    if (name === 'full' && !allowFull) throw new SweepInputError('"full" is the reference every row is compared with; list only compressing policies (or compare other weights).');
    if (!Object.hasOwn(policyTable, name)) throw new SweepInputError(`Unknown policy "${item}": choose from ${sweepPolicies.join(', ')}.`);
    const policy = name as BudgetPolicy;
    if (policies.includes(policy)) throw new SweepInputError(`Policy "${policy}" is listed twice.`);
    policies.push(policy);
  }
  return policies;
}
