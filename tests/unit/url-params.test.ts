import { describe, expect, it } from 'vitest';
import { readUrlOptions } from '../../src/ui/url-params';

describe('page URL options', () => {
  it('&weights= picks a known weight format; anything else is bf16', () => {
    expect(readUrlOptions('?model=http://x/m/&autoload=1&weights=q4')).toEqual({ modelUrl: 'http://x/m/', autoload: true, weightFormat: 'q4' });
    expect(readUrlOptions('?weights=q8').weightFormat).toBe('q8');
    expect(readUrlOptions('?weights=q5').weightFormat).toBe('bf16');
    expect(readUrlOptions('').weightFormat).toBe('bf16');
  });
});
