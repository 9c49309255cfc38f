import { useEffect, useState } from 'react';
import { errorMessage, fieldErrors, type Api } from '../../api/client';
import { CheckboxList } from '../../components/CheckboxList';
import { PlusIcon, RefreshIcon } from '../../components/Icons';
import { SecretReveal } from '../../components/SecretReveal';
import {
  Alert,
  Card,
  ConfirmDelete,
  EmptyState,
  Field,
  Loading,
  OtherFieldErrors,
  PageHeader,
  Spinner,
} from '../../components/ui';
import { formatDateTime } from '../../lib/time';
import { useLoad } from '../../lib/queries';
import { hasErrors, type Errors } from '../../lib/validation';

// The shapes of /api/admin/webhooks (docs/api.md, docs/webhooks.md). Kept with the page: nothing
// else in the web app reads them.
export type WebhookFormat = 'JSON' | 'SLACK';
export type Webhook = {
  id: string;
  url: string;
  events: string[];
  format: WebhookFormat;
  enabled: boolean;
  createdAt: string;
};
export type CreatedWebhook = { webhook: Webhook; secret: string };
export type WebhookDelivery = {
  id: string;
  endpointId: string;
  event: string;
  facts: { message: string; sessionId?: string; userEmail?: string; expiresAt?: string };
  status: 'PENDING' | 'DELIVERED' | 'FAILED';
  attempts: number;
  responseCode: number | null;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
  nextAttemptAt: string;
};
export type WebhookInput = { url: string; events: string[]; format: WebhookFormat };

const base = '/api/admin/webhooks';
const one = (id: string) => `${base}/${encodeURIComponent(id)}`;
export const webhooksApi = (api: Api) => ({
  list: () => api.request<Webhook[]>('GET', base),
  create: (input: WebhookInput) => api.request<CreatedWebhook>('POST', base, input),
  update: (id: string, patch: Partial<WebhookInput & { enabled: boolean }>) => api.request<Webhook>('PATCH', one(id), patch),
  remove: (id: string) => api.request<void>('DELETE', one(id)),
  deliveries: (id: string) => api.request<WebhookDelivery[]>('GET', `${one(id)}/deliveries`),
  sendTest: (id: string) => api.request<WebhookDelivery>('POST', `${one(id)}/test`),
});

/** The API's limit (409 CONFLICT beyond it). */
export const MAX_WEBHOOKS = 10;

export const EVENTS: { id: string; label: string; detail: string }[] = [
  { id: 'session.started', label: 'Session started', detail: 'a user started a session' },
  { id: 'session.active', label: 'Session active', detail: 'every rule is in place' },
  { id: 'session.partial', label: 'Session partial', detail: 'some resources could not be opened' },
  { id: 'session.failed', label: 'Session failed', detail: 'nothing could be opened' },
  { id: 'session.expiring-soon', label: 'Expiring soon', detail: '10 minutes before a session ends' },
  { id: 'session.ended', label: 'Session ended', detail: 'stopped or expired' },
  { id: 'rule.failed', label: 'Rule failed', detail: 'a rule could not be applied or removed' },
  { id: 'drift.corrected', label: 'Drift corrected', detail: 'a rule changed outside EntryGuard was fixed' },
  { id: 'system.alert', label: 'System alert', detail: 'dead letters, deleted groups' },
];
const DEFAULT_EVENTS = ['session.failed', 'session.partial', 'rule.failed', 'system.alert'];
const SHOWN = ['url', 'events', 'format'];

/**
 * Mirrors the API's first checks. Plain http is left to the server, which refuses it except
 * under the local runner's development switch (a receiver on 127.0.0.1).
 */
export function validateWebhook(url: string, events: string[]): Errors {
  const errors: Errors = {};
  const u = url.trim();
  if (!u) errors.url = 'URL is required';
  else if (!/^https?:\/\/[^\s/]+/i.test(u)) errors.url = 'Use an https:// URL';
  else if (u.length > 2048) errors.url = 'URL must be at most 2048 characters';
  if (events.length === 0) errors.events = 'Pick at least one event';
  return errors;
}

function StatusTag({ status }: { status: WebhookDelivery['status'] }) {
  const cls = status === 'DELIVERED' ? 'badge--green' : status === 'FAILED' ? 'badge--red' : 'badge--gray';
  return (
    <span className={`badge ${cls}`}>
      <span className="badge__dot" aria-hidden="true" />
      {status}
    </span>
  );
}

