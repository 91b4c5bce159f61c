/**
 * The presentational views (src/ui/views): pure helpers, and each component rendered to HTML with
 * react-dom/server. Recharts draws nothing without a measured size on the server, so the charts are
 * checked through their wrappers and the numbers through the tables and summaries next to them.
 */
import { createElement, type ReactElement } from 'react';
import { renderToString } from 'react-dom/server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AttentionOverlay, type AttentionOverlayProps } from '../../src/ui/views/AttentionOverlay';
import { BudgetBars } from '../../src/ui/views/BudgetBars';
import { summariseBudgets } from '../../src/ui/views/budget-model';
import { normalise, viridis, viridisCategorical } from '../../src/ui/views/colormap';
import { demoAttention, demoCapacities, demoGeometry, demoRuns, demoScores } from '../../src/ui/views/demo-data';
import { formatMs, formatRatio, formatScore } from '../../src/ui/views/format';
import { HeadHeatmap } from '../../src/ui/views/HeadHeatmap';
import { describeHead, headDetails, kvHeadOf, moveSelection, rankHeads } from '../../src/ui/views/heatmap-model';
import { MetricsPanel } from '../../src/ui/views/MetricsPanel';
import { compareValues, metricRows, stepChartRows } from '../../src/ui/views/metrics-model';
import { expectedTokenCount, fitDisplaySize, overlayCells } from '../../src/ui/views/overlay-model';
import { downloadText, ScoreFileControls, type ScoreFileControlsProps } from '../../src/ui/views/ScoreFileControls';
import type { RunMetrics } from '../../src/ui/views/types';
import { ViewsDemo } from '../../src/ui/views/ViewsDemo';
import { expectToContainAll } from '../helpers/expect-text';

const render = (element: ReactElement): string => renderToString(element);
const hostileLabel = '<img src=x onerror=alert(1)>';
const noop = () => {};

