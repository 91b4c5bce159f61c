/** The budget bars' plan between runs (session/policy.ts budgetPlan): the same rule the engine applies, with its notes. */
import { describe, expect, it } from 'vitest';
import { budgetPlan, choosePolicy } from '../../src/session/policy';

const text = { numLayers: 2, numHeads: 4, numKvHeads: 2 };
const options = { budget: 64, window: 8, ratio: 0.1, maxNewTokens: 4 };

describe('budgetPlan', () => {
  it('keeps the whole prompt when it is shorter than the budget, compresses a longer one', () => {
    const short = budgetPlan({ ...options, policy: 'snapkv' }, 40, text, choosePolicy({ ...options, policy: 'snapkv' }, null, text, ''));
    expect([short.promptLength, short.compressed, short.windowLength]).toEqual([40, false, 8]);
    const long = budgetPlan({ ...options, policy: 'snapkv' }, 500, text, choosePolicy({ ...options, policy: 'snapkv' }, null, text, ''));
    expect(long.compressed).toBe(true);
    // SnapKV: every KV head the budget less the window.
    expect(long.capacities).toEqual([
      [56, 56],
      [56, 56],
    ]);
  });

  it('passes the policy warnings on and says when the split comes from the attention at prefill', () => {
    const chosen = choosePolicy({ ...options, policy: 'sparsemm' }, null, text, 'Find or import visual heads first.');
    const plan = budgetPlan({ ...options, policy: 'sparsemm' }, 500, text, chosen);
    expect(plan.warnings.join(' ')).toMatch(/uniform scores.*Find or import visual heads first\./);
    const adakv = budgetPlan({ ...options, policy: 'adakv' }, 500, text, choosePolicy({ ...options, policy: 'adakv' }, null, text, ''));
    expect(adakv.warnings).toEqual(['AdaKV splits each layer from the attention at prefill: the bars show the plan (every head the average).']);
    // The chosen policy's own list is not changed.
    expect(chosen.warnings).toHaveLength(1);
  });
});
