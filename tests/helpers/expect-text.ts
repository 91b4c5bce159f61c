/** Assertions on rendered text (SVG, HTML) shared by the unit tests. */
import { expect } from 'vitest';

/** Expects `text` to contain every one of `parts` (one toContain each, so a failure names the missing part). */
export function expectToContainAll(text: string, parts: readonly string[]): void {
  for (const part of parts) expect(text).toContain(part);
}