/** Relative luminance of "#rrggbb" (sRGB, WCAG formula). */
function luminance(hex: string): number {
  const channel = (i: number) => {
    const c = parseInt(hex.slice(1 + 2 * i, 3 + 2 * i), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2);
}

describe('colour map', () => {
  it('runs from viridis dark purple to yellow, brighter all the way', () => {
    expect(viridis(0)).toBe('#440154');
    expect(viridis(1)).toBe('#fde725');
    expect(viridis(0.5)).toBe('#21918c');
    let previous = -1;
    for (let i = 0; i <= 100; i++) {
      const l = luminance(viridis(i / 100));
      expect(l).toBeGreaterThan(previous);
      previous = l;
    }
  });

  it('clamps out-of-range and NaN inputs and normalises flat ranges to 0', () => {
    expect(viridis(-3)).toBe('#440154');
    expect(viridis(Number.NaN)).toBe('#440154');
    expect(viridis(7)).toBe('#fde725');
    expect(normalise(5, 5, 5)).toBe(0);
    expect(normalise(7.5, 5, 10)).toBe(0.5);
    expect(new Set(viridisCategorical(3)).size).toBe(3);
  });
});

describe('formatting', () => {
  it('formats durations and ratios', () => {
    expect(formatMs(0.4213)).toBe('0.42 ms');
    expect(formatMs(12.34)).toBe('12.3 ms');
    expect(formatMs(456.7)).toBe('457 ms');
    expect(formatMs(1234)).toBe('1.23 s');
    expect(formatMs(75_000)).toBe('1 min 15 s');
    expect(formatMs(Number.NaN)).toBe('—');
    expect(formatRatio(0.05)).toBe('0.05x');
    expect(formatRatio(1.6)).toBe('1.6x');
    expect(formatRatio(2)).toBe('2x');
    expect(formatRatio(0.0031)).toBe('0.0031x');
    expect(formatScore(0.012345)).toBe('0.0123');
    expect(formatScore(0)).toBe('0');
  });
});

describe('head heatmap model', () => {
  const scores = [
    [0.5, 0.1, 0.1],
    [0.0, 0.9, 0.3],
  ];

  it('ranks heads across all layers with shared ranks for ties', () => {
    expect(rankHeads(scores)).toEqual([
      [2, 4, 4],
      [6, 1, 3],
    ]);
  });

  it('maps query heads to their GQA KV head', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8].map((h) => kvHeadOf(h, 9, 3))).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2]);
    expect(kvHeadOf(5, 6, 1)).toBe(0);
  });

  it('moves the selection with arrow keys and stops at the edges', () => {
    expect(moveSelection(undefined, 'ArrowDown', 2, 3)).toEqual({ layer: 0, head: 0 });
    expect(moveSelection({ layer: 0, head: 0 }, 'ArrowDown', 2, 3)).toEqual({ layer: 1, head: 0 });
    expect(moveSelection({ layer: 1, head: 0 }, 'ArrowDown', 2, 3)).toEqual({ layer: 1, head: 0 });
    expect(moveSelection({ layer: 1, head: 0 }, 'ArrowLeft', 2, 3)).toEqual({ layer: 1, head: 0 });
    expect(moveSelection({ layer: 1, head: 0 }, 'ArrowRight', 2, 3)).toEqual({ layer: 1, head: 1 });
    expect(moveSelection({ layer: 1, head: 1 }, 'ArrowUp', 2, 3)).toEqual({ layer: 0, head: 1 });
    expect(moveSelection({ layer: 1, head: 1 }, 'End', 2, 3)).toEqual({ layer: 1, head: 2 });
    expect(moveSelection({ layer: 1, head: 1 }, 'Home', 2, 3)).toEqual({ layer: 1, head: 0 });
    expect(moveSelection({ layer: 1, head: 1 }, 'PageUp', 2, 3)).toEqual({ layer: 0, head: 1 });
    expect(moveSelection({ layer: 1, head: 1 }, 'a', 2, 3)).toBeNull();
    expect(moveSelection(undefined, 'ArrowDown', 0, 0)).toBeNull();
  });

  it('describes a head with its rank, KV head and that KV head budget', () => {
    const details = headDetails({ layer: 1, head: 2 }, scores, rankHeads(scores), 1, [[40], [120]]);
    expect(details).toEqual({ layer: 1, head: 2, score: 0.3, rank: 3, totalHeads: 6, kvHead: 0, capacity: 120 });
    expect(describeHead(details!)).toBe('Layer 1, head 2, score 0.3, rank 3 of 6, KV head 0, KV budget 120 tokens');
    expect(headDetails({ layer: 5, head: 0 }, scores, rankHeads(scores), 1)).toBeNull();
  });
});

