/**
 * Synthetic OCR probe images for visual-head scoring, in the spirit of synthdog (the data set the official SparseMM
 * scripts score on): several text chunks — words or short phrases from a built-in word list — at known, non-overlapping
 * boxes, in varied generic font families, sizes, weights, colours and backgrounds. Everything is deterministic from
 * (seed, sample index).
 *
 * Pure: no DOM types in the public API. A plan needs text metrics (to know the real box of the ink) and rendering needs
 * a canvas; both come through {@link ProbeCanvasContext}, a small Canvas-2D-like interface that OffscreenCanvas (in the
 * worker) and @napi-rs/canvas (in Node, src/cli/probe-canvas.ts) both satisfy. Fonts differ between canvases, so the
 * same seed gives the same texts, fonts and colours everywhere but boxes measured by the canvas at hand; plan and render
 * with the same backend.
 */
import { mulberry32 } from './random';

/** A rendered probe: RGBA pixels, row-major (the shape the processor's raw-image input takes). */
export interface ProbeImage {
  data: Uint8ClampedArray | Uint8Array;
  width: number;
  height: number;
  channels: 4;
}

/** An axis-aligned rectangle in image pixels: x, y is the top-left corner. */
export interface ProbeBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The generic families every platform maps to some installed font. */
export const probeFontFamilies = ['sans-serif', 'serif', 'monospace'] as const;
export type ProbeFontFamily = (typeof probeFontFamilies)[number];

export interface ProbeFont {
  family: ProbeFontFamily;
  sizePx: number;
  weight: 'normal' | 'bold';
  style: 'normal' | 'italic';
}

export interface ProbeChunk {
  text: string;
  /** Tight box of the ink, as measured by the canvas (actualBoundingBox*), in image pixels. */
  box: ProbeBox;
  font: ProbeFont;
  /** CSS colour, e.g. "#1a2b3c". */
  colour: string;
  /** Where fillText draws (alphabetic baseline, left alignment), so that the ink lands in `box`. */
  origin: { x: number; y: number };
}

/** A rectangle painted on the background before the text (a "paper" texture of shapes; never under any text box). */
export interface ProbeDecoration {
  box: ProbeBox;
  colour: string;
}

/** One probe image as data: what to draw and where the text is. */
export interface ProbePlan {
  width: number;
  height: number;
  /** CSS colour of the whole canvas. */
  background: string;
  decorations: ProbeDecoration[];
  chunks: ProbeChunk[];
}

/** What the planner and renderer need of a Canvas 2D context (OffscreenCanvasRenderingContext2D and @napi-rs/canvas fit). */
export interface ProbeCanvasContext {
  font: string;
  /** Only strings are written; the wider type lets DOM contexts (string | gradient | pattern) fit. */
  fillStyle: string | object;
  textBaseline: string;
  textAlign: string;
  fillRect(x: number, y: number, width: number, height: number): void;
  fillText(text: string, x: number, y: number): void;
  measureText(text: string): ProbeTextMetrics;
  getImageData(x: number, y: number, width: number, height: number): { data: Uint8ClampedArray; width: number; height: number };
}

/** The TextMetrics fields used (all CSS pixels, relative to the fillText origin). */
export interface ProbeTextMetrics {
  width: number;
  actualBoundingBoxLeft?: number;
  actualBoundingBoxRight?: number;
  actualBoundingBoxAscent?: number;
  actualBoundingBoxDescent?: number;
}

/** Measures `text` drawn in `font` (a CSS font string). */
export type TextMeasurer = (text: string, font: string) => ProbeTextMetrics;

/** Makes a context with a canvas of the given size (e.g. `(w, h) => new OffscreenCanvas(w, h).getContext('2d')`). */
export type ProbeContextFactory = (width: number, height: number) => ProbeCanvasContext;

export interface ProbeSetOptions {
  /** Image width range in pixels, inclusive (default 640..960). */
  width?: [number, number];
  /** Image height range in pixels, inclusive (default 480..720). */
  height?: [number, number];
  /** Chunks to try to place per image (default 3..7; fewer when the image is full). */
  chunks?: [number, number];
  /** Words per chunk (default 1..3). */
  wordsPerChunk?: [number, number];
  /** Font size range in pixels (default 20..56). */
  fontSizePx?: [number, number];
}

