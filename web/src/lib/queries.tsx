import { QueryClient, QueryClientProvider, useQuery, useQueryClient, type QueryKey } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import { errorMessage } from '../api/client';

/**
 * One cache per signed-in person (the shell mounts a new one on every sign-in). Failures are shown
 * at once rather than retried, and a window regaining focus does not refetch: every page has a
 * Refresh control and the lists that change on their own poll.
 */
export function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: { retry: false, refetchOnWindowFocus: false },
      mutations: { retry: false },
    },
  });
}

export function Queries({ children }: { children: ReactNode }) {
  const [client] = useState(makeQueryClient);
  return <QueryClientProvider client={client}>{children}</QueryClientProvider>;
}

/** The shape pages read a list or a record in: data (null until loaded), a message on failure. */
export interface Loaded<T> {
  data: T | null;
  /** Replaces the cached value after a change the API answered with (no refetch). */
  setData: (update: T | ((prev: T | null) => T)) => void;
  error: string | null;
  loading: boolean;
  reload: () => Promise<void>;
}

export function useLoad<T>(key: QueryKey, fn: () => Promise<T>): Loaded<T> {
  const client = useQueryClient();
  const q = useQuery({ queryKey: key, queryFn: fn });
  return {
    data: q.data ?? null,
    setData: (update) =>
      client.setQueryData<T>(key, (prev) =>
        typeof update === 'function' ? (update as (p: T | null) => T)(prev ?? null) : update,
      ),
    error: q.error ? errorMessage(q.error) : null,
    loading: q.isFetching,
    reload: async () => {
      await q.refetch();
    },
  };
}
