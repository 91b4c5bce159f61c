/**
 * The KV budget policies, in one table: their names (in the order the CLI lists them), the label people see, and the
 * two properties the engine and the front ends branch on, so that nothing tests a policy by its name.
 */
export const policyTable = {
  full: { label: 'Full cache', attentionDependent: false, fixedPositions: false, inApp: true },
  snapkv: { label: 'SnapKV', attentionDependent: false, fixedPositions: false, inApp: true },
  pyramidkv: { label: 'PyramidKV', attentionDependent: false, fixedPositions: false, inApp: true },
  /** The per-head split comes from each layer's pooled window scores at prefill (adakvCapacities). */
  adakv: { label: 'AdaKV', attentionDependent: true, fixedPositions: false, inApp: true },
  sparsemm: { label: 'SparseMM', attentionDependent: false, fixedPositions: false, inApp: true },
  /** The paper's ablation (random head scores into the SparseMM formula): a CLI and benchmark option. */
  random: { label: 'Random heads', attentionDependent: false, fixedPositions: false, inApp: false },
  /** Keeps the first sink tokens and the most recent ones: positions fixed by the prompt length, not chosen by attention. */
  streamingllm: { label: 'StreamingLLM', attentionDependent: false, fixedPositions: true, inApp: true },
} as const satisfies Record<string, PolicyInfo>;

export interface PolicyInfo {
  /** How the UI and reports name it. */
  label: string;
  /** The per-head split is known only from the attention at prefill; the planned capacities are averages. */
  attentionDependent: boolean;
  /** The kept positions follow from the prompt length alone (no top-k selection). */
  fixedPositions: boolean;
  /** Offered in the app's policy controls. */
  inApp: boolean;
}

export type BudgetPolicy = keyof typeof policyTable;

export const budgetPolicies = Object.keys(policyTable) as readonly BudgetPolicy[];

export function policyLabel(policy: BudgetPolicy): string {
  return policyTable[policy].label;
}
