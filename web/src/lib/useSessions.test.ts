import { describe, expect, it } from 'vitest';
import type { Session } from '../api/types';
import { onlyOneFamilyNote } from './useSessions';

function session(versions: ('v4' | 'v6')[]): Session {
  return { ipAddresses: versions.map((version) => ({ address: version === 'v4' ? '203.0.113.7' : '2001:db8::7', version })) } as Session;
}

describe('onlyOneFamilyNote', () => {
  it('speaks up only when both families were probed and one was found', () => {
    expect(onlyOneFamilyNote(session(['v4']), ['v4', 'v6'])).toMatch(/^Only your IPv4 address was found.*over IPv6 will be refused\.$/);
    expect(onlyOneFamilyNote(session(['v6']), ['v4', 'v6'])).toMatch(/^Only your IPv6 address was found/);
    expect(onlyOneFamilyNote(session(['v4', 'v6']), ['v4', 'v6'])).toBeNull();
    expect(onlyOneFamilyNote(session(['v4']), ['v4'])).toBeNull();
    expect(onlyOneFamilyNote(session(['v4']), [])).toBeNull();
  });
});
