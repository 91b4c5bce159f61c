/**
 * A small hand-written SVG chart for the benchmark (recharts needs a DOM; this runs in plain Node): two panels side
 * by side, decode ms/token and KV-cache MiB against prompt length, one line per policy (policy + budget).
 * The x axis is log2 of the prompt length, so the usual doubling lengths (1K, 2K, 4K, 8K) are evenly spaced.
 * panelsSvg, the two-panel document over any log2 x axis, also draws the fidelity sweep (fidelity-plot.ts).
 */

/** The fields of a benchmark run the plot needs (a BenchmarkRun fits). */
export interface PlotRun {
  policy: string;
  budget: number;
  promptLen: number;
  decodeMsPerToken: number;
  kvBytes: number;
  /** Weight format of the run (absent or 'bf16': no prefix in the label). */
  weightFormat?: string;
}

export interface PlotOptions {
  title?: string;
  /** A second line under the title (machine and adapter). */
  subtitle?: string;
}

export interface Series {
  label: string;
  points: { x: number; y: number }[];
}

export interface Panel {
  title: string;
  yLabel: string;
  series: Series[];
}

/** The x axis every panel shares: log2 scale over `domain`, tick marks at `ticks`, labelled with `format`. */
export interface XAxis {
  domain: [number, number];
  ticks: number[];
  label: string;
  format: (value: number) => string;
}

// Okabe-Ito: distinguishable with the common colour-vision deficiencies; dashes separate lines beyond the palette.
const palette = ['#000000', '#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#f0e442'];
const dashes = ['', '6 3', '2 3', '8 3 2 3'];

const panelWidth = 440;
const panelHeight = 300;
const margin = { top: 36, right: 16, bottom: 48, left: 64 };
const legendRowHeight = 18;

/** "sparsemm 256", prefixed by the weight format when it is not bf16 ("q4 sparsemm 256"). */
export function seriesLabel(run: Pick<PlotRun, 'policy' | 'budget' | 'weightFormat'>): string {
  const policy = run.policy === 'full' ? 'full' : `${run.policy} ${run.budget}`;
  return run.weightFormat && run.weightFormat !== 'bf16' ? `${run.weightFormat} ${policy}` : policy;
}

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** 1, 2, 2.5 or 5 times a power of ten, about `count` steps from 0 to at least `max`. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const rough = max / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const ticks: number[] = [];
  for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function formatTick(value: number): string {
  if (value === 0) return '0';
  if (Math.abs(value) >= 1000) return `${Number((value / 1000).toPrecision(3))}k`;
  return String(Number(value.toPrecision(3)));
}

function formatLength(tokens: number): string {
  return tokens >= 1024 && tokens % 1024 === 0 ? `${tokens / 1024}K` : String(tokens);
}

/** Groups runs into one series per policy label, points sorted by prompt length; non-finite values are left out. */
export function buildSeries(runs: PlotRun[], value: (run: PlotRun) => number): Series[] {
  const byLabel = new Map<string, Series>();
  for (const run of runs) {
    const y = value(run);
    if (!Number.isFinite(y)) continue;
    const label = seriesLabel(run);
    let series = byLabel.get(label);
    if (!series) {
      series = { label, points: [] };
      byLabel.set(label, series);
    }
    series.points.push({ x: run.promptLen, y });
  }
  for (const series of byLabel.values()) series.points.sort((a, b) => a.x - b.x);
  return [...byLabel.values()];
}

