import { describe, expect, it } from 'vitest';
import { measureComputePeak } from '../../src/engine/adapter-limits';
import { gpuContext } from '../helpers/gpu';

describe('adapter limits', () => {
  it('measures the f32 multiply-add peak from timed passes of the compute_peak kernel', async () => {
    const ctx = await gpuContext();
    const peak = await measureComputePeak(ctx, 1);
    // One pass per grid size; each was calibrated to take tens of milliseconds at least.
    expect(peak.passMs).toHaveLength(2);
    for (const ms of peak.passMs) expect(ms).toBeGreaterThan(10);
    expect(peak.flopsPerPass).toBeGreaterThan(0);
    // The reported rate is that of one of the passes (the fastest), not a constant.
    const rates = peak.passMs.map((ms) => peak.flopsPerPass / (ms * 1e6));
    expect(rates.some((rate) => Math.abs(rate - peak.peakGflops) / peak.peakGflops < 1e-9)).toBe(true);
    expect(Number.isFinite(peak.peakGflops) && peak.peakGflops > 0).toBe(true);
  });
});
