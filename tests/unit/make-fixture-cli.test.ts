import { describe, expect, it } from 'vitest';
import { parseMakeFixtureArgs } from '../../src/cli/make-fixture';
import { defaultFixtureSeed } from '../../src/model-io/fixture';

describe('make-fixture arguments', () => {
  it('reads --out, --preset, --seed and --reference, with the defaults', () => {
    expect(parseMakeFixtureArgs(['--out', 'dir'])).toEqual({ out: 'dir', preset: 'tiny', seed: defaultFixtureSeed, referenceDir: undefined });
    expect(parseMakeFixtureArgs(['--out', 'd', '--preset', 'smolvlm-256m-shape', '--seed', '7', '--reference', 'r'])).toEqual({ out: 'd', preset: 'smolvlm-256m-shape', seed: 7, referenceDir: 'r' });
    expect(parseMakeFixtureArgs(['--help'])).toBe('help');
  });

  it('refuses a missing --out, an unknown preset, a bad seed and a positional argument by name', () => {
    expect(() => parseMakeFixtureArgs([])).toThrow('--out is required');
    expect(() => parseMakeFixtureArgs(['--out', 'd', '--preset', 'big'])).toThrow('unknown preset "big"');
    expect(() => parseMakeFixtureArgs(['--out', 'd', '--seed', '1.5'])).toThrow('--seed must be an integer, got "1.5"');
    expect(() => parseMakeFixtureArgs(['--out', 'd', '--seed', '4294967296'])).toThrow('--seed must be in 0..4294967295');
    expect(() => parseMakeFixtureArgs(['--out', 'd', 'extra'])).toThrow('unexpected argument "extra"');
  });
});
