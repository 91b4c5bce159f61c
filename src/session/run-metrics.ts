/** Pure helpers that turn an engine GenerateResult and the allocator's samples into what the UI shows. */
import type { StepRecord } from './types';
import { kvElementBytes } from '../engine/kv-cache';

/** The text added since `previous`; when decoding rewrote the tail (a multi-byte character completed), everything after the common prefix. */
export function textDelta(previous: string, next: string): string {
  if (next.startsWith(previous)) return next.slice(previous.length);
  let common = 0;
  while (common < previous.length && common < next.length && previous[common] === next[common]) common += 1;
  return next.slice(common);
}

/**
 * Bytes of K and V that hold tokens after `decodedTokens` decode steps: every KV head's kept prompt tokens plus the
 * tokens fed back so far, K and V rows of headDim values in the cache's element size (f16).
 */
export function kvBytesInUse(keptPerHead: readonly (readonly number[])[], headDim: number, decodedTokens: number): number {
  let rows = 0;
  for (const layer of keptPerHead) for (const kept of layer) rows += kept + decodedTokens;
  return 2 * rows * headDim * kvElementBytes;
}

/**
 * One record per decode step: the token from the prefill is step 1 and has no decode time, so the first
 * record is step 2 (the first token that a decode step produced).
 */
export function stepRecords(decodeStepMs: readonly number[], keptPerHead: readonly (readonly number[])[], headDim: number): StepRecord[] {
  return decodeStepMs.map((decodeMs, i) => ({ step: i + 2, decodeMs, kvBytes: kvBytesInUse(keptPerHead, headDim, i + 1) }));
}

/** Prefix capacities (kept minus the recent window) per [layer][KV head]. */
export function prefixCapacities(keptPerHead: readonly (readonly number[])[], windowLength: number): number[][] {
  return keptPerHead.map((row) => row.map((kept) => Math.max(0, kept - windowLength)));
}

/** Tracks the largest value seen. */
export class PeakSampler {
  private value = 0;

  sample(current: number): void {
    if (current > this.value) this.value = current;
  }

  get peak(): number {
    return this.value;
  }
}
