/**
 * Deterministic DEMO data for the views demo page and tests. None of it comes from a model: scores,
 * budgets, attention and timings are synthetic, generated from a fixed seed.
 */
// Seeded (mulberry32), so the demo looks the same on every load.
import { mulberry32 } from '../../worker/api';
import type { ImageTokenGeometry, RunMetrics } from './types';

export const demoLayers = 30;
export const demoQHeads = 9;
export const demoKvHeads = 3;
export const demoWindow = 32;
export const demoBudget = 256;

/** Mostly near-zero scores with a handful of strong "visual heads" in the middle layers, like real score files. */
export function demoScores(): number[][] {
  const random = mulberry32(7);
  return Array.from({ length: demoLayers }, (_, layer) =>
    Array.from({ length: demoQHeads }, () => {
      const base = random() * 0.002;
      const middle = Math.exp(-(((layer - 14) / 6) ** 2));
      return random() < 0.08 + 0.1 * middle ? base + random() * 0.05 * middle : base;
    }),
  );
}

/** Demo budgets in the SparseMM shape: a floor of 10% of base per KV head, the rest split by summed score. */
export function demoCapacities(scores: number[][]): number[][] {
  const base = demoBudget - demoWindow;
  const floor = Math.floor(base * 0.1);
  const total = scores.flat().reduce((sum, s) => sum + s, 0);
  const remain = (base - floor) * demoLayers * demoKvHeads;
  const group = demoQHeads / demoKvHeads;
  return scores.map((row) =>
    Array.from({ length: demoKvHeads }, (_, g) => {
      const groupScore = row.slice(g * group, (g + 1) * group).reduce((sum, s) => sum + s, 0);
      return Math.round((groupScore / total) * remain + floor);
    }),
  );
}

export const demoImage = { width: 800, height: 600, resizedWidth: 2048, resizedHeight: 1536 };
export const demoGeometry: ImageTokenGeometry = { rows: 3, cols: 4, tokensPerSide: 8 };

/** A drawn picture (SVG data URL) so the demo needs no image file: a sign with a word on it. */
export function demoImageUrl(): string {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="800" height="600" viewBox="0 0 800 600">
<rect width="800" height="600" fill="#cfe3f5"/><rect y="420" width="800" height="180" fill="#7aa35a"/>
<rect x="470" y="140" width="250" height="130" rx="10" fill="#fffbe8" stroke="#333" stroke-width="6"/>
<text x="595" y="225" font-family="sans-serif" font-size="64" text-anchor="middle" fill="#222">OPEN</text>
<rect x="585" y="270" width="20" height="160" fill="#6b4b2a"/><circle cx="140" cy="110" r="50" fill="#ffd34d"/></svg>`;
  return `data:image/svg+xml,${encodeURIComponent(svg)}`;
}

/**
 * Attention concentrated on the sign (centre at 595, 205 of 800 x 600) in both the tiles and the global
 * image, plus low noise: one weight per image token in prompt order.
 */
export function demoAttention(): Float32Array {
  const random = mulberry32(11);
  const { rows, cols, tokensPerSide } = demoGeometry;
  const perTile = tokensPerSide * tokensPerSide;
  const weights = new Float32Array((rows * cols + 1) * perTile);
  const centreX = 595 / 800;
  const centreY = 205 / 600;
  const bump = (u: number, v: number) => Math.exp(-(((u - centreX) / 0.12) ** 2 + ((v - centreY) / 0.1) ** 2));
  for (let tile = 0; tile <= rows * cols; tile++) {
    const isGlobal = tile === rows * cols;
    for (let r = 0; r < tokensPerSide; r++) {
      for (let c = 0; c < tokensPerSide; c++) {
        // Token centre in [0, 1] picture coordinates.
        const u = isGlobal ? (c + 0.5) / tokensPerSide : ((tile % cols) + (c + 0.5) / tokensPerSide) / cols;
        const v = isGlobal ? (r + 0.5) / tokensPerSide : (Math.floor(tile / cols) + (r + 0.5) / tokensPerSide) / rows;
        weights[tile * perTile + r * tokensPerSide + c] = bump(u, v) * 0.01 + random() * 0.0005;
      }
    }
  }
  return weights;
}

function demoRun(label: string, policy: string, budget: number | undefined, keptPerHead: (promptTokens: number) => number, decodeBase: number): RunMetrics {
  const promptTokens = 876;
  const imageTokens = 832;
  // SmolVLM-256M-like KV cost: 30 layers x 3 KV heads x 64 dims x (K and V) x 4 bytes per token and head.
  const bytesPerHeadToken = 2 * 64 * 4;
  const kvHeadsInAll = demoLayers * demoKvHeads;
  const perStep = Array.from({ length: 48 }, (_, i) => {
    const step = i + 1;
    const tokensPerHead = keptPerHead(promptTokens) + step;
    return { step, kvBytes: tokensPerHead * kvHeadsInAll * bytesPerHeadToken, decodeMs: decodeBase + tokensPerHead * 0.004 + (i % 5) * 0.15 };
  });
  const last = perStep[perStep.length - 1];
  const decodeMsPerToken = perStep.reduce((sum, p) => sum + p.decodeMs, 0) / perStep.length;
  return {
    label,
    policy,
    budget,
    promptTokens,
    textTokens: promptTokens - imageTokens,
    imageTokens,
    prefillMs: 812.4,
    visionMs: 521.7,
    textPrefillMs: 290.7,
    timeToFirstTokenMs: 840.9,
    decodeMsPerToken,
    tokensPerSecond: 1000 / decodeMsPerToken,
    kvBytes: last.kvBytes,
    totalGpuBytes: 540 * 1024 * 1024 + last.kvBytes,
    generatedTokens: perStep.length,
    perStep,
  };
}

export function demoRuns(): RunMetrics[] {
  return [
    demoRun('Full cache', 'full', undefined, (prompt) => prompt, 9.5),
    demoRun('SparseMM 256', 'sparsemm', demoBudget, () => demoBudget, 7.2),
  ];
}
