import { describe, expect, it } from 'vitest';
import { session } from '../test/helpers';
import { anyInFlight, canStop, extendCheck, isInFlight } from './sessions';
import { formatRelative, formatSpan } from './time';

const H = 3600_000;

describe('extendCheck', () => {
  const now = Date.parse('2026-11-22T10:00:00Z');
  const base = { createdAt: '2026-11-22T10:00:00Z', expiresAt: '2026-11-22T12:00:00Z' };

  it('allows +2h on ACTIVE and PARTIAL within the maximum', () => {
    expect(extendCheck(session({ ...base, status: 'ACTIVE' }), 4, now)).toEqual({ allowed: true });
    expect(extendCheck(session({ ...base, status: 'PARTIAL' }), 4, now)).toEqual({ allowed: true });
  });

  it.each(['PENDING', 'FAILED', 'EXPIRING', 'EXPIRED', 'CANCELLED'] as const)('refuses %s with a reason', (status) => {
    const r = extendCheck(session({ ...base, status }), 24, now);
    expect(r.allowed).toBe(false);
    if (!r.allowed) expect(r.reason).toContain(status);
  });

  it('refuses when expiresAt + 2h - createdAt would pass the maximum', () => {
    const r = extendCheck(session({ ...base, status: 'ACTIVE' }), 3, now);
    expect(r).toEqual({ allowed: false, reason: expect.stringContaining('maximum session duration of 3 h') });
  });

  it('refuses once the session is past its expiry', () => {
    const r = extendCheck(session({ ...base, status: 'ACTIVE' }), 24, now + 3 * H);
    expect(r.allowed).toBe(false);
  });
});

describe('in flight', () => {
  const now = Date.now();
  it('is true for PENDING/EXPIRING sessions and PENDING/APPLYING/REMOVING entries', () => {
    expect(isInFlight(session({ status: 'PENDING' }, now), now)).toBe(true);
    expect(isInFlight(session({ status: 'EXPIRING' }, now), now)).toBe(true);
    for (const st of ['PENDING', 'APPLYING', 'REMOVING'] as const) {
      const s = session({}, now);
      s.resources[0].status = st;
      expect(isInFlight(s, now)).toBe(true);
    }
  });
  it('is false once everything has settled', () => {
    const settled = [
      session({ status: 'ACTIVE' }, now),
      session({ id: 's2', status: 'CANCELLED', endedAt: new Date(now).toISOString() }, now),
    ];
    settled[1].resources.forEach((r) => (r.status = 'REMOVED'));
    expect(anyInFlight(settled, now)).toBe(false);
  });
});

describe('canStop', () => {
  it('allows ACTIVE, PENDING and PARTIAL only', () => {
    const ok = ['ACTIVE', 'PENDING', 'PARTIAL'];
    for (const st of ['PENDING', 'ACTIVE', 'PARTIAL', 'FAILED', 'EXPIRING', 'EXPIRED', 'CANCELLED'] as const) {
      expect(canStop(session({ status: st }))).toBe(ok.includes(st));
    }
  });
});

describe('time formatting', () => {
  it('formats spans and relative times', () => {
    expect(formatSpan(H * 2 - 60_000)).toBe('1 h 59 min');
    expect(formatSpan(45 * 60_000)).toBe('45 min');
    expect(formatSpan(4 * H)).toBe('4 h');
    const now = Date.parse('2026-11-22T10:00:00Z');
    expect(formatRelative('2026-11-22T11:59:30Z', now)).toBe('in 1 h 59 min');
    expect(formatRelative('2026-11-22T10:00:20Z', now)).toBe('in less than a minute');
    expect(formatRelative('2026-11-22T09:55:00Z', now)).toBe('5 min ago');
  });
});
