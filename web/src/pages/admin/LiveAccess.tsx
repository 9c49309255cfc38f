import { useQuery } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from 'chart.js';
import { errorMessage, type Api } from '../../api/client';
import type { LiveSession, SessionActivity } from '../../api/types';
import { ShieldIcon, StopIcon } from '../../components/Icons';
import { IpVersionBadge, SessionStatusBadge } from '../../components/StatusBadge';
import { Alert, Card, EmptyState, Loading, PageHeader, Spinner } from '../../components/ui';
import { formatDateTime } from '../../lib/time';
import { useLoad } from '../../lib/queries';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

/** The list reads every user's sessions, so it refreshes slower than a user's own sessions do;
 * after a stop or a revoke it refreshes at once. */
const LIVE_POLL_MS = 10_000;

/** A live session can still be stopped while it grants (or is granting) access. */
const stoppable = (l: LiveSession) => ['PENDING', 'ACTIVE', 'PARTIAL'].includes(l.session.status);

function ActivityChart({ activity }: { activity: SessionActivity }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (!canvas.current) return;
    const chart = new Chart(canvas.current, {
      type: 'bar',
      data: {
        labels: activity.days.map((d) => d.date.slice(5)),
        datasets: [
          { label: 'Succeeded', data: activity.days.map((d) => d.started - d.failed), backgroundColor: '#2563eb', stack: 's' },
          { label: 'Failed or partial', data: activity.days.map((d) => d.failed), backgroundColor: '#dc2626', stack: 's' },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { position: 'bottom' } },
      },
    });
    return () => chart.destroy();
  }, [activity]);
  const started = activity.days.reduce((n, d) => n + d.started, 0);
  return (
    <>
      <p className="muted">
        {started} session{started === 1 ? '' : 's'} in the last 30 days · failure rate {(activity.failureRate * 100).toFixed(1)} %
      </p>
      <div className="chart">
        <canvas ref={canvas} role="img" aria-label={`Sessions per day over the last 30 days: ${started} in all`} />
      </div>
    </>
  );
}