export const defaultProbeSetOptions: Required<ProbeSetOptions> = {
  width: [640, 960],
  height: [480, 720],
  chunks: [3, 7],
  wordsPerChunk: [1, 3],
  fontSizePx: [20, 56],
};

/** Common English words (synthdog draws from a corpus; a fixed list keeps samples reproducible offline). */
export const probeWords: readonly string[] = [
  'apple', 'river', 'garden', 'window', 'silver', 'market', 'planet', 'yellow', 'harbor', 'forest', 'winter', 'summer',
  'candle', 'bridge', 'pocket', 'rocket', 'shadow', 'island', 'meadow', 'copper', 'violet', 'marble', 'thunder', 'valley',
  'orange', 'basket', 'anchor', 'blanket', 'castle', 'desert', 'engine', 'falcon', 'ginger', 'hammer', 'jacket', 'kettle',
  'ladder', 'magnet', 'needle', 'oyster', 'pepper', 'quartz', 'rabbit', 'saddle', 'tablet', 'velvet', 'walnut', 'zipper',
  'north', 'south', 'east', 'west', 'cloud', 'stone', 'light', 'paper', 'music', 'table', 'chair', 'green', 'black',
  'white', 'purple', 'brown', 'train', 'plane', 'ocean', 'beach', 'tiger', 'zebra', 'eagle', 'horse', 'mouse', 'lemon',
  'grape', 'melon', 'bread', 'cheese', 'honey', 'sugar', 'salt', 'coffee', 'tea', 'milk', 'water', 'fire', 'earth',
  'wind', 'storm', 'rain', 'snow', 'sun', 'moon', 'star', 'night', 'morning', 'evening', 'today', 'tomorrow', 'city',
  'village', 'street', 'road', 'station', 'school', 'library', 'museum', 'theater', 'hospital', 'office', 'factory',
  'kitchen', 'bedroom', 'garage', 'doctor', 'teacher', 'farmer', 'painter', 'writer', 'singer', 'dancer', 'pilot',
  'captain', 'number', 'letter', 'record', 'ticket', 'invoice', 'receipt', 'total', 'price', 'amount', 'balance',
  'account', 'report', 'notice', 'summary', 'chapter', 'section', 'figure', 'example', 'question', 'answer', 'result',
  'method', 'system', 'network', 'signal', 'memory', 'vision', 'reading', 'writing', 'happy', 'quiet', 'bright',
  'gentle', 'rapid', 'simple', 'strong', 'little', 'golden', 'hidden', 'frozen', 'broken', 'open', 'closed', 'early',
  'late', 'first', 'second', 'third', 'final', 'public', 'private', 'local', 'global', 'modern', 'ancient', 'famous',
];

/** Deterministic per-sample stream: the sample index is mixed into the seed so samples are independent. */
function sampleRng(seed: number, index: number): () => number {
  const mixed = (Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(index + 1, 0xc2b2ae35)) >>> 0;
  return mulberry32(mixed);
}

function randomInt(next: () => number, [low, high]: [number, number]): number {
  return low + Math.floor(next() * (high - low + 1));
}

function pick<T>(next: () => number, items: readonly T[]): T {
  return items[Math.floor(next() * items.length)];
}

/** The CSS font string of a probe font. */
export function cssFont(font: ProbeFont): string {
  return `${font.style} ${font.weight} ${font.sizePx}px ${font.family}`;
}

type Rgb = [number, number, number];

function hexColour([r, g, b]: Rgb): string {
  return `#${[r, g, b].map((c) => c.toString(16).padStart(2, '0')).join('')}`;
}

/** WCAG relative luminance of an sRGB colour. */
export function relativeLuminance([r, g, b]: Rgb): number {
  const channel = (c: number): number => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
}

/** WCAG contrast ratio (1..21). */
export function contrastRatio(a: Rgb, b: Rgb): number {
  const la = relativeLuminance(a);
  const lb = relativeLuminance(b);
  return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
}

/** WCAG AA for normal text: every chunk has at least this contrast with the background under it. */
export const minimumTextContrast = 4.5;

