import { useMutation, useMutationState, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { ApiError, errorMessage, type Api } from '../api/client';
import type { IpVersion, Session } from '../api/types';
import { anyInFlight, EXTEND_HOURS, nextRefreshIn } from './sessions';

const TICK_MS = 30_000;
const SESSIONS_KEY = ['sessions'];
const ACTION_KEY = ['session-action'];

type Action = { session: Session; kind: 'stop' | 'extend' };

const FAMILY_NAMES: Record<IpVersion, string> = { v4: 'IPv4', v6: 'IPv6' };

/**
 * What to tell the person when their session covers one IP family though both were probed:
 * their network (or the other family's probe) did not answer, so a client that uses the other
 * family will be refused.
 */
export function onlyOneFamilyNote(session: Session, probed: IpVersion[]): string | null {
  if (probed.length < 2 || session.ipAddresses.length !== 1) return null;
  const found = session.ipAddresses[0].version;
  const missing: IpVersion = found === 'v4' ? 'v6' : 'v4';
  return `Only your ${FAMILY_NAMES[found]} address was found, so this session opens ${FAMILY_NAMES[found]} only. If your network also has ${FAMILY_NAMES[missing]}, a connection over ${FAMILY_NAMES[missing]} will be refused.`;
}

function preferredDuration(allowed: number[], chosen: number | null): number | null {
  if (chosen !== null && allowed.includes(chosen)) return chosen;
  return allowed.includes(2) ? 2 : (allowed[0] ?? null);
}

/**
 * The Sessions page's data and actions: the caller's limits, their sessions (read again while
 * anything is in flight and when the next one expires), start, stop and extend, and a clock for
 * relative times.
 */
export function useSessions(api: Api) {
  const client = useQueryClient();
  const meQuery = useQuery({ queryKey: ['me'], queryFn: () => api.me() });
  const sessionsQuery = useQuery({
    queryKey: SESSIONS_KEY,
    queryFn: () => api.listSessions(),
    refetchInterval: (q) => nextRefreshIn(q.state.data, Date.now()),
    refetchIntervalInBackground: true,
  });

  const [tick, setTick] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setTick(Date.now()), TICK_MS);
    return () => clearInterval(t);
  }, []);
  // Relative times are as fresh as the clock tick or the last answer, whichever is newer.
  const now = Math.max(tick, sessionsQuery.dataUpdatedAt);

  const [chosenDuration, setDuration] = useState<number | null>(null);
  const me = meQuery.data ?? null;
  const duration = me ? preferredDuration(me.allowedDurationsHours, chosenDuration) : null;

  // An action's failure, or a failed read the person has not dismissed yet.
  const [actionError, setActionError] = useState<string | null>(null);
  const [dismissedAt, setDismissedAt] = useState(0);
  const readError = sessionsQuery.error ?? meQuery.error;
  const readErrorAt = Math.max(sessionsQuery.errorUpdatedAt, meQuery.errorUpdatedAt);
  const error = actionError ?? (readError && readErrorAt > dismissedAt ? errorMessage(readError) : null);
  const clearError = () => {
    setActionError(null);
    setDismissedAt(Date.now());
  };

  const replace = (s: Session) => client.setQueryData<Session[]>(SESSIONS_KEY, (prev) => (prev ?? []).map((x) => (x.id === s.id ? s : x)));

  // Set when a start found the caller's address of one family only, though both were probed.
  const [familyNote, setFamilyNote] = useState<string | null>(null);

  const startMutation = useMutation({
    mutationFn: async (hours: number) => {
      const detected = await api.detectAddresses();
      let session: Session;
      try {
        session = await api.startSession(hours, detected.proofs);
      } catch (e) {
        // A proof refused (e.g. it expired on a slow network) must not cost the start itself.
        if (!(e instanceof ApiError && e.code.startsWith('ADDRESS_PROOF_'))) throw e;
        session = await api.startSession(hours);
      }
      return { session, probed: detected.probed };
    },
    onMutate: () => {
      clearError();
      setFamilyNote(null);
    },
    onSuccess: ({ session: s, probed }) => {
      client.setQueryData<Session[]>(SESSIONS_KEY, (prev) => [s, ...(prev ?? []).filter((x) => x.id !== s.id)]);
      setFamilyNote(onlyOneFamilyNote(s, probed));
    },
    onError: (e) => setActionError(errorMessage(e)),
  });

  const actionMutation = useMutation({
    mutationKey: ACTION_KEY,
    mutationFn: ({ session, kind }: Action) => (kind === 'stop' ? api.stopSession(session.id) : api.extendSession(session.id, EXTEND_HOURS)),
    onMutate: clearError,
    onSuccess: replace,
    onError: (e) => setActionError(errorMessage(e)),
  });
  const pending = useMutationState({
    filters: { mutationKey: ACTION_KEY, status: 'pending' },
    select: (m) => m.state.variables as Action | undefined,
  });
  const busy: Record<string, 'stop' | 'extend'> = {};
  for (const a of pending) if (a) busy[a.session.id] = a.kind;

  // A failed first read still ends the loading state.
  const sessions = sessionsQuery.data ?? (sessionsQuery.isError ? [] : null);

  return {
    me,
    sessions,
    now,
    duration,
    setDuration,
    error,
    clearError,
    starting: startMutation.isPending,
    familyNote,
    clearFamilyNote: () => setFamilyNote(null),
    busy,
    polling: sessions !== null && anyInFlight(sessions, now),
    start: () => {
      if (duration !== null) startMutation.mutate(duration);
    },
    stop: (session: Session) => actionMutation.mutate({ session, kind: 'stop' }),
    extend: (session: Session) => actionMutation.mutate({ session, kind: 'extend' }),
    refresh: () => void sessionsQuery.refetch(),
  };
}