describe('HeadHeatmap', () => {
  it('shows the empty state without scores', () => {
    const html = render(createElement(HeadHeatmap, { scores: [], kvHeads: 3, onSelect: noop }));
    expect(html).toContain('No scores yet — run Find visual heads');
    expect(html).not.toContain('<svg');
  });

  it('draws one coloured cell per head, a legend, KV-group lines and announces the selection', () => {
    const scores = [
      [0.0, 0.2, 0.4, 0.1],
      [0.8, 0.3, 0.0, 0.6],
    ];
    const html = render(
      createElement(HeadHeatmap, { scores, kvHeads: 2, capacities: [[30, 50], [200, 90]], selected: { layer: 1, head: 3 }, onSelect: noop }),
    );
    expect(html.match(/role="gridcell"/g)).toHaveLength(8);
    expect(html).toContain('fill="#440154"'); // the zero scores are the darkest colour
    expect(html).toContain('fill="#fde725"'); // the top score the brightest
    expect(html).toContain('Visual-head score');
    expect(html).toContain('0.8'); // legend maximum
    expect(html.match(/aria-selected="true"/g)).toHaveLength(1);
    expect(html).toMatch(/aria-activedescendant="[^"]*-cell-1-3"/);
    expect(html).toContain('tabindex="0"');
    // One separator between the two KV groups of two query heads.
    expect(html.match(/<line /g)).toHaveLength(1);
    expect(html).toContain('Selected: Layer 1, head 3, score 0.6, rank 2 of 8, KV head 1, KV budget 90 tokens');
    // The selected head's details sit in their own box after the grid (no popover over the cells or the caption).
    const details = html.slice(html.indexOf('data-testid="head-details"'));
    expect(html.indexOf('data-testid="head-details"')).toBeGreaterThan(html.indexOf('</svg>'));
    expect(details.slice(0, details.indexOf('vw-caption'))).toMatch(/Layer <!-- -->1<!-- -->, head <!-- -->3.*90<!-- --> tokens/s);
  });

  it('names the value in the details box: a score by default, an attention share when told', () => {
    const selected = { layer: 0, head: 1 };
    expect(render(createElement(HeadHeatmap, { scores: [[0.1, 0.2]], kvHeads: 1, selected, onSelect: noop }))).toContain('<dt>Score</dt>');
    const attention = render(createElement(HeadHeatmap, { scores: [[0.1, 0.2]], kvHeads: 1, selected, onSelect: noop, valueName: 'Attention' }));
    expect(attention).toContain('<dt>Attention</dt>');
    expect(attention).not.toContain('<dt>Score</dt>');
  });

  it('keeps the details box in place with a hint before any head is chosen', () => {
    const html = render(createElement(HeadHeatmap, { scores: [[0.1, 0.2]], kvHeads: 1, onSelect: noop }));
    expect(html).toContain('Point at a head or select one for its score, rank and KV budget.');
  });
});

describe('BudgetBars', () => {
  it('summarises the tokens kept, window included', () => {
    expect(summariseBudgets([[10, 20], [30, 40]], 4)).toEqual({
      layers: 2,
      kvHeadCount: 4,
      totalKept: 116,
      averagePerHead: 29,
      minPerHead: 14,
      maxPerHead: 44,
    });
  });

  it('renders the total, the average, the chart container and the table', () => {
    const html = render(createElement(BudgetBars, { capacities: [[10, 20], [30, 1040]], windowLength: 4, policyLabel: hostileLabel }));
    expect(html).toContain('1,116'); // total kept: 10 + 20 + 30 + 1040 + 4 heads x 4 window
    expect(html).toContain('average <!-- -->279'); // 1116 / 4
    expect(html).toContain('recharts-responsive-container');
    expect(html).toContain('<td>1,040</td>');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).not.toContain('<img src=x');
  });

  it('shows an empty state without budgets', () => {
    expect(render(createElement(BudgetBars, { capacities: [], windowLength: 32, policyLabel: 'SparseMM' }))).toContain('No KV budgets yet');
  });
});