function parseHex(colour: string): Rgb {
  const match = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(colour);
  if (!match) throw new Error(`not a #rrggbb colour: ${colour}`);
  return [parseInt(match[1], 16), parseInt(match[2], 16), parseInt(match[3], 16)];
}

/** A background: light (paper) or dark (slate), each channel jittered. */
function randomBackground(next: () => number): Rgb {
  const light = next() < 0.7;
  const base = light ? 200 : 15;
  return [0, 1, 2].map(() => base + Math.floor(next() * 55)) as Rgb;
}

/** A text colour with at least `minimumTextContrast` against `background` (random tries, then black or white). */
function randomTextColour(next: () => number, background: Rgb): Rgb {
  for (let attempt = 0; attempt < 32; attempt++) {
    const colour = [0, 1, 2].map(() => Math.floor(next() * 256)) as Rgb;
    if (contrastRatio(colour, background) >= minimumTextContrast) return colour;
  }
  return relativeLuminance(background) > 0.18 ? [0, 0, 0] : [255, 255, 255];
}

function boxesOverlap(a: ProbeBox, b: ProbeBox, gap: number): boolean {
  return a.x < b.x + b.width + gap && b.x < a.x + a.width + gap && a.y < b.y + b.height + gap && b.y < a.y + a.height + gap;
}

/** The ink box of `text` relative to its fillText origin (integers enclosing the ink; font-size estimate if unmeasured). */
function inkExtent(metrics: ProbeTextMetrics, sizePx: number): { left: number; right: number; ascent: number; descent: number } {
  // actualBoundingBoxLeft is the distance to the LEFT of the origin (negative when the ink starts right of it).
  const left = Math.ceil(metrics.actualBoundingBoxLeft ?? 0);
  const right = Math.ceil(metrics.actualBoundingBoxRight ?? metrics.width);
  const ascent = Math.ceil(metrics.actualBoundingBoxAscent ?? sizePx * 0.8);
  const descent = Math.ceil(metrics.actualBoundingBoxDescent ?? sizePx * 0.25);
  return { left, right, ascent, descent };
}

/** Minimum free pixels between two chunks' boxes, and between a box and the image edge. */
const chunkGap = 6;
const placementAttempts = 60;

/**
 * The plan of probe sample `index` of the set `seed`: deterministic given the same measurer. Chunks that find no free
 * place after a few tries are dropped, so a plan may have fewer chunks than drawn (never zero: the first always fits
 * because the font shrinks until it does). Chunk texts within one plan are distinct.
 */
