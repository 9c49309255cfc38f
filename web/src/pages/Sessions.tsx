import { Fragment, useId, useState } from 'react';
import type { Api } from '../api/client';
import type { Session } from '../api/types';
import { ChevronIcon, ClockIcon, PlayIcon, RefreshIcon, ServerIcon, StopIcon } from '../components/Icons';
import { EntryStatusBadge, IpVersionBadge, SessionStatusBadge } from '../components/StatusBadge';
import { Alert, Card, EmptyState, Loading, PageHeader, Spinner } from '../components/ui';
import { canStop, EXTEND_HOURS, extendCheck } from '../lib/sessions';
import { formatDateTime, formatRelative, hoursLabel } from '../lib/time';
import { useSessions } from '../lib/useSessions';

export function SessionsPage({ api }: { api: Api }) {
  const { me, sessions, now, duration, setDuration, error, clearError, starting, familyNote, clearFamilyNote, busy, polling, start, stop, extend, refresh } =
    useSessions(api);
  const [expanded, setExpanded] = useState<Record<string, boolean>>({});

  const toggle = (id: string) => setExpanded((x) => ({ ...x, [id]: !x[id] }));
  const noResources = me !== null && me.resourceCount === 0;

  return (
    <>
      <PageHeader
        title="Sessions"
        description="Start a session to open your current IPv4 and/or IPv6 address on every cloud resource assigned to you. Access is removed automatically when the session ends."
      />

      <Card className="start-card">
        {me === null && !error ? (
          <Loading label="Loading your access…" />
        ) : (
          <form
            className="start-form"
            onSubmit={(e) => {
              e.preventDefault();
              start();
            }}
          >
            <div className="start-form__field">
              <label htmlFor="duration" className="field__label">
                Session duration
              </label>
              <select
                id="duration"
                className="input select"
                value={duration ?? ''}
                onChange={(e) => setDuration(Number(e.target.value))}
                disabled={!me || noResources}
              >
                {(me?.allowedDurationsHours ?? []).map((h) => (
                  <option key={h} value={h}>
                    {hoursLabel(h)}
                  </option>
                ))}
              </select>
            </div>
            <button
              type="submit"
              className="btn btn--primary btn--lg"
              disabled={!me || noResources || starting || duration === null}
            >
              {starting ? <Spinner /> : <PlayIcon size={14} />}
              {starting ? 'Starting…' : 'Start Session'}
            </button>
            {me && (
              <dl className="start-form__facts">
                <div>
                  <dt>Resources</dt>
                  <dd>{me.resourceCount}</dd>
                </div>
                <div>
                  <dt>Longest session</dt>
                  <dd>{me.maxSessionDurationHours} h</dd>
                </div>
                <div>
                  <dt>Plan</dt>
                  <dd>{titleCase(me.organization.tier)}</dd>
                </div>
              </dl>
            )}
          </form>
        )}
        {noResources && me?.user.isAdmin && (
          <div className="notice notice--info" role="note" aria-label="First steps">
            <ServerIcon />
            <div>
              <strong>First steps</strong>
              <ol className="first-steps">
                <li>
                  <a href="#/admin/credentials">Add a credential</a> — an IAM role EntryGuard may assume in your AWS account.
                </li>
                <li>
                  <a href="#/admin/resources">Add a resource</a> — a security group and the ports to open.
                </li>
                <li>
                  <a href="#/admin/roles">Create a role</a> linking people to resources, and <a href="#/admin/users">invite your team</a>.
                </li>
                <li>Start a session here.</li>
              </ol>
            </div>
          </div>
        )}
        {noResources && !me?.user.isAdmin && (
          <div className="notice notice--warning">
            <ServerIcon />
            <div>
              <strong>No resources are assigned to you</strong> — ask your administrator to add you to a role.
            </div>
          </div>
        )}
      </Card>

      {error && (
        <Alert kind="error" onDismiss={clearError}>
          {error}
        </Alert>
      )}
      {familyNote && (
        <Alert kind="info" onDismiss={clearFamilyNote}>
          {familyNote}
        </Alert>
      )}

      <Card
        title="Your sessions"
        actions={
          <>
            {polling && (
              <span className="live-indicator" aria-live="polite">
                <span className="live-indicator__dot" aria-hidden="true" /> Updating
              </span>
            )}
            <button type="button" className="btn btn--ghost btn--sm" onClick={refresh}>
              <RefreshIcon size={14} /> Refresh
            </button>
          </>
        }
      >
        {sessions === null ? (
          <Loading label="Loading sessions…" />
        ) : sessions.length === 0 ? (
          <EmptyState title="No sessions yet" icon={<ClockIcon size={28} />}>
            {noResources
              ? 'Once your administrator assigns you resources, you can start a session here.'
              : 'Choose a duration above and click Start Session to open access from your current IP address.'}
          </EmptyState>
        ) : (
          <div className="table-wrap">
            <table className="table sessions-table">
              <thead>
                <tr>
                  <th scope="col" className="col-toggle">
                    <span className="sr-only">Details</span>
                  </th>
                  <th scope="col">IP Addresses</th>
                  <th scope="col">Status</th>
                  <th scope="col" className="num">
                    Resources
                  </th>
                  <th scope="col">Expires</th>
                  <th scope="col" className="col-actions">
                    Actions
                  </th>
                </tr>
              </thead>
              <tbody>
                {sessions.map((s) => (
                  <SessionRow
                    key={s.id}
                    session={s}
                    now={now}
                    maxHours={me?.maxSessionDurationHours ?? 0}
                    expanded={!!expanded[s.id]}
                    onToggle={() => toggle(s.id)}
                    busy={busy[s.id]}
                    onStop={() => stop(s)}
                    onExtend={() => extend(s)}
                  />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Card>
    </>
  );
}

function titleCase(s: string) {
  return s.charAt(0) + s.slice(1).toLowerCase();
}

interface RowProps {
  session: Session;
  now: number;
  maxHours: number;
  expanded: boolean;
  onToggle: () => void;
  busy?: 'stop' | 'extend';
  onStop: () => void;
  onExtend: () => void;
}

export function SessionRow({ session: s, now, maxHours, expanded, onToggle, busy, onStop, onExtend }: RowProps) {
  const detailId = useId();
  const reasonId = useId();
  const ext = extendCheck(s, maxHours, now);
  const stoppable = canStop(s);
  const ended = s.endedAt !== null && !stoppable;
  const ips = s.ipAddresses.map((ip) => ip.address).join(', ');

  const onKeyDown = (e: React.KeyboardEvent) => {
    if (e.target !== e.currentTarget) return;
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      onToggle();
    }
  };
  const stopPropagation = (e: React.SyntheticEvent) => e.stopPropagation();

  return (
    <Fragment>
      <tr
        className={`session-row ${expanded ? 'is-expanded' : ''}`}
        tabIndex={0}
        aria-expanded={expanded}
        aria-controls={detailId}
        aria-label={`Session from ${ips}, ${s.status}. ${expanded ? 'Hide' : 'Show'} resource details`}
        onClick={onToggle}
        onKeyDown={onKeyDown}
        data-session-id={s.id}
        data-status={s.status}
      >
        <td className="col-toggle">
          <ChevronIcon className={`chevron ${expanded ? 'chevron--open' : ''}`} />
        </td>
        <td data-label="IP Addresses">
          <ul className="ip-list">
            {s.ipAddresses.map((ip) => (
              <li key={ip.address}>
                <IpVersionBadge version={ip.version} />
                <span className="mono">{ip.address}</span>
              </li>
            ))}
          </ul>
        </td>
        <td data-label="Status">
          <SessionStatusBadge status={s.status} />
          {s.stoppedBy && <span className="stopped-by">Stopped by {s.stoppedBy.email}</span>}
        </td>
        <td data-label="Resources" className="num">
          {s.resourceCount}
        </td>
        <td data-label="Expires">
          {ended ? (
            <div className="when">
              <span>Ended {formatRelative(s.endedAt!, now)}</span>
              <time dateTime={s.endedAt!} className="when__exact">
                {formatDateTime(s.endedAt!)}
              </time>
            </div>
          ) : (
            <div className="when">
              <span>{formatRelative(s.expiresAt, now)}</span>
              <time dateTime={s.expiresAt} className="when__exact">
                {formatDateTime(s.expiresAt)}
              </time>
            </div>
          )}
        </td>
        <td data-label="Actions" className="col-actions" onClick={stopPropagation} onKeyDown={stopPropagation}>
          <div className="row-actions">
            <button
              type="button"
              className="btn btn--icon btn--stop"
              onClick={onStop}
              disabled={!stoppable || busy !== undefined}
              aria-label="Stop session"
              title={stoppable ? 'Stop session' : `Only active, pending or partial sessions can be stopped (this one is ${s.status}).`}
            >
              {busy === 'stop' ? <Spinner /> : <StopIcon />}
            </button>
            <span className="extend-wrap" title={ext.allowed ? `Extend by ${EXTEND_HOURS} hours` : ext.reason}>
              <button
                type="button"
                className="btn btn--secondary btn--sm"
                onClick={onExtend}
                disabled={!ext.allowed || busy !== undefined}
                aria-label={`Extend session by ${EXTEND_HOURS} hours`}
                aria-describedby={ext.allowed ? undefined : reasonId}
                title={ext.allowed ? `Extend by ${EXTEND_HOURS} hours` : ext.reason}
              >
                {busy === 'extend' ? <Spinner /> : null}+{EXTEND_HOURS}h
              </button>
            </span>
            {!ext.allowed && (
              <span id={reasonId} className="sr-only" data-testid="extend-reason">
                {ext.reason}
              </span>
            )}
          </div>
        </td>
      </tr>
      <tr id={detailId} className="detail-row" hidden={!expanded}>
        <td colSpan={6}>
          {expanded && <ResourceTable session={s} />}
        </td>
      </tr>
    </Fragment>
  );
}

function ResourceTable({ session }: { session: Session }) {
  if (session.resources.length === 0) {
    return <p className="muted detail-empty">This session has no resource entries.</p>;
  }
  return (
    <div className="detail">
      <table className="table table--inner" aria-label="Resources in this session">
        <thead>
          <tr>
            <th scope="col">Resource</th>
            <th scope="col">IP</th>
            <th scope="col">Status</th>
            <th scope="col">Error</th>
          </tr>
        </thead>
        <tbody>
          {session.resources.map((r) => (
            <tr key={`${r.resourceId}-${r.ip}`}>
              <td data-label="Resource" className="strong">
                {r.resourceName}
              </td>
              <td data-label="IP">
                <IpVersionBadge version={r.ip.includes(':') ? 'v6' : 'v4'} /> <span className="mono">{r.ip}</span>
                {r.cidr && !r.cidr.startsWith(`${r.ip}/`) && <span className="muted mono"> (opens {r.cidr})</span>}
              </td>
              <td data-label="Status">
                <EntryStatusBadge status={r.status} />
              </td>
              <td data-label="Error" className={r.error ? 'error-text' : 'muted'}>
                {r.error ?? '—'}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