export function WebhooksPage({ api }: { api: Api }) {
  const calls = webhooksApi(api);
  const hooks = useLoad(['webhooks'], () => calls.list());
  const [created, setCreated] = useState<CreatedWebhook | null>(null);
  const [message, setMessage] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);
  const [busy, setBusy] = useState<Record<string, boolean>>({});
  const [open, setOpen] = useState<string | null>(null);
  const [logVersion, setLogVersion] = useState(0);

  async function act(h: Webhook, what: string, fn: () => Promise<unknown>, done: string) {
    setMessage(null);
    setBusy((b) => ({ ...b, [h.id]: true }));
    try {
      await fn();
      setMessage({ kind: 'success', text: done });
      await hooks.reload();
    } catch (e) {
      setMessage({ kind: 'error', text: `Could not ${what}: ${errorMessage(e)}` });
    } finally {
      setBusy((b) => ({ ...b, [h.id]: false }));
    }
  }

  const list = hooks.data;
  const atLimit = (list?.length ?? 0) >= MAX_WEBHOOKS;

  return (
    <>
      <PageHeader
        title="Webhooks"
        description="Tell Slack, your SIEM or an incident tool when sessions start, fail or end, and when drift is corrected."
      />
      {created && <NewSecretPanel created={created} onDismiss={() => setCreated(null)} />}
      {message && (
        <Alert kind={message.kind} onDismiss={() => setMessage(null)}>
          {message.text}
        </Alert>
      )}
      <CreateWebhookForm
        api={api}
        atLimit={atLimit}
        onCreated={(c) => {
          setMessage(null);
          setCreated(c);
          void hooks.reload();
        }}
      />
      <Card title="Endpoints" actions={list && list.length > 0 ? <span className="muted small">{list.length} of {MAX_WEBHOOKS}</span> : undefined}>
        {hooks.error && <Alert>{hooks.error}</Alert>}
        {list === null ? (
          hooks.loading && <Loading label="Loading webhook endpoints…" />
        ) : list.length === 0 ? (
          <EmptyState title="No webhook endpoints yet">Add one above; each delivery is signed with its secret.</EmptyState>
        ) : (
          <div className="table-wrap">
            <table className="table" aria-label="Webhook endpoints">
              <thead>
                <tr>
                  <th scope="col">URL</th>
                  <th scope="col">Events</th>
                  <th scope="col">Format</th>
                  <th scope="col">Status</th>
                  <th scope="col" className="col-actions">
                    Actions
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.map((h) => (
                  <tr key={h.id} data-webhook-id={h.id}>
                    <td data-label="URL" className="mono wrap-anywhere">
                      {h.url}
                    </td>
                    <td data-label="Events" className="small">
                      {h.events.join(', ')}
                    </td>
                    <td data-label="Format">{h.format === 'SLACK' ? 'Slack' : 'JSON'}</td>
                    <td data-label="Status">
                      <span className={`badge ${h.enabled ? 'badge--green' : 'badge--gray'}`}>
                        <span className="badge__dot" aria-hidden="true" />
                        {h.enabled ? 'Enabled' : 'Disabled'}
                      </span>
                    </td>
                    <td data-label="Actions" className="col-actions">
                      <div className="row-actions">
                        <button
                          type="button"
                          className="btn btn--secondary btn--sm"
                          disabled={busy[h.id] || !h.enabled}
                          title={h.enabled ? undefined : 'Enable the endpoint to send it a test event'}
                          onClick={() =>
                            void act(h, 'send a test event', async () => {
                              await calls.sendTest(h.id);
                              setOpen(h.id);
                              setLogVersion((v) => v + 1);
                            }, `Test event queued for ${h.url}.`)
                          }
                        >
                          Send test event
                        </button>
                        <button
                          type="button"
                          className="btn btn--secondary btn--sm"
                          disabled={busy[h.id]}
                          onClick={() =>
                            void act(
                              h,
                              h.enabled ? 'disable the endpoint' : 'enable the endpoint',
                              () => calls.update(h.id, { enabled: !h.enabled }),
                              h.enabled ? `Disabled ${h.url}: it gets nothing until enabled.` : `Enabled ${h.url}.`,
                            )
                          }
                        >
                          {h.enabled ? 'Disable' : 'Enable'}
                        </button>
                        <button
                          type="button"
                          className="btn btn--secondary btn--sm"
                          aria-expanded={open === h.id}
                          onClick={() => setOpen((o) => (o === h.id ? null : h.id))}
                        >
                          Delivery log
                        </button>
                        <ConfirmDelete
                          label={h.url}
                          busy={busy[h.id]}
                          onConfirm={() =>
                            void act(h, 'delete the endpoint', async () => {
                              await calls.remove(h.id);
                              if (open === h.id) setOpen(null);
                              if (created?.webhook.id === h.id) setCreated(null);
                            }, `Deleted ${h.url} and its delivery log.`)
                          }
                        />
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Card>
      {open && list?.some((h) => h.id === open) && (
        <DeliveryLog api={api} webhook={list.find((h) => h.id === open)!} version={logVersion} />
      )}
    </>
  );
}

function CreateWebhookForm({ api, atLimit, onCreated }: { api: Api; atLimit: boolean; onCreated: (c: CreatedWebhook) => void }) {
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState<string[]>(DEFAULT_EVENTS);
  const [format, setFormat] = useState<WebhookFormat>('JSON');
  const [errors, setErrors] = useState<Errors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setFormError(null);
    const errs = validateWebhook(url, events);
    setErrors(errs);
    if (hasErrors(errs)) return;
    setSaving(true);
    try {
      const c = await webhooksApi(api).create({ url: url.trim(), events, format });
      setUrl('');
      setEvents(DEFAULT_EVENTS);
      setFormat('JSON');
      onCreated(c);
    } catch (err) {
      setErrors(fieldErrors(err));
      setFormError(errorMessage(err));
    } finally {
      setSaving(false);
    }
  }

  return (
    <Card title="Add an endpoint">
      <form className="form" onSubmit={submit} noValidate aria-label="Add webhook endpoint">
        {formError && (
          <Alert>
            {formError}
            <OtherFieldErrors errors={errors} shown={SHOWN} />
          </Alert>
        )}
        {atLimit && <Alert kind="info">You have {MAX_WEBHOOKS} endpoints, the most allowed. Delete one to add another.</Alert>}
        <div className="form-grid">
          <Field label="URL" error={errors.url} hint="https:// only. Private, loopback and metadata addresses are refused at every delivery.">
            {(p) => (
              <input
                {...p}
                className="input mono"
                value={url}
                autoComplete="off"
                spellCheck={false}
                onChange={(e) => setUrl(e.target.value)}
                placeholder="https://hooks.slack.com/services/…"
              />
            )}
          </Field>
          <Field label="Format" error={errors.format} hint="Slack: an incoming-webhook message with a link to the session.">
            {(p) => (
              <select {...p} className="input select" value={format} onChange={(e) => setFormat(e.target.value as WebhookFormat)}>
                <option value="JSON">JSON (signed event)</option>
                <option value="SLACK">Slack incoming webhook</option>
              </select>
            )}
          </Field>
        </div>
        <CheckboxList legend="Events" items={EVENTS} selected={events} onChange={setEvents} empty="" error={errors.events} />
        <div className="form-actions">
          <button type="submit" className="btn btn--primary" disabled={saving || atLimit}>
            {saving ? <Spinner /> : <PlusIcon />} Add endpoint
          </button>
        </div>
      </form>
    </Card>
  );
}

/** The one-time view of a new endpoint's signing secret. */
function NewSecretPanel({ created, onDismiss }: { created: CreatedWebhook; onDismiss: () => void }) {
  return (
    <SecretReveal
      title="Endpoint added"
      hideLabel="Hide secret"
      warning={
        <>
          <strong>Copy the signing secret now — it will not be shown again.</strong> Your receiver checks{' '}
          <code className="code-inline">X-EntryGuard-Signature</code> with it (HMAC-SHA256 of the timestamp, a dot and the
          body).
        </>
      }
      secretLabel="Signing secret"
      secret={created.secret}
      copiedStatus="Signing secret copied to the clipboard"
      onDismiss={onDismiss}
    />
  );
}

function DeliveryLog({ api, webhook, version }: { api: Api; webhook: Webhook; version: number }) {
  const log = useLoad(['webhooks', webhook.id, 'deliveries', version], () => webhooksApi(api).deliveries(webhook.id));
  // Attempts happen in the background: a pending delivery is looked at again shortly.
  const pending = log.data?.some((d) => d.status === 'PENDING') ?? false;
  const { reload } = log;
  useEffect(() => {
    if (!pending) return;
    const t = setTimeout(() => void reload(), 2000);
    return () => clearTimeout(t);
  }, [pending, reload, log.data]);

  return (
    <Card
      title={`Delivery log · ${webhook.url}`}
      actions={
        <button type="button" className="btn btn--secondary btn--sm" onClick={() => void log.reload()}>
          <RefreshIcon /> Refresh
        </button>
      }
    >
      {log.error && <Alert>{log.error}</Alert>}
      {log.data === null ? (
        log.loading && <Loading label="Loading deliveries…" />
      ) : log.data.length === 0 ? (
        <EmptyState title="Nothing delivered yet">Send a test event to try the endpoint.</EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table" aria-label="Deliveries">
            <thead>
              <tr>
                <th scope="col">Event</th>
                <th scope="col">Status</th>
                <th scope="col">Response</th>
                <th scope="col">Attempts</th>
                <th scope="col">When</th>
              </tr>
            </thead>
            <tbody>
              {log.data.map((d) => (
                <tr key={d.id} data-delivery-id={d.id}>
                  <td data-label="Event">
                    <span className="mono">{d.event}</span>
                    <div className="muted small">{d.facts.message}</div>
                  </td>
                  <td data-label="Status">
                    <StatusTag status={d.status} />
                    {d.status === 'PENDING' && d.attempts > 0 && (
                      <div className="muted small">next try {formatDateTime(d.nextAttemptAt)}</div>
                    )}
                  </td>
                  <td data-label="Response">
                    {d.responseCode !== null ? <span className="mono">HTTP {d.responseCode}</span> : <span className="muted">—</span>}
                    {d.lastError && <div className="muted small wrap-anywhere">{d.lastError}</div>}
                  </td>
                  <td data-label="Attempts">{d.attempts}</td>
                  <td data-label="When">
                    <time dateTime={d.updatedAt}>{formatDateTime(d.updatedAt)}</time>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}