export function LiveAccessPage({ api }: { api: Api }) {
  const users = useLoad(['users'], () => api.listUsers());
  const resources = useLoad(['resources'], () => api.listResources());
  const activity = useLoad(['activity'], () => api.sessionActivity());
  const [userId, setUserId] = useState('');
  const [resourceId, setResourceId] = useState('');
  const liveQuery = useQuery({
    queryKey: ['live', { userId, resourceId }],
    queryFn: () => api.listLiveSessions({ userId: userId || undefined, resourceId: resourceId || undefined }),
    refetchInterval: LIVE_POLL_MS,
    refetchIntervalInBackground: true,
  });
  const live = liveQuery.data ?? (liveQuery.isError ? [] : null);
  const [actionError, setActionError] = useState<string | null>(null);
  const error = actionError ?? (liveQuery.error ? errorMessage(liveQuery.error) : null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);

  async function refresh() {
    setActionError(null);
    await liveQuery.refetch();
  }

  async function stop(l: LiveSession) {
    setBusy(l.session.id);
    try {
      await api.stopAnySession(l.session.id);
      setNotice(`Stopped ${l.user.email}'s session; its rules are being removed.`);
      await refresh();
    } catch (e) {
      setActionError(errorMessage(e));
    } finally {
      setBusy(null);
    }
  }

  async function revokeAll() {
    setConfirming(false);
    setBusy('all');
    try {
      const { stopped } = await api.revokeAll(resourceId || undefined);
      setNotice(`Revoked: ${stopped} live session${stopped === 1 ? '' : 's'} stopped; their rules are being removed.`);
      await refresh();
      void activity.reload();
    } catch (e) {
      setActionError(errorMessage(e));
    } finally {
      setBusy(null);
    }
  }

  const resourceName = resources.data?.find((r) => r.id === resourceId)?.name;
  const scope = resourceName ? `to ${resourceName}` : 'to every resource';

  return (
    <>
      <PageHeader title="Live access" description="Who can reach your resources right now. Stop any session, or revoke all access at once in an incident." />
      {error && <Alert onDismiss={() => setActionError(null)}>{error}</Alert>}
      {notice && (
        <Alert kind="success" onDismiss={() => setNotice(null)}>
          {notice}
        </Alert>
      )}
      <Card
        title="Live sessions"
        actions={
          confirming ? (
            <span className="confirm">
              <button type="button" className="btn btn--danger btn--sm" onClick={() => void revokeAll()} autoFocus>
                Confirm: revoke all access {scope}
              </button>
              <button type="button" className="btn btn--ghost btn--sm" onClick={() => setConfirming(false)}>
                Cancel
              </button>
            </span>
          ) : (
            <button type="button" className="btn btn--danger btn--sm" disabled={busy !== null} onClick={() => setConfirming(true)}>
              {busy === 'all' ? <Spinner /> : <ShieldIcon size={14} />} Revoke all now
            </button>
          )
        }
      >
        <div className="filters filters--two">
          <label className="field">
            <span className="field__label">User</span>
            <select className="input" value={userId} onChange={(e) => setUserId(e.target.value)}>
              <option value="">Everyone</option>
              {users.data?.map((u) => (
                <option key={u.id} value={u.id}>
                  {u.email}
                </option>
              ))}
            </select>
          </label>
          <label className="field">
            <span className="field__label">Resource</span>
            <select className="input" value={resourceId} onChange={(e) => setResourceId(e.target.value)}>
              <option value="">All resources</option>
              {resources.data?.map((r) => (
                <option key={r.id} value={r.id}>
                  {r.name}
                </option>
              ))}
            </select>
          </label>
        </div>
        {live === null ? (
          <Loading />
        ) : live.length === 0 ? (
          <EmptyState title="Nobody has access right now" icon={<ShieldIcon />}>
            No session of your organization is live{userId || resourceId ? ' for this filter' : ''}.
          </EmptyState>
        ) : (
          <div className="table-wrap">
            <table className="table" aria-label="Live sessions">
              <thead>
                <tr>
                  <th scope="col">User</th>
                  <th scope="col">IP Addresses</th>
                  <th scope="col">Status</th>
                  <th scope="col">Resources</th>
                  <th scope="col">Expires</th>
                  <th scope="col" className="col-actions">
                    Actions
                  </th>
                </tr>
              </thead>
              <tbody>
                {live.map((l) => (
                  <tr key={l.session.id}>
                    <td data-label="User" className="strong">
                      {l.user.email}
                    </td>
                    <td data-label="IP Addresses">
                      <ul className="ip-list">
                        {l.session.ipAddresses.map((ip) => (
                          <li key={ip.address}>
                            <IpVersionBadge version={ip.version} />
                            <span className="mono">{ip.address}</span>
                          </li>
                        ))}
                      </ul>
                    </td>
                    <td data-label="Status">
                      <SessionStatusBadge status={l.session.status} />
                    </td>
                    <td data-label="Resources">{[...new Set(l.session.resources.map((r) => r.resourceName))].join(', ')}</td>
                    <td data-label="Expires">{formatDateTime(l.session.expiresAt)}</td>
                    <td data-label="Actions" className="col-actions">
                      {stoppable(l) && (
                        <button
                          type="button"
                          className="btn btn--ghost btn--sm btn--danger-text"
                          disabled={busy !== null}
                          onClick={() => void stop(l)}
                          aria-label={`Stop ${l.user.email}'s session`}
                        >
                          {busy === l.session.id ? <Spinner /> : <StopIcon />} Stop
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Card>
      <Card title="Last 30 days">
        {activity.error && <Alert>{activity.error}</Alert>}
        {activity.data ? <ActivityChart activity={activity.data} /> : activity.loading && <Loading />}
      </Card>
    </>
  );
}
