import { vi } from 'vitest';
import { Api } from '../api/client';
import type { Me, Session } from '../api/types';

export type Handler = (req: { method: string; path: string; body: unknown }) => { status?: number; body?: unknown } | undefined;

/** A fetch stand-in that answers from `handler`; unanswered requests get a 404 error body. */
export function fakeFetch(handler: Handler) {
  return vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input), 'http://localhost');
    const method = (init?.method ?? 'GET').toUpperCase();
    const body = init?.body ? JSON.parse(String(init.body)) : undefined;
    const r = handler({ method, path: url.pathname + url.search, body }) ?? {
      status: 404,
      body: { error: { code: 'NOT_FOUND', message: 'Route not found' } },
    };
    const status = r.status ?? 200;
    return new Response(status === 204 ? null : JSON.stringify(r.body ?? null), {
      status,
      headers: { 'Content-Type': 'application/json' },
    });
  });
}

export function makeApi(handler: Handler, onUnauthorized?: () => void) {
  const fetchImpl = fakeFetch(handler);
  const api = new Api({ baseUrl: '', getToken: () => 'test-token', onUnauthorized, fetchImpl: fetchImpl as unknown as typeof fetch });
  return { api, fetchImpl };
}

export function calls(fetchImpl: ReturnType<typeof fakeFetch>, method: string, path: string) {
  return fetchImpl.mock.calls.filter(([input, init]) => {
    const url = new URL(String(input), 'http://localhost');
    return (init?.method ?? 'GET') === method && url.pathname + url.search === path;
  }).length;
}

export function me(over: Partial<Me> = {}): Me {
  return {
    user: { id: 'u1', email: 'dev@example.com', isAdmin: false },
    organization: { id: 'o1', name: 'Demo Org', tier: 'TEAM', status: 'ACTIVE' },
    allowedDurationsHours: [1, 2, 4, 8, 12, 16, 24],
    maxSessionDurationHours: 24,
    maxConcurrentSessions: null,
    resourceCount: 3,
    ...over,
  };
}

const HOUR = 3600_000;

export function session(over: Partial<Session> = {}, now = Date.now()): Session {
  return {
    id: 's1',
    userId: 'u1',
    status: 'ACTIVE',
    ipAddresses: [{ address: '203.0.113.7', version: 'v4' }],
    resourceCount: 2,
    createdAt: new Date(now - 60_000).toISOString(),
    expiresAt: new Date(now + 2 * HOUR - 60_000).toISOString(),
    endedAt: null,
    resources: [
      { resourceId: 'r1', resourceName: 'bastion', ip: '203.0.113.7', status: 'APPLIED', error: null },
      { resourceId: 'r2', resourceName: 'postgres', ip: '203.0.113.7', status: 'APPLIED', error: null },
    ],
    stoppedBy: null,
    ...over,
  };
}
