import { describe, expect, it } from 'vitest';
import { benchmarkSvg, buildSeries, escapeXml, niceTicks, seriesLabel, type PlotRun } from '../../src/cli/bench-plot';
import { expectToContainAll } from '../helpers/expect-text';

const runs: PlotRun[] = [
  { policy: 'full', budget: 0, promptLen: 1024, decodeMsPerToken: 20, kvBytes: 48 * 2 ** 20 },
  { policy: 'full', budget: 0, promptLen: 8192, decodeMsPerToken: 40, kvBytes: 384 * 2 ** 20 },
  { policy: 'sparsemm', budget: 256, promptLen: 8192, decodeMsPerToken: 21, kvBytes: 14 * 2 ** 20 },
  { policy: 'sparsemm', budget: 256, promptLen: 1024, decodeMsPerToken: 19, kvBytes: 12 * 2 ** 20 },
  { policy: 'snapkv', budget: 256, promptLen: 1024, decodeMsPerToken: Number.NaN, kvBytes: 12 * 2 ** 20 },
];

/** The `points` attribute of the polyline of `label` in the panel `panelIndex` (0 = decode, 1 = KV). */
function polylinePoints(svg: string, label: string, panelIndex: number): [number, number][] {
  const matches = [...svg.matchAll(new RegExp(`<polyline class="series" data-series="${label}" points="([^"]*)"`, 'g'))];
  return matches[panelIndex][1].split(' ').filter(Boolean).map((p) => p.split(',').map(Number) as [number, number]);
}

describe('benchmark SVG plot', () => {
  it('has both panels with titles, axis labels, one line per policy in each, and a legend', () => {
    const svg = benchmarkSvg(runs, { title: 'Bench <test>', subtitle: 'SwiftShader & CPU' });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expectToContainAll(svg, [
      'Decode time per token',
      'KV cache size',
      'ms / token',
      'KV cache (MiB)',
      'prompt length (tokens)',
      'Bench &lt;test&gt;',
      'SwiftShader &amp; CPU',
    ]);
    for (const label of ['full', 'sparsemm 256', 'snapkv 256']) {
      expect(svg).toContain(`font-size="12">${label}</text>`); // legend entry
    }
    expect(svg.match(/data-series="full"/g)).toHaveLength(2);
    expect(svg.match(/data-series="sparsemm 256"/g)).toHaveLength(2);
    // x tick labels in K
    expect(svg).toContain('>1K</text>');
    expect(svg).toContain('>8K</text>');
  });

  it('places points by prompt length (log2) and value: higher values are drawn higher', () => {
    const svg = benchmarkSvg(runs);
    const full = polylinePoints(svg, 'full', 0);
    expect(full).toHaveLength(2);
    expect(full[1][0]).toBeGreaterThan(full[0][0]); // 8K right of 1K
    expect(full[1][1]).toBeLessThan(full[0][1]); // 40 ms above 20 ms (SVG y grows downwards)
    const sparse = polylinePoints(svg, 'sparsemm 256', 0);
    expect(sparse.map((p) => p[0])).toEqual(full.map((p) => p[0])); // sorted by length although given out of order
    const kvFull = polylinePoints(svg, 'full', 1);
    const kvSparse = polylinePoints(svg, 'sparsemm 256', 1);
    expect(kvSparse[1][1]).toBeGreaterThan(kvFull[1][1]); // 14 MiB drawn lower than 384 MiB
    // The snapkv decode value is NaN: no decode point, but its KV point exists.
    expect(polylinePoints(svg, 'snapkv 256', 0)).toEqual([]);
    expect(polylinePoints(svg, 'snapkv 256', 1)).toHaveLength(1);
  });

  it('helpers: labels, ticks, escaping, series grouping', () => {
    expect(seriesLabel({ policy: 'full', budget: 0 })).toBe('full');
    expect(seriesLabel({ policy: 'adakv', budget: 64 })).toBe('adakv 64');
    expect(niceTicks(40)).toEqual([0, 10, 20, 30, 40]);
    expect(niceTicks(384)).toEqual([0, 100, 200, 300, 400]);
    expect(niceTicks(0)).toEqual([0, 1]);
    expect(escapeXml(`a<b>&"c'`)).toBe('a&lt;b&gt;&amp;&quot;c&apos;');
    const series = buildSeries(runs, (r) => r.decodeMsPerToken);
    expect(series.map((s) => s.label)).toEqual(['full', 'sparsemm 256']);
    expect(series[1].points).toEqual([{ x: 1024, y: 19 }, { x: 8192, y: 21 }]);
  });

  it('refuses an empty report', () => {
    expect(() => benchmarkSvg([])).toThrow(/no runs/);
  });
});