export function planProbeSample(seed: number, index: number, measure: TextMeasurer, options: ProbeSetOptions = {}): ProbePlan {
  const settings = { ...defaultProbeSetOptions, ...options };
  const next = sampleRng(seed, index);
  const width = randomInt(next, settings.width);
  const height = randomInt(next, settings.height);
  const backgroundRgb = randomBackground(next);
  const background = hexColour(backgroundRgb);
  const wanted = randomInt(next, settings.chunks);
  const chunks: ProbeChunk[] = [];
  const usedTexts = new Set<string>();

  for (let c = 0; c < wanted; c++) {
    const words = randomInt(next, settings.wordsPerChunk);
    let text = Array.from({ length: words }, () => pick(next, probeWords)).join(' ');
    if (next() < 0.3) text = text.charAt(0).toUpperCase() + text.slice(1);
    if (usedTexts.has(text)) continue;
    const font: ProbeFont = {
      family: pick(next, probeFontFamilies),
      sizePx: randomInt(next, settings.fontSizePx),
      weight: next() < 0.3 ? 'bold' : 'normal',
      style: next() < 0.2 ? 'italic' : 'normal',
    };
    const colour = randomTextColour(next, backgroundRgb);
    // Shrink the font until the text fits the image (long phrases at large sizes may not).
    let ink = inkExtent(measure(text, cssFont(font)), font.sizePx);
    while (ink.left + ink.right > width - 2 * chunkGap || ink.ascent + ink.descent > height - 2 * chunkGap) {
      if (font.sizePx <= 8) break;
      font.sizePx = Math.max(8, Math.floor(font.sizePx * 0.8));
      ink = inkExtent(measure(text, cssFont(font)), font.sizePx);
    }
    const boxWidth = ink.left + ink.right;
    const boxHeight = ink.ascent + ink.descent;
    if (boxWidth <= 0 || boxHeight <= 0 || boxWidth > width - 2 * chunkGap || boxHeight > height - 2 * chunkGap) continue;
    for (let attempt = 0; attempt < placementAttempts; attempt++) {
      const box: ProbeBox = {
        x: chunkGap + Math.floor(next() * (width - 2 * chunkGap - boxWidth + 1)),
        y: chunkGap + Math.floor(next() * (height - 2 * chunkGap - boxHeight + 1)),
        width: boxWidth,
        height: boxHeight,
      };
      if (chunks.some((other) => boxesOverlap(box, other.box, chunkGap))) continue;
      chunks.push({ text, box, font, colour: hexColour(colour), origin: { x: box.x + ink.left, y: box.y + ink.ascent } });
      usedTexts.add(text);
      break;
    }
  }

  // Background shapes in a colour close to the background, placed only where no text is, so contrast is unchanged.
  const decorations: ProbeDecoration[] = [];
  const decorationCount = randomInt(next, [0, 4]);
  for (let d = 0; d < decorationCount; d++) {
    const box: ProbeBox = {
      x: Math.floor(next() * width * 0.8),
      y: Math.floor(next() * height * 0.8),
      width: 20 + Math.floor(next() * width * 0.3),
      height: 20 + Math.floor(next() * height * 0.3),
    };
    box.width = Math.min(box.width, width - box.x);
    box.height = Math.min(box.height, height - box.y);
    if (chunks.some((chunk) => boxesOverlap(box, chunk.box, 2))) continue;
    const shade = backgroundRgb.map((c) => Math.max(0, Math.min(255, c + Math.round((next() - 0.5) * 40)))) as Rgb;
    decorations.push({ box, colour: hexColour(shade) });
  }
  return { width, height, background, decorations, chunks };
}

/** Plans of samples 0..count-1 of the set `seed`. */
export function planProbeSet(seed: number, count: number, measure: TextMeasurer, options: ProbeSetOptions = {}): ProbePlan[] {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`probe set size must be a positive integer, got ${count}`);
  return Array.from({ length: count }, (_, index) => planProbeSample(seed, index, measure, options));
}

/** Draws a plan onto `ctx` (whose canvas is at least plan.width x plan.height) and returns its RGBA pixels. */
export function renderProbePlan(ctx: ProbeCanvasContext, plan: ProbePlan): ProbeImage {
  ctx.fillStyle = plan.background;
  ctx.fillRect(0, 0, plan.width, plan.height);
  for (const decoration of plan.decorations) {
    ctx.fillStyle = decoration.colour;
    ctx.fillRect(decoration.box.x, decoration.box.y, decoration.box.width, decoration.box.height);
  }
  ctx.textBaseline = 'alphabetic';
  ctx.textAlign = 'left';
  for (const chunk of plan.chunks) {
    ctx.font = cssFont(chunk.font);
    ctx.fillStyle = chunk.colour;
    ctx.fillText(chunk.text, chunk.origin.x, chunk.origin.y);
  }
  const image = ctx.getImageData(0, 0, plan.width, plan.height);
  return { data: image.data, width: image.width, height: image.height, channels: 4 };
}

/** Measure + render through one canvas backend; spread it into findVisualHeads' options. */
export interface ProbeRenderer {
  measureText: TextMeasurer;
  renderProbe: (plan: ProbePlan) => ProbeImage;
}

/** Binds the planner's measurer and the renderer to a canvas factory (a fresh canvas per rendered plan). */
export function probeRenderer(createContext: ProbeContextFactory): ProbeRenderer {
  const measuring = createContext(1, 1);
  return {
    measureText: (text, font) => {
      measuring.font = font;
      return measuring.measureText(text);
    },
    renderProbe: (plan) => renderProbePlan(createContext(plan.width, plan.height), plan),
  };
}

/** Parses "#rrggbb" into [r, g, b] (for tests and views). */
export function probeColourRgb(colour: string): [number, number, number] {
  return parseHex(colour);
}
