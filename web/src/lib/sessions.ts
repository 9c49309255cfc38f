import type { EntryStatus, Session, SessionStatus } from '../api/types';
import { HOUR } from './time';

export type BadgeColor = 'blue' | 'green' | 'orange' | 'red' | 'yellow' | 'gray';

export const SESSION_COLORS: Record<SessionStatus, BadgeColor> = {
  PENDING: 'blue',
  ACTIVE: 'green',
  PARTIAL: 'orange',
  FAILED: 'red',
  EXPIRING: 'yellow',
  EXPIRED: 'gray',
  CANCELLED: 'gray',
};

export const ENTRY_COLORS: Record<EntryStatus, BadgeColor> = {
  PENDING: 'blue',
  APPLYING: 'blue',
  APPLIED: 'green',
  FAILED: 'red',
  REMOVING: 'yellow',
  REMOVED: 'gray',
};

export const SESSION_DESCRIPTIONS: Record<SessionStatus, string> = {
  PENDING: 'IP rules are being applied',
  ACTIVE: 'All IP rules applied, you have access',
  PARTIAL: 'Some IP rules applied, others failed',
  FAILED: 'No IP rules could be applied',
  EXPIRING: 'Session ended, rules being removed',
  EXPIRED: 'Session ended, all rules removed',
  CANCELLED: 'Session manually stopped',
};

export const ENTRY_DESCRIPTIONS: Record<EntryStatus, string> = {
  PENDING: 'Rule application queued',
  APPLYING: 'Rule being applied right now',
  APPLIED: 'Rule active — access granted',
  FAILED: 'Rule application failed — check the Error column',
  REMOVING: 'Rule removal in progress',
  REMOVED: 'Rule removed — access revoked',
};

export const EXTEND_HOURS = 2;
export const POLL_INTERVAL_MS = 1500;

const SESSION_IN_FLIGHT: SessionStatus[] = ['PENDING', 'EXPIRING'];
const ENTRY_IN_FLIGHT: EntryStatus[] = ['PENDING', 'APPLYING', 'REMOVING'];
const LIVE: SessionStatus[] = ['ACTIVE', 'PARTIAL'];

/** True while the server is still working on this session (the page keeps polling). */
export function isInFlight(s: Session, now: number): boolean {
  if (SESSION_IN_FLIGHT.includes(s.status)) return true;
  if (s.resources.some((r) => ENTRY_IN_FLIGHT.includes(r.status))) return true;
  // Past its expiry but not yet swept: it is about to become EXPIRING.
  return LIVE.includes(s.status) && Date.parse(s.expiresAt) <= now;
}

export function anyInFlight(sessions: Session[], now: number): boolean {
  return sessions.some((s) => isInFlight(s, now));
}

export function canStop(s: Session): boolean {
  return s.status === 'ACTIVE' || s.status === 'PENDING' || s.status === 'PARTIAL';
}

export type ExtendCheck = { allowed: true } | { allowed: false; reason: string };

/** Whether "+2h" is allowed, and why not: the same rule the API applies. */
export function extendCheck(s: Session, maxSessionDurationHours: number, now: number): ExtendCheck {
  if (s.status !== 'ACTIVE' && s.status !== 'PARTIAL') {
    return { allowed: false, reason: `Only active or partial sessions can be extended (this one is ${s.status}).` };
  }
  const expires = Date.parse(s.expiresAt);
  if (expires <= now) {
    return { allowed: false, reason: 'This session has already reached its expiry time.' };
  }
  const total = expires + EXTEND_HOURS * HOUR - Date.parse(s.createdAt);
  if (total > maxSessionDurationHours * HOUR) {
    return {
      allowed: false,
      reason: `Extending by ${EXTEND_HOURS} h would pass your maximum session duration of ${maxSessionDurationHours} h.`,
    };
  }
  return { allowed: true };
}

/** The earliest future expiry of a live session, to refresh when it passes. */
export function nextExpiry(sessions: Session[], now: number): number | null {
  let best: number | null = null;
  for (const s of sessions) {
    if (!LIVE.includes(s.status) && s.status !== 'PENDING') continue;
    const t = Date.parse(s.expiresAt);
    if (t > now && (best === null || t < best)) best = t;
  }
  return best;
}

/** Timers cannot wait longer than about 24.8 days. */
const MAX_TIMEOUT_MS = 2_000_000_000;

/**
 * When to read the list again: soon while the server is working on something, else a second
 * after the next live session reaches its expiry, else not until asked.
 */
export function nextRefreshIn(sessions: Session[] | undefined, now: number): number | false {
  if (!sessions) return false;
  if (anyInFlight(sessions, now)) return POLL_INTERVAL_MS;
  const at = nextExpiry(sessions, now);
  return at === null ? false : Math.min(at - now + 1000, MAX_TIMEOUT_MS);
}