function renderPanel(panel: Panel, originX: number, originY: number, axis: XAxis): string {
  const plotW = panelWidth - margin.left - margin.right;
  const plotH = panelHeight - margin.top - margin.bottom;
  const left = originX + margin.left;
  const top = originY + margin.top;
  const minLog = Math.log2(axis.domain[0]);
  const maxLog = Math.log2(axis.domain[1]);
  const xOf = (n: number): number => (maxLog === minLog ? left + plotW / 2 : left + ((Math.log2(n) - minLog) / (maxLog - minLog)) * plotW);
  const maxY = Math.max(0, ...panel.series.flatMap((s) => s.points.map((p) => p.y)));
  const ticks = niceTicks(maxY);
  const topTick = ticks[ticks.length - 1] || 1;
  const yOf = (v: number): number => top + plotH - (v / topTick) * plotH;
  const out: string[] = [];
  out.push(`<g class="panel" aria-label="${escapeXml(panel.title)}">`);
  out.push(`<text x="${left + plotW / 2}" y="${originY + 20}" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(panel.title)}</text>`);
  for (const tick of ticks) {
    const y = yOf(tick).toFixed(1);
    out.push(`<line x1="${left}" y1="${y}" x2="${left + plotW}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="11">${formatTick(tick)}</text>`);
  }
  for (const n of axis.ticks) {
    const x = xOf(n).toFixed(1);
    out.push(`<line x1="${x}" y1="${top + plotH}" x2="${x}" y2="${top + plotH + 4}" stroke="#333"/>`);
    out.push(`<text x="${x}" y="${top + plotH + 16}" text-anchor="middle" font-size="11">${escapeXml(axis.format(n))}</text>`);
  }
  out.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${left + plotW / 2}" y="${top + plotH + 36}" text-anchor="middle" font-size="12">${escapeXml(axis.label)}</text>`);
  out.push(
    `<text x="${originX + 16}" y="${top + plotH / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 ${originX + 16} ${top + plotH / 2})">${escapeXml(panel.yLabel)}</text>`,
  );
  panel.series.forEach((series, i) => {
    const colour = palette[i % palette.length];
    const dash = dashes[Math.floor(i / palette.length) % dashes.length];
    const points = series.points.map((p) => `${xOf(p.x).toFixed(1)},${yOf(p.y).toFixed(1)}`).join(' ');
    out.push(
      `<polyline class="series" data-series="${escapeXml(series.label)}" points="${points}" fill="none" stroke="${colour}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
    );
    for (const p of series.points) {
      out.push(`<circle cx="${xOf(p.x).toFixed(1)}" cy="${yOf(p.y).toFixed(1)}" r="3" fill="${colour}"><title>${escapeXml(`${series.label}, ${axis.format(p.x)}: ${formatTick(p.y)}`)}</title></circle>`);
    }
  });
  out.push('</g>');
  return out.join('\n');
}

/** The whole SVG document: both panels and a shared legend below them. */
export function benchmarkSvg(runs: PlotRun[], options: PlotOptions = {}): string {
  const lengths = [...new Set(runs.map((r) => r.promptLen))].sort((a, b) => a - b);
  if (lengths.length === 0) throw new Error('benchmarkSvg: no runs to plot');
  const panels: Panel[] = [
    { title: 'Decode time per token', yLabel: 'ms / token', series: buildSeries(runs, (r) => r.decodeMsPerToken) },
    { title: 'KV cache size', yLabel: 'KV cache (MiB)', series: buildSeries(runs, (r) => r.kvBytes / 2 ** 20) },
  ];
  const axis: XAxis = { domain: [lengths[0], lengths[lengths.length - 1]], ticks: lengths, label: 'prompt length (tokens)', format: formatLength };
  return panelsSvg(panels, axis, { ...options, title: options.title ?? 'SparseMM benchmark' });
}

/** Two panels side by side over one x axis, with the legend (series in the first panel's order) below them. */
export function panelsSvg(panels: Panel[], axis: XAxis, options: PlotOptions & { title: string }): string {
  const labels = panels[0].series.map((s) => s.label);
  for (const s of panels[1].series) if (!labels.includes(s.label)) labels.push(s.label);
  const header = options.subtitle ? 48 : 30;
  const legendColumns = 4;
  const legendHeight = Math.ceil(labels.length / legendColumns) * legendRowHeight + 12;
  const width = panelWidth * 2;
  const height = header + panelHeight + legendHeight;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" role="img">`);
  const title = options.title;
  out.push(`<title>${escapeXml(title)}</title>`);
  out.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  out.push(`<text x="${width / 2}" y="20" text-anchor="middle" font-size="16" font-weight="bold">${escapeXml(title)}</text>`);
  if (options.subtitle) out.push(`<text x="${width / 2}" y="38" text-anchor="middle" font-size="11" fill="#444">${escapeXml(options.subtitle)}</text>`);
  panels.forEach((panel, i) => {
    // Colours follow the legend's order in both panels.
    const ordered = labels.map((label) => panel.series.find((s) => s.label === label) ?? { label, points: [] });
    out.push(renderPanel({ ...panel, series: ordered }, i * panelWidth, header, axis));
  });
  const legendTop = header + panelHeight + 4;
  out.push('<g class="legend">');
  labels.forEach((label, i) => {
    const colour = palette[i % palette.length];
    const dash = dashes[Math.floor(i / palette.length) % dashes.length];
    const x = 24 + (i % legendColumns) * (width / legendColumns);
    const y = legendTop + Math.floor(i / legendColumns) * legendRowHeight + 8;
    out.push(`<line x1="${x}" y1="${y}" x2="${x + 24}" y2="${y}" stroke="${colour}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`);
    out.push(`<text x="${x + 30}" y="${y}" dominant-baseline="middle" font-size="12">${escapeXml(label)}</text>`);
  });
  out.push('</g>');
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