describe('AttentionOverlay geometry', () => {
  const geometry = { rows: 2, cols: 2, tokensPerSide: 2 };
  const layout = { displayWidth: 400, displayHeight: 300, resizedWidth: 1024, resizedHeight: 1024 };
  const weights = Float32Array.from({ length: 20 }, (_, i) => i); // 4 tiles x 4 tokens, then 4 global

  it('places each tile token where it came from, scaled to the display', () => {
    expect(expectedTokenCount(geometry)).toBe(20);
    const cells = overlayCells(geometry, layout, weights, false);
    expect(cells).toHaveLength(16);
    // Tile 3 = row 1, col 1; its token 3 = row 1, col 1: the bottom-right quarter of the bottom-right tile.
    const last = cells[15];
    expect(last).toMatchObject({ tokenIndex: 15, tileRow: 1, tileCol: 1, tokenRow: 1, tokenCol: 1, x: 300, y: 225, width: 100, height: 75 });
    // Tile 1 = row 0, col 1; token 2 = row 1, col 0.
    expect(cells[6]).toMatchObject({ tokenIndex: 6, tileRow: 0, tileCol: 1, x: 200, y: 75 });
    expect(last.normalised).toBe(1);
    expect(cells[0].normalised).toBe(0);
    expect(cells[5].normalised).toBeCloseTo(5 / 15);
  });

  it('spreads the global image over the whole picture, normalised on its own', () => {
    const cells = overlayCells(geometry, layout, weights, true);
    expect(cells.map((c) => c.tokenIndex)).toEqual([16, 17, 18, 19]);
    expect(cells[3]).toMatchObject({ tileRow: -1, x: 200, y: 150, width: 200, height: 150, normalised: 1 });
    expect(cells[0].normalised).toBeCloseTo(16 / 19);
  });

  it('uses the global image when the picture was not split', () => {
    const cells = overlayCells({ rows: 0, cols: 0, tokensPerSide: 2 }, layout, Float32Array.from([1, 2, 3, 4]), false);
    expect(cells).toHaveLength(4);
    expect(cells[0]).toMatchObject({ tileRow: -1, x: 0, y: 0, width: 200, height: 150 });
  });

  it('fits the display size without upscaling', () => {
    expect(fitDisplaySize(800, 600, 560, 560)).toEqual({ width: 560, height: 420 });
    expect(fitDisplaySize(200, 100, 560, 560)).toEqual({ width: 200, height: 100 });
  });
});

describe('AttentionOverlay', () => {
  const props: AttentionOverlayProps = {
    imageUrl: 'blob:demo',
    imageWidth: 800,
    imageHeight: 600,
    resizedWidth: 2048,
    resizedHeight: 1536,
    geometry: demoGeometry,
    weights: demoAttention(),
    showGlobal: false,
    headLabel: hostileLabel,
  };

  it('draws every tile token over the picture with a legend and a labelled toggle', () => {
    const html = render(createElement(AttentionOverlay, props));
    expect(html).toContain('src="blob:demo"');
    expect(html).toContain('<title>Tile row 2, col 3, token (7, 7): ');
    expect(html.match(/<rect /g)).toHaveLength(12 * 64);
    expect(html).toContain('over the 3 x 4 tiles');
    expect(html).toContain('Attention weight (colour and opacity)');
    expect(html).toMatch(/<label for="[^"]+">Show the global image&#x27;s map/);
    expect(html).toContain('type="checkbox"');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).not.toContain('<img src=x');
  });

  it('shows the global map when asked', () => {
    const html = render(createElement(AttentionOverlay, { ...props, showGlobal: true }));
    expect(html.match(/<rect /g)).toHaveLength(64);
    expect(html).toContain('over the global image');
    expect(html).toContain('checked=""');
  });

  it('refuses weights that do not match the geometry', () => {
    const html = render(createElement(AttentionOverlay, { ...props, weights: new Float32Array(10) }));
    expect(html).toContain('role="alert"');
    expect(html).toContain('Expected 832 image-token weights');
    expect(html).not.toContain('<rect ');
  });
});

function run(overrides: Partial<RunMetrics>): RunMetrics {
  return {
    label: 'Full cache',
    policy: 'full',
    promptTokens: 876,
    textTokens: 44,
    imageTokens: 832,
    prefillMs: 800,
    visionMs: 600,
    textPrefillMs: 200,
    timeToFirstTokenMs: 820,
    decodeMsPerToken: 16,
    tokensPerSecond: 62.5,
    kvBytes: 100 * 1024 * 1024,
    totalGpuBytes: 1024 * 1024 * 1024,
    generatedTokens: 3,
    perStep: [
      { step: 1, kvBytes: 100, decodeMs: 16 },
      { step: 2, kvBytes: 101, decodeMs: 16.5 },
      { step: 3, kvBytes: 102, decodeMs: 17 },
    ],
    ...overrides,
  };
}

