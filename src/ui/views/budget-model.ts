/** Pure summaries of a KV budget split ([layer][kvHead] prefix capacities plus a shared recent window). */

export interface BudgetSummary {
  layers: number;
  /** KV heads in all (layers x KV heads per layer). */
  kvHeadCount: number;
  /** Tokens kept over all KV heads: every head's prefix capacity plus the window it always keeps. */
  totalKept: number;
  /** totalKept / kvHeadCount. */
  averagePerHead: number;
  /** Smallest and largest tokens kept by one KV head. */
  minPerHead: number;
  maxPerHead: number;
}

export function summariseBudgets(capacities: readonly (readonly number[])[], windowLength: number): BudgetSummary {
  let kvHeadCount = 0;
  let totalKept = 0;
  let minPerHead = Infinity;
  let maxPerHead = -Infinity;
  for (const row of capacities) {
    for (const capacity of row) {
      const kept = capacity + windowLength;
      kvHeadCount += 1;
      totalKept += kept;
      minPerHead = Math.min(minPerHead, kept);
      maxPerHead = Math.max(maxPerHead, kept);
    }
  }
  if (kvHeadCount === 0) return { layers: capacities.length, kvHeadCount: 0, totalKept: 0, averagePerHead: 0, minPerHead: 0, maxPerHead: 0 };
  return { layers: capacities.length, kvHeadCount, totalKept, averagePerHead: totalKept / kvHeadCount, minPerHead, maxPerHead };
}

/** One chart row per layer: `kv<g>` = prefix tokens of KV head g; the window is the same for every head. */
export type BudgetChartRow = { layer: number } & Record<`kv${number}`, number>;

export function budgetChartRows(capacities: readonly (readonly number[])[]): BudgetChartRow[] {
  return capacities.map((row, layer) => {
    const entry: BudgetChartRow = { layer };
    row.forEach((capacity, kvHead) => {
      entry[`kv${kvHead}`] = capacity;
    });
    return entry;
  });
}
