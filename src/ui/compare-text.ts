/**
 * Compare's measurements in words (pure, unit-tested): the verdicts of the shared timing rule with their spreads, the
 * bytes a decode step reads with each cache and the speedup they allow, the shared vision figure, and how it was all
 * timed. The ComparePanel and the Metrics table both read these.
 */
import { describeTimingComparison, formatMedianWithSpread, type CompareMeasurements, type DecodeBytes, type StepTimeSummary, type VisionCounts } from '../worker/api';
import { formatBytes } from './format';

/** "3.12 ms (IQR 0.20)": a median with its interquartile range, two decimals below 10 ms. */
export function spreadText(summary: StepTimeSummary): string {
  return formatMedianWithSpread(summary, summary.medianMs < 10 ? 2 : 1);
}

/** The decode verdict: "1.42x faster", "no measurable difference", "too few steps to tell (3 < 4)". */
export function decodeVerdict(measurements: CompareMeasurements): string {
  return describeTimingComparison(measurements.decode);
}

/** The text-prefill verdict, counted in prefills. */
export function prefillVerdict(measurements: CompareMeasurements): string {
  return describeTimingComparison(measurements.prefill, 'prefills');
}

/**
 * "this cache reads 0.94x the bytes of the full cache per token (1.2 MiB against 1.3 MiB): on a GPU, decode can be at
 * most 1.06x faster here".
 */
export function bytesBoundLine(bytes: DecodeBytes): string {
  const policyBytes = bytes.weightBytes + bytes.policyKvBytes;
  const fullBytes = bytes.weightBytes + bytes.fullKvBytes;
  const reads = `this cache reads ${bytes.ratio.toFixed(2)}x the bytes of the full cache per token (${formatBytes(policyBytes)} against ${formatBytes(fullBytes)}, weights included)`;
  if (bytes.bound < 1.005) return `${reads}: on a GPU, where decode is bound by those bytes, it cannot be faster here`;
  return `${reads}: on a GPU, decode can be at most ${bytes.bound.toFixed(2)}x faster here`;
}

/** "2", or "2 pictures and 10 frames" when a count mixes both (a conversation with pictures in one turn, a video in another). */
function countText(total: number, frames: number, mixed: boolean): string {
  if (!mixed) return String(total);
  const pictures = total - frames;
  const parts = [];
  if (pictures > 0) parts.push(`${pictures} picture${pictures === 1 ? '' : 's'}`);
  if (frames > 0) parts.push(`${frames} frame${frames === 1 ? '' : 's'}`);
  return parts.join(' and ');
}

/**
 * Where a prompt's pictures and video frames got their features: "Pictures: 2 encoded by the vision tower HOW, 1 from
 * the feature cache.", "Video frames: 10 encoded by ..."; null without any. `how` follows "encoded by the vision tower"
 * (its time, and for Compare "once, for both runs").
 */
export function picturesText(counts: VisionCounts, how: string): string | null {
  const { encoded, reused, framesEncoded, framesReused } = counts;
  if (encoded + reused === 0) return null;
  const frames = framesEncoded + framesReused;
  const pictures = encoded + reused - frames;
  const mixed = frames > 0 && pictures > 0;
  const label = mixed ? 'Pictures and video frames' : frames > 0 ? 'Video frames' : 'Pictures';
  const parts = [];
  if (encoded > 0) parts.push(`${countText(encoded, framesEncoded, mixed)} encoded by the vision tower ${how}`);
  if (reused > 0) parts.push(`${countText(reused, framesReused, mixed)} from the feature cache`);
  return `${label}: ${parts.join(', ')}${encoded === 0 ? ' — vision tower not run' : ''}.`;
}

/** The pictures, once for both runs: "Pictures: 1 encoded by the vision tower once, for both runs (1.23 s)." */
export function sharedVisionText(vision: CompareMeasurements['vision'], formatMs: (ms: number) => string): string | null {
  return picturesText(vision, `once, for both runs (${formatMs(vision.ms)})`);
}

/** How the figures were taken: what was timed, in which order, how many times, and the rule behind the verdicts. */
export function timingNote(measurements: CompareMeasurements, policyName: string): string {
  const steps = Math.min(measurements.decode.baseline.count, measurements.decode.candidate.count);
  const clock = measurements.timing === 'gpu-timestamps' ? 'GPU timestamps' : 'wall clock (this adapter has no GPU timestamps)';
  const order = measurements.prefillOrder.map((run) => (run === 'full' ? 'full cache' : policyName)).join(', ');
  return (
    `Decode: the two caches ran in lockstep, one step each in turn, the order of the pair alternating; each figure is ` +
    `the median of ${steps} steps (${clock}) with the interquartile range (IQR) as its spread, and a gap inside the ` +
    `spread reads "no measurable difference". Text prefill: wall clock, median of ${measurements.prefill.baseline.count} ` +
    `prefills each after one untimed warm-up each (order: ${order}); ${policyName}'s includes its selection kernels (window scores, pooling, top-k, ` +
    `the gather into its cache).`
  );
}

/**
 * Why a figure measured on a CPU emulation says little about a GPU; null on a hardware adapter. The sentence on
 * dropped keys only when the policy dropped some (`compressed`): with nothing compressed it would explain a gain
 * that cannot be there.
 */
export function softwareNote(measurements: CompareMeasurements, compressed: boolean): string | null {
  if (!measurements.softwareAdapter) return null;
  const emulated =
    'This adapter is a CPU emulation (SwiftShader or similar): shader instructions run on the CPU, so these times count ' +
    'emulated instructions per key rather than bytes.';
  if (!compressed) return emulated;
  return `${emulated} Dropping keys saves more time here than the bytes bound allows on a GPU; a speedup above the bound is an artefact of the emulation, not a GPU figure.`;
}

/** Said first when the policy kept every prompt token, so no figure after it is read as the policy's doing. */
export function nothingCompressedText(promptTokens: number): string {
  return `the prompt (${promptTokens} tokens) is shorter than the budget, so nothing was compressed: both caches hold the whole prompt.`;
}