describe('MetricsPanel', () => {
  const full = run({});
  const sparse = run({
    label: hostileLabel,
    policy: 'sparsemm',
    budget: 256,
    decodeMsPerToken: 10,
    tokensPerSecond: 100,
    kvBytes: 5 * 1024 * 1024,
    prefillMs: 1000,
    textPrefillMs: 400,
    perStep: [
      { step: 1, kvBytes: 5, decodeMs: 10 },
      { step: 2, kvBytes: 6, decodeMs: 10.2 },
    ],
  });

  it('compares the second run with the first', () => {
    expect(compareValues(16, 10, 'lower-is-better-time')).toBe('1.6x faster');
    expect(compareValues(800, 1000, 'lower-is-better-time')).toBe('1.25x slower');
    expect(compareValues(10, 10.01, 'lower-is-better-time')).toBe('same');
    expect(compareValues(100, 5, 'lower-is-better-size')).toBe('0.05x');
    expect(compareValues(0, 5, 'lower-is-better-size')).toBe('');
    const rows = metricRows([full, sparse]);
    const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
    expect(byName['KV cache'].values).toEqual(['100 MiB', '5.0 MiB']);
    expect(byName['KV cache'].ratio).toBe('0.05x');
    expect(byName['Decode per token'].ratio).toBe('1.6x faster');
    expect(byName['Prefill'].ratio).toBe('1.25x slower');
    expect(byName['Vision encoding'].values).toEqual(['600 ms', '600 ms']);
    expect(byName['Text prefill'].ratio).toBe('2x slower');
    expect(metricRows([run({ imageTokens: 0, visionMs: 0 })]).find((r) => r.name === 'Vision encoding')?.values).toEqual(['— (no image)']);
    expect(byName['Tokens per second'].ratio).toBe('1.6x');
    expect(byName['Policy'].values).toEqual(['full', 'sparsemm, budget 256']);
    expect(byName['Prompt tokens'].values[0]).toBe('876 (44 text + 832 image)');
    expect(metricRows([full]).every((r) => r.ratio === '')).toBe(true);
  });

  it('shows no zero timings or sizes for a run stopped before its first token or after one', () => {
    const valuesOf = (r: RunMetrics) => Object.fromEntries(metricRows([r]).map((row) => [row.name, row.values[0]]));
    const stopped = valuesOf(run({ generatedTokens: 0, decodeMsPerToken: 0, tokensPerSecond: 0, kvBytes: 0, totalGpuBytes: 0, perStep: [] }));
    for (const name of ['Time to first token', 'KV cache', 'GPU memory in all']) expect(stopped[name]).toBe('— (stopped before the first token)');
    for (const name of ['Decode per token', 'Tokens per second']) expect(stopped[name]).toBe('— (no decode step)');
    const oneToken = valuesOf(run({ generatedTokens: 1, decodeMsPerToken: 0, tokensPerSecond: 0 }));
    expect([oneToken['Decode per token'], oneToken['Tokens per second']]).toEqual(['— (no decode step)', '— (no decode step)']);
    expect(oneToken['KV cache']).not.toMatch(/—/);
    // Nothing to compare against a run that measured nothing.
    expect(metricRows([full, run({ generatedTokens: 0 })]).find((r) => r.name === 'Decode per token')?.ratio).toBe('');
  });

  it('merges the per-step series on the step', () => {
    expect(stepChartRows([full, sparse])).toEqual([
      { step: 1, kvBytes0: 100, decodeMs0: 16, kvBytes1: 5, decodeMs1: 10 },
      { step: 2, kvBytes0: 101, decodeMs0: 16.5, kvBytes1: 6, decodeMs1: 10.2 },
      { step: 3, kvBytes0: 102, decodeMs0: 17 },
    ]);
  });

  it('renders both runs, the ratio column and two charts, escaping labels', () => {
    const html = render(createElement(MetricsPanel, { runs: [full, sparse] }));
    expectToContainAll(html, [
      '&lt;img src=x onerror=alert(1)&gt; vs Full cache</th>',
      '<td class="vw-ratio">0.05x</td>',
      '<td class="vw-ratio">1.6x faster</td>',
      '16.0 ms',
      '1.0 GiB',
      'KV cache size vs tokens generated',
      'Decode time per token vs tokens generated',
    ]);
    expect(html.match(/recharts-responsive-container/g)).toHaveLength(2);
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).not.toContain('<img src=x');
  });

  it('has no ratio column for one run, and an empty state for none', () => {
    const html = render(createElement(MetricsPanel, { runs: [full] }));
    expect(html).not.toContain(' vs Full cache');
    expect(html).toContain('Full cache');
    expect(render(createElement(MetricsPanel, { runs: [] }))).toContain('No runs yet');
  });
});

