import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { budgetChartRows, summariseBudgets } from './budget-model';
import { viridisCategorical } from './colormap';
import { formatCount } from './format';
import './views.css';

export interface BudgetBarsProps {
  /** Prefix tokens kept per [layer][KV head] (the recent window comes on top). */
  capacities: number[][];
  /** Recent prompt tokens every KV head keeps besides its prefix selection. */
  windowLength: number;
  /** The policy these budgets belong to, e.g. "SparseMM, budget 256". */
  policyLabel: string;
}

const windowColour = '#9aa3b2';

/**
 * Per-layer grouped bars: one stacked bar per KV head (its prefix capacity in that head's colour, the
 * window in grey on top), with the total and average tokens kept, and the same numbers as a table.
 */
export function BudgetBars({ capacities, windowLength, policyLabel }: BudgetBarsProps) {
  const summary = summariseBudgets(capacities, windowLength);
  if (summary.kvHeadCount === 0) {
    return (
      <div className="vw-empty" role="status">
        No KV budgets yet — choose a policy and run a prompt.
      </div>
    );
  }
  const kvHeads = capacities.reduce((most, row) => Math.max(most, row.length), 0);
  const colours = viridisCategorical(kvHeads);
  const rows = budgetChartRows(capacities);
  const chartRows = rows.map((row) => ({ ...row, window: windowLength }));

  return (
    <section className="vw-budgets" aria-label={`KV budgets: ${policyLabel}`}>
      <p className="vw-budget-summary">
        <strong>{policyLabel}</strong>: {formatCount(summary.totalKept)} tokens kept over {formatCount(summary.kvHeadCount)} KV heads
        — average {formatCount(Math.round(summary.averagePerHead))} per head (min {formatCount(summary.minPerHead)}, max{' '}
        {formatCount(summary.maxPerHead)}), each including the {formatCount(windowLength)}-token window.
      </p>
      <div className="vw-chart" style={{ height: 260 }}>
        <ResponsiveContainer width="100%" height="100%">
          <BarChart data={chartRows} margin={{ top: 8, right: 8, bottom: 20, left: 8 }} barGap={0} barCategoryGap="15%">
            <CartesianGrid strokeDasharray="3 3" vertical={false} />
            <XAxis dataKey="layer" label={{ value: 'Layer', position: 'insideBottom', offset: -12 }} interval="preserveStartEnd" />
            <YAxis label={{ value: 'Tokens kept', angle: -90, position: 'insideLeft' }} />
            <Tooltip formatter={(value) => formatCount(Number(value))} labelFormatter={(layer) => `Layer ${String(layer)}`} />
            {/* Room below the legend for the top tick label of the axis. */}
            <Legend verticalAlign="top" wrapperStyle={{ paddingBottom: 10 }} />
            {colours.flatMap((colour, kvHead) => [
              <Bar key={`kv${kvHead}`} dataKey={`kv${kvHead}`} name={`KV head ${kvHead}`} stackId={`kv${kvHead}`} fill={colour} isAnimationActive={false} />,
              <Bar
                key={`window${kvHead}`}
                dataKey="window"
                name="Window"
                stackId={`kv${kvHead}`}
                fill={windowColour}
                legendType={kvHead === 0 ? 'square' : 'none'}
                isAnimationActive={false}
              />,
            ])}
          </BarChart>
        </ResponsiveContainer>
      </div>
      <details className="vw-details">
        <summary>Budgets as a table</summary>
        <table className="vw-table">
          <caption>Prefix tokens kept per KV head (add {formatCount(windowLength)} for the window)</caption>
          <thead>
            <tr>
              <th scope="col">Layer</th>
              {Array.from({ length: kvHeads }, (_, kvHead) => (
                <th key={kvHead} scope="col">
                  KV head {kvHead}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {capacities.map((row, layer) => (
              <tr key={layer}>
                <th scope="row">{layer}</th>
                {Array.from({ length: kvHeads }, (_, kvHead) => (
                  <td key={kvHead}>{row[kvHead] === undefined ? '—' : formatCount(row[kvHead])}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </section>
  );
}
