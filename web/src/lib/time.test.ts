import { describe, expect, it } from 'vitest';
import { DAY, HOUR, MINUTE, formatRelativeCoarse } from './time';

describe('formatRelativeCoarse', () => {
  const now = Date.parse('2026-11-22T10:00:00Z');
  const at = (ms: number) => new Date(now + ms).toISOString();

  it('counts whole days for dates far away, rounded', () => {
    expect(formatRelativeCoarse(at(90 * DAY - 2000), now)).toBe('in 90 days');
    expect(formatRelativeCoarse(at(DAY + HOUR), now)).toBe('in 1 day');
    expect(formatRelativeCoarse(at(-3 * DAY - 2 * HOUR), now)).toBe('3 days ago');
  });

  it('uses hours within a day and minutes within an hour', () => {
    expect(formatRelativeCoarse(at(5 * HOUR + 40 * MINUTE), now)).toBe('in 5 h');
    expect(formatRelativeCoarse(at(-2 * HOUR - MINUTE), now)).toBe('2 h ago');
    expect(formatRelativeCoarse(at(-12 * MINUTE), now)).toBe('12 min ago');
    expect(formatRelativeCoarse(at(-10_000), now)).toBe('just now');
  });
});