describe('ScoreFileControls', () => {
  const base: ScoreFileControlsProps = {
    onFindVisualHeads: noop,
    searching: false,
    onCancel: noop,
    onExport: () => '{}',
    canExport: true,
    onImport: noop,
  };

  it('shows progress and Cancel while searching', () => {
    const html = render(createElement(ScoreFileControls, { ...base, searching: true, progress: { done: 12, total: 40 } }));
    expect(html).toMatch(/<progress id="[^"]+" value="12" max="40">/);
    expect(html).toContain('Finding visual heads: <!-- -->12 / 40 probe images');
    expect(html).toContain('>Cancel</button>');
    expect(html).toMatch(/<button type="button" disabled="">Find visual heads<\/button>/);
  });

  it('labels the file input, disables export without scores and shows the import error as text', () => {
    const html = render(createElement(ScoreFileControls, { ...base, canExport: false, importError: `bad key ${hostileLabel}` }));
    expect(html).not.toContain('Cancel');
    expect(html).not.toContain('<progress');
    expect(html).toMatch(/<button type="button" class="secondary" disabled="">Export scores<\/button>/);
    const inputId = /<input id="([^"]+)" class="vw-file-input" type="file"/.exec(html)?.[1];
    expect(inputId).toBeTruthy();
    expect(html).toContain(`<label class="vw-file-button" for="${inputId}">Import scores</label>`);
    expect(html).toContain('role="alert"');
    expect(html).toContain('bad key &lt;img src=x onerror=alert(1)&gt;');
    expect(html).not.toContain('<img src=x');
  });
});

describe('downloadText', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('downloads the text through a Blob URL and revokes it afterwards', async () => {
    const clicked: { href: string; download: string }[] = [];
    const link = {
      href: '',
      download: '',
      rel: '',
      click() {
        clicked.push({ href: this.href, download: this.download });
      },
      remove: vi.fn(),
    };
    vi.stubGlobal('document', { createElement: () => link, body: { appendChild: vi.fn() } });
    const blobs: Blob[] = [];
    const revoked: string[] = [];
    downloadText(
      '{"0-1":[0.5]}',
      'scores.json',
      (blob) => {
        blobs.push(blob);
        return 'blob:scores';
      },
      (url) => revoked.push(url),
    );
    expect(clicked).toEqual([{ href: 'blob:scores', download: 'scores.json' }]);
    expect(await blobs[0].text()).toBe('{"0-1":[0.5]}');
    expect(blobs[0].type).toBe('application/json');
    expect(link.remove).toHaveBeenCalled();
    expect(revoked).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(revoked).toEqual(['blob:scores']);
  });
});

describe('ViewsDemo', () => {
  it('renders every view with data labelled as demo data, deterministically', () => {
    const html = render(createElement(ViewsDemo));
    expectToContainAll(html, [
      'Demo data',
      'Find visual heads',
      'Visual-head score',
      'tokens kept over',
      'Attention weight',
      'SparseMM 256 vs Full cache',
    ]);
    expect(render(createElement(ViewsDemo))).toBe(html);
    // The demo budgets average the requested 256 tokens per head (up to rounding).
    const summary = summariseBudgets(demoCapacities(demoScores()), 32);
    expect(Math.abs(summary.averagePerHead - 256)).toBeLessThan(1);
    expect(demoRuns()).toHaveLength(2);
  });
});
