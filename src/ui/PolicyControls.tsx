import { useId } from 'react';
import { policyTable, type AskOptions, type BudgetPolicy } from '../worker/api';

/** The choices the UI offers besides full and SparseMM; `random` (the paper's ablation) stays a CLI/benchmark option. */
export const otherPolicies: readonly { policy: BudgetPolicy; label: string }[] = (Object.keys(policyTable) as BudgetPolicy[])
  .filter((policy) => policyTable[policy].inApp && policy !== 'full' && policy !== 'sparsemm')
  .map((policy) => ({ policy, label: policyTable[policy].label }));

export const budgetRange = { min: 64, max: 2048, step: 32 } as const;

export function policyLabel(policy: BudgetPolicy): string {
  return policyTable[policy]?.label ?? policy;
}

/** "SparseMM, budget 256" — how runs and budget bars are named. */
export function describePolicy(options: Pick<AskOptions, 'policy' | 'budget'>): string {
  return options.policy === 'full' ? 'Full cache' : `${policyLabel(options.policy)}, budget ${options.budget}`;
}

export interface PolicySettings extends AskOptions {
  /** Answer with the full cache and then with the chosen policy, side by side. */
  compare: boolean;
}

type PolicyGroup = 'full' | 'sparsemm' | 'other';

function groupOf(policy: BudgetPolicy): PolicyGroup {
  return policy === 'full' || policy === 'sparsemm' ? policy : 'other';
}

interface PolicyControlsProps {
  settings: PolicySettings;
  onChange: (settings: PolicySettings) => void;
  disabled: boolean;
}

/** Full cache / SparseMM / another policy, with the budget, ratio, window, answer length and Compare mode. */
export function PolicyControls({ settings, onChange, disabled }: PolicyControlsProps) {
  const ids = useId();
  const group = groupOf(settings.policy);
  const set = (patch: Partial<PolicySettings>) => onChange({ ...settings, ...patch });
  const lastOther = group === 'other' ? settings.policy : otherPolicies[0].policy;
  const usesBudget = settings.policy !== 'full' || settings.compare;

  return (
    <fieldset className="policy-controls" disabled={disabled} data-testid="policy-controls">
      <legend>KV cache</legend>
      <div className="policy-toggle" role="radiogroup" aria-label="KV cache policy">
        <label className="radio">
          <input type="radio" name={`${ids}-policy`} value="full" checked={group === 'full'} onChange={() => set({ policy: 'full' })} />
          Full cache
        </label>
        <label className="radio">
          <input type="radio" name={`${ids}-policy`} value="sparsemm" checked={group === 'sparsemm'} onChange={() => set({ policy: 'sparsemm' })} />
          SparseMM
        </label>
        <label className="radio">
          <input type="radio" name={`${ids}-policy`} value="other" checked={group === 'other'} onChange={() => set({ policy: lastOther })} />
          Other policy
        </label>
        <select
          aria-label="Other policies"
          value={lastOther}
          disabled={disabled || group !== 'other'}
          onChange={(e) => set({ policy: e.target.value as BudgetPolicy })}
        >
          {otherPolicies.map(({ policy, label }) => (
            <option key={policy} value={policy}>
              {label}
            </option>
          ))}
        </select>
      </div>

      <div className="policy-numbers">
        <div className="field range-field">
          <label htmlFor={`${ids}-budget`}>
            Budget: <output htmlFor={`${ids}-budget`}>{settings.budget}</output> tokens per head
          </label>
          <input
            id={`${ids}-budget`}
            type="range"
            min={budgetRange.min}
            max={budgetRange.max}
            step={budgetRange.step}
            value={settings.budget}
            disabled={disabled || !usesBudget}
            onChange={(e) => {
              const budget = Number(e.target.value);
              // The window is part of the budget: it must stay below it.
              set({ budget, window: Math.min(settings.window, budget - 1) });
            }}
          />
        </div>
        <div className="field small-field">
          <label htmlFor={`${ids}-ratio`}>Ratio</label>
          <input
            id={`${ids}-ratio`}
            type="number"
            min={0}
            max={1}
            step={0.05}
            value={settings.ratio}
            disabled={disabled || settings.policy !== 'sparsemm'}
            onChange={(e) => set({ ratio: clampNumber(e.target.valueAsNumber, 0, 1, settings.ratio) })}
          />
        </div>
        <div className="field small-field">
          <label htmlFor={`${ids}-window`}>Window</label>
          <input
            id={`${ids}-window`}
            type="number"
            min={1}
            max={settings.budget - 1}
            step={1}
            value={settings.window}
            disabled={disabled || !usesBudget}
            onChange={(e) => set({ window: Math.round(clampNumber(e.target.valueAsNumber, 1, settings.budget - 1, settings.window)) })}
          />
        </div>
        <div className="field small-field">
          <label htmlFor={`${ids}-max-tokens`}>Max new tokens</label>
          <input
            id={`${ids}-max-tokens`}
            type="number"
            min={1}
            max={1024}
            step={1}
            value={settings.maxNewTokens}
            onChange={(e) => set({ maxNewTokens: Math.round(clampNumber(e.target.valueAsNumber, 1, 1024, settings.maxNewTokens)) })}
          />
        </div>
      </div>

      <label className="checkbox">
        <input type="checkbox" checked={settings.compare} onChange={(e) => set({ compare: e.target.checked })} />
        Compare: answer with the full cache, then with {settings.policy === 'full' ? 'the chosen policy' : policyLabel(settings.policy)}
      </label>
      {settings.compare && settings.policy === 'full' && (
        <p className="muted small">Choose SparseMM or another policy to compare against the full cache.</p>
      )}
    </fieldset>
  );
}

function clampNumber(value: number, min: number, max: number, fallback: number): number {
  if (!Number.isFinite(value)) return fallback;
  return Math.min(max, Math.max(min, value));
}
