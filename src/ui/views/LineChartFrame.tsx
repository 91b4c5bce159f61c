import type { ReactNode } from 'react';
import { CartesianGrid, LineChart, ResponsiveContainer } from 'recharts';
import './views.css';

export interface LineChartFrameProps {
  title: string;
  /** Height of the chart box in pixels. */
  height: number;
  data: object[];
  testId?: string;
  /** Axes, tooltip, legend and lines of this chart. */
  children: ReactNode;
}

/** The frame every line chart of the app shares: a captioned figure, a box of fixed height, a responsive chart with a dashed grid. */
export function LineChartFrame({ title, height, data, testId, children }: LineChartFrameProps) {
  return (
    <figure className="vw-chart-figure" data-testid={testId}>
      <figcaption>{title}</figcaption>
      <div className="vw-chart" style={{ height }}>
        <ResponsiveContainer width="100%" height="100%">
          <LineChart data={data} margin={{ top: 8, right: 12, bottom: 20, left: 12 }}>
            <CartesianGrid strokeDasharray="3 3" />
            {children}
          </LineChart>
        </ResponsiveContainer>
      </div>
    </figure>
  );
}
