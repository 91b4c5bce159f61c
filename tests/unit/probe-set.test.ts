import { describe, expect, it } from 'vitest';
import {
  contrastRatio,
  minimumTextContrast,
  planProbeSet,
  probeColourRgb,
  probeFontFamilies,
  type ProbeBox,
  type ProbePlan,
  type TextMeasurer,
} from '../../src/sparsemm/probe-set';
import { nodeProbeRenderer } from '../../src/cli/probe-canvas';

/** A canvas-free measurer: every glyph 0.6 em wide, ink 0.75 em above and 0.2 em below the baseline. */
const fixedMeasurer: TextMeasurer = (text, font) => {
  const size = Number(/(\d+)px/.exec(font)?.[1]);
  return { width: text.length * size * 0.6, actualBoundingBoxLeft: 0, actualBoundingBoxRight: text.length * size * 0.6, actualBoundingBoxAscent: size * 0.75, actualBoundingBoxDescent: size * 0.2 };
};

function overlaps(a: ProbeBox, b: ProbeBox): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

function checkPlan(plan: ProbePlan): void {
  expect(plan.chunks.length).toBeGreaterThan(0);
  const background = probeColourRgb(plan.background);
  plan.chunks.forEach((chunk, i) => {
    const { x, y, width, height } = chunk.box;
    expect(width).toBeGreaterThan(0);
    expect(height).toBeGreaterThan(0);
    expect(x).toBeGreaterThanOrEqual(0);
    expect(y).toBeGreaterThanOrEqual(0);
    expect(x + width).toBeLessThanOrEqual(plan.width);
    expect(y + height).toBeLessThanOrEqual(plan.height);
    expect(probeFontFamilies).toContain(chunk.font.family);
    expect(contrastRatio(probeColourRgb(chunk.colour), background)).toBeGreaterThanOrEqual(minimumTextContrast);
    for (const other of plan.chunks.slice(i + 1)) {
      expect(overlaps(chunk.box, other.box), `"${chunk.text}" and "${other.text}" overlap`).toBe(false);
      expect(other.text).not.toBe(chunk.text);
    }
    for (const decoration of plan.decorations) expect(overlaps(chunk.box, decoration.box)).toBe(false);
  });
}

describe('probe plans', () => {
  it('are deterministic from the seed and differ between seeds and samples', () => {
    const a = planProbeSet(7, 6, fixedMeasurer);
    expect(planProbeSet(7, 6, fixedMeasurer)).toEqual(a);
    expect(planProbeSet(8, 6, fixedMeasurer)).not.toEqual(a);
    expect(a[0]).not.toEqual(a[1]);
    // Sample i does not depend on how many samples were asked for.
    expect(planProbeSet(7, 2, fixedMeasurer)).toEqual(a.slice(0, 2));
  });

  it('keep boxes inside the image, disjoint, with readable contrast, and vary fonts and sizes', () => {
    const plans = planProbeSet(1, 20, fixedMeasurer);
    for (const plan of plans) checkPlan(plan);
    const chunks = plans.flatMap((plan) => plan.chunks);
    expect(new Set(chunks.map((chunk) => chunk.font.family)).size).toBe(3);
    expect(new Set(chunks.map((chunk) => chunk.font.sizePx)).size).toBeGreaterThan(10);
    expect(new Set(plans.map((plan) => plan.background)).size).toBeGreaterThan(10);
    expect(chunks.length).toBeGreaterThan(20 * 3);
  });

  it('honour the size options', () => {
    for (const plan of planProbeSet(3, 5, fixedMeasurer, { width: [200, 200], height: [100, 120], chunks: [2, 2], fontSizePx: [12, 14] })) {
      expect(plan.width).toBe(200);
      expect(plan.height).toBeGreaterThanOrEqual(100);
      expect(plan.height).toBeLessThanOrEqual(120);
      expect(plan.chunks.length).toBeLessThanOrEqual(2);
      checkPlan(plan);
    }
  });
});

describe('rendering with @napi-rs/canvas', () => {
  it('puts the ink of every chunk inside its measured box and nothing else outside the boxes', () => {
    const renderer = nodeProbeRenderer();
    const plans = planProbeSet(11, 3, renderer.measureText);
    for (const plan of plans) {
      checkPlan(plan);
      const image = renderer.renderProbe(plan);
      expect([image.width, image.height, image.channels]).toEqual([plan.width, plan.height, 4]);
      const background = probeColourRgb(plan.background);
      const decorationColours = plan.decorations.map((d) => probeColourRgb(d.colour));
      const at = (x: number, y: number): [number, number, number] => {
        const i = (y * plan.width + x) * 4;
        return [image.data[i], image.data[i + 1], image.data[i + 2]];
      };
      const differs = (a: number[], b: number[]): boolean => a.some((v, i) => Math.abs(v - b[i]) > 24);
      // Anti-aliasing may touch a pixel just outside the measured box.
      const margin = 2;
      const inBox = (x: number, y: number, box: ProbeBox, pad: number): boolean =>
        x >= box.x - pad && x < box.x + box.width + pad && y >= box.y - pad && y < box.y + box.height + pad;

      for (const chunk of plan.chunks) {
        const colour = probeColourRgb(chunk.colour);
        let ink = 0;
        for (let y = chunk.box.y; y < chunk.box.y + chunk.box.height; y++) {
          for (let x = chunk.box.x; x < chunk.box.x + chunk.box.width; x++) if (!differs(at(x, y), colour)) ink++;
        }
        // Real glyphs: a visible share of the box is drawn in the text colour.
        expect(ink, `ink of "${chunk.text}"`).toBeGreaterThan(chunk.box.width * chunk.box.height * 0.05);
      }
      for (let y = 0; y < plan.height; y++) {
        for (let x = 0; x < plan.width; x++) {
          if (plan.chunks.some((chunk) => inBox(x, y, chunk.box, margin))) continue;
          const pixel = at(x, y);
          const isBackground = !differs(pixel, background) || decorationColours.some((c) => !differs(pixel, c));
          if (!isBackground) throw new Error(`stray ink at (${x}, ${y}) outside every box: ${pixel.join(',')}`);
        }
      }
    }
  });
});
