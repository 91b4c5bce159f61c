/**
 * Perceptual colour maps for heatmaps, as small pure functions (no canvas, no DOM).
 *
 * Viridis is perceptually uniform, readable in grey-scale and by the common forms of colour
 * blindness, and goes from dark to light, so "more" is always "brighter". The anchor colours are the
 * 11 evenly spaced samples of matplotlib's viridis; between anchors we interpolate linearly in sRGB,
 * which stays within a few units of the 256-entry table.
 */

type Rgb = readonly [number, number, number];

const viridisAnchors: readonly Rgb[] = [
  [0x44, 0x01, 0x54],
  [0x48, 0x24, 0x75],
  [0x41, 0x44, 0x87],
  [0x35, 0x5f, 0x8d],
  [0x2a, 0x78, 0x8e],
  [0x21, 0x91, 0x8c],
  [0x22, 0xa8, 0x84],
  [0x44, 0xbf, 0x70],
  [0x7a, 0xd1, 0x51],
  [0xbd, 0xdf, 0x26],
  [0xfd, 0xe7, 0x25],
];

function toHex(rgb: Rgb): string {
  return `#${rgb.map((c) => Math.round(c).toString(16).padStart(2, '0')).join('')}`;
}

/** Clamps to [0, 1]; NaN counts as 0 so a bad value never breaks a colour string. */
export function clamp01(t: number): number {
  if (!(t > 0)) return 0;
  return t > 1 ? 1 : t;
}

/** Viridis colour for t in [0, 1] (clamped) as "#rrggbb". */
export function viridis(t: number): string {
  const x = clamp01(t) * (viridisAnchors.length - 1);
  const i = Math.min(Math.floor(x), viridisAnchors.length - 2);
  const f = x - i;
  const a = viridisAnchors[i];
  const b = viridisAnchors[i + 1];
  return toHex([a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f]);
}

/** A CSS linear-gradient through the colour map, left (0) to right (1), for legends. */
export function viridisGradientCss(direction = 'to right'): string {
  const stops = viridisAnchors.map((rgb, i) => `${toHex(rgb)} ${((i / (viridisAnchors.length - 1)) * 100).toFixed(0)}%`);
  return `linear-gradient(${direction}, ${stops.join(', ')})`;
}

/** Maps value into [0, 1] over [min, max]; a flat range maps everything to 0. */
export function normalise(value: number, min: number, max: number): number {
  if (!(max > min)) return 0;
  return clamp01((value - min) / (max - min));
}

/**
 * `count` well separated colours from the map for categorical series (e.g. KV heads), avoiding the
 * palest yellow end, which has too little contrast on a light background.
 */
export function viridisCategorical(count: number): string[] {
  if (count <= 1) return [viridis(0.35)];
  return Array.from({ length: count }, (_, i) => viridis(0.05 + (0.8 * i) / (count - 1)));
}
