import { useMutation, useMutationState, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { errorMessage, type Api } from '../api/client';
import type { Session } from '../api/types';
import { anyInFlight, EXTEND_HOURS, nextRefreshIn } from './sessions';

const TICK_MS = 30_000;
const SESSIONS_KEY = ['sessions'];
const ACTION_KEY = ['session-action'];

type Action = { session: Session; kind: 'stop' | 'extend' };

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

  const startMutation = useMutation({
    mutationFn: (hours: number) => api.startSession(hours),
    onMutate: clearError,
    onSuccess: (s) => client.setQueryData<Session[]>(SESSIONS_KEY, (prev) => [s, ...(prev ?? []).filter((x) => x.id !== s.id)]),
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
