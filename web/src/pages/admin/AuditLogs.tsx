import { useInfiniteQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { errorMessage, type Api } from '../../api/client';
import type { AuditQuery } from '../../api/types';
import { ListIcon } from '../../components/Icons';
import { Badge } from '../../components/StatusBadge';
import { Alert, Card, EmptyState, Loading, PageHeader, Spinner } from '../../components/ui';
import { formatDate, formatDateTime, formatTime } from '../../lib/time';
import { useLoad } from '../../lib/queries';

const PAGE_SIZE = 50;

export const KNOWN_TYPES = [
  'auth.login',
  'auth.token',
  'session.started',
  'session.stopped',
  'session.extended',
  'session.expired',
  'rule.applied',
  'rule.failed',
  'rule.removed',
  'session.redriven',
  'admin.change',
  'system.alert',
];

interface Filters {
  type: string;
  userId: string;
  from: string; // datetime-local value
  to: string;
}

const EMPTY: Filters = { type: '', userId: '', from: '', to: '' };

/** datetime-local ("2026-11-22T10:00") in the browser's zone → RFC 3339 UTC. */
export function localToIso(v: string): string | undefined {
  if (!v) return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function toQuery(f: Filters): AuditQuery {
  return {
    type: f.type.trim() || undefined,
    userId: f.userId || undefined,
    from: localToIso(f.from),
    to: localToIso(f.to),
    limit: PAGE_SIZE,
  };
}

function outcomeColor(o: string) {
  const u = o.toUpperCase();
  if (u === 'SUCCESS' || u === 'OK') return 'green' as const;
  if (u === 'FAILURE' || u === 'FAILED' || u === 'ERROR' || u === 'DENIED') return 'red' as const;
  return 'gray' as const;
}

export function AuditLogsPage({ api }: { api: Api }) {
  const users = useLoad(['users'], () => api.listUsers());
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [filterError, setFilterError] = useState<string | null>(null);

  // Newest first, a page at a time: "Load more" follows the cursor of the last page.
  const log = useInfiniteQuery({
    queryKey: ['audit', filters],
    queryFn: ({ pageParam }) => api.auditLogs({ ...toQuery(filters), cursor: pageParam }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  });
  const items = log.data?.pages.flatMap((p) => p.items) ?? (log.isError ? [] : null);
  const cursor = log.hasNextPage;
  const loadingMore = log.isFetchingNextPage;
  const error = log.error ? errorMessage(log.error) : null;
  const loadMore = () => log.fetchNextPage();

  function apply(e: React.FormEvent) {
    e.preventDefault();
    if (draft.from && draft.to && new Date(draft.from) > new Date(draft.to)) {
      setFilterError('"From" must be before "To"');
      return;
    }
    setFilterError(null);
    setFilters({ ...draft });
  }

  const set = <K extends keyof Filters>(k: K, v: Filters[K]) => setDraft((d) => ({ ...d, [k]: v }));

  return (
    <>
      <PageHeader title="Audit Logs" description="Every sign-in, session and rule change in your organization, newest first." />
      <Card>
        <form className="filters" onSubmit={apply} aria-label="Filter audit logs">
          <div className="field">
            <label htmlFor="f-type" className="field__label">
              Event type
            </label>
            <input id="f-type" className="input" list="audit-types" value={draft.type} onChange={(e) => set('type', e.target.value)} placeholder="All types" />
            <datalist id="audit-types">
              {KNOWN_TYPES.map((t) => (
                <option key={t} value={t} />
              ))}
            </datalist>
          </div>
          <div className="field">
            <label htmlFor="f-user" className="field__label">
              User
            </label>
            <select id="f-user" className="input select" value={draft.userId} onChange={(e) => set('userId', e.target.value)}>
              <option value="">All users</option>
              {(users.data ?? []).map((u) => (
                <option key={u.id} value={u.id}>
                  {u.email}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="f-from" className="field__label">
              From
            </label>
            <input id="f-from" className="input" type="datetime-local" value={draft.from} onChange={(e) => set('from', e.target.value)} />
          </div>
          <div className="field">
            <label htmlFor="f-to" className="field__label">
              To
            </label>
            <input id="f-to" className="input" type="datetime-local" value={draft.to} onChange={(e) => set('to', e.target.value)} />
          </div>
          <div className="filters__actions">
            <button type="submit" className="btn btn--primary">
              Apply filters
            </button>
            <button
              type="button"
              className="btn btn--ghost"
              onClick={() => {
                setDraft(EMPTY);
                setFilters(EMPTY);
                setFilterError(null);
              }}
            >
              Clear
            </button>
          </div>
        </form>
        {filterError && <p className="field__error">{filterError}</p>}
      </Card>
      {error && <Alert>{error}</Alert>}
      <Card title="Events">
        {items === null ? (
          <Loading label="Loading events…" />
        ) : items.length === 0 ? (
          <EmptyState title="No events match these filters" icon={<ListIcon size={28} />}>
            Change or clear the filters to see more.
          </EmptyState>
        ) : (
          <>
            <div className="table-wrap">
              <table className="table">
                <thead>
                  <tr>
                    <th scope="col">Time</th>
                    <th scope="col">Type</th>
                    <th scope="col">Actor</th>
                    <th scope="col">IP</th>
                    <th scope="col">Outcome</th>
                    <th scope="col">Message</th>
                  </tr>
                </thead>
                <tbody>
                  {items.map((ev) => (
                    <tr key={ev.id}>
                      <td data-label="Time" className="nowrap small">
                        <time dateTime={ev.time} title={formatDateTime(ev.time, true)} className="stack">
                          <span>{formatTime(ev.time)}</span>
                          <span className="muted">{formatDate(ev.time)}</span>
                        </time>
                      </td>
                      <td data-label="Type">
                        <code className="code-inline">{ev.type}</code>
                      </td>
                      <td data-label="Actor">{ev.actorEmail ?? <span className="muted">System</span>}</td>
                      <td data-label="IP" className="mono small">
                        {ev.ip ?? <span className="muted">—</span>}
                      </td>
                      <td data-label="Outcome">
                        <Badge color={outcomeColor(ev.outcome)}>{ev.outcome}</Badge>
                      </td>
                      <td data-label="Message" className="small wrap-anywhere">
                        {ev.message}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <div className="load-more">
              {cursor ? (
                <button type="button" className="btn btn--secondary" onClick={() => void loadMore()} disabled={loadingMore}>
                  {loadingMore && <Spinner />} Load more
                </button>
              ) : (
                <span className="muted small">
                  {items.length} event{items.length === 1 ? '' : 's'} · end of the log
                </span>
              )}
            </div>
          </>
        )}
      </Card>
    </>
  );
}
