/**
 * The probe renderer in Node: @napi-rs/canvas (Skia) behind probe-set.ts's Canvas-2D-like interface, for the heads CLI
 * and tests. The generic families (sans-serif, serif, monospace) resolve to whatever fonts the system has (DejaVu /
 * Liberation on Debian).
 */
import { createCanvas } from '@napi-rs/canvas';
import { type ProbeCanvasContext, probeRenderer, type ProbeRenderer } from '../sparsemm/probe-set';

/** A 2D context on a new @napi-rs/canvas canvas of the given size. */
export function nodeProbeContext(width: number, height: number): ProbeCanvasContext {
  return createCanvas(width, height).getContext('2d');
}

/** measureText + renderProbe backed by @napi-rs/canvas. */
export function nodeProbeRenderer(): ProbeRenderer {
  return probeRenderer(nodeProbeContext);
}
