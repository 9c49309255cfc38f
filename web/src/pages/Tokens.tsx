import { useEffect, useRef, useState } from 'react';
import { errorMessage, fieldErrors, type Api } from '../api/client';
import type { ApiToken, ApiTokenInput, CreatedApiToken } from '../api/types';
import { PlusIcon, TerminalIcon } from '../components/Icons';
import { SecretReveal } from '../components/SecretReveal';
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
} from '../components/ui';
import { DAY, formatDate, formatDateTime, formatRelativeCoarse } from '../lib/time';
import { useLoad } from '../lib/queries';
import { hasErrors, type Errors } from '../lib/validation';

/** The API's limit (docs/api.md, TOKEN_LIMIT_REACHED). */
export const MAX_TOKENS = 50;
const NAME_MAX = 100;
// Relative times ("in 90 days", "5 min ago") are coarse: a tick every 30 s keeps them honest.
const TICK_MS = 30_000;

export type Expiry = '30' | '90' | '365' | 'never';
const EXPIRY_OPTIONS: { value: Expiry; label: string }[] = [
  { value: '30', label: '30 days' },
  { value: '90', label: '90 days' },
  { value: '365', label: '365 days' },
  { value: 'never', label: 'No expiry' },
];
const DEFAULT_EXPIRY: Expiry = '90';
const SHOWN = ['name', 'expiresInDays'];

/** Mirrors the API's rules for a name (trimmed, 1 to 100 characters, no control characters). */
export function validateToken(name: string, expiry: Expiry): { errors: Errors; input: ApiTokenInput } {
  const errors: Errors = {};
  const n = name.trim();
  if (!n) errors.name = 'Name is required';
  else if ([...n].length > NAME_MAX) errors.name = `Name must be at most ${NAME_MAX} characters`;
  // eslint-disable-next-line no-control-regex -- control characters are exactly what it looks for
  else if (/[\u0000-\u001f\u007f-\u009f]/.test(n)) errors.name = 'Name must not contain control characters';
  const input: ApiTokenInput = { name: n };
  if (expiry !== 'never') input.expiresInDays = Number(expiry);
  return { errors, input };
}

function When({ iso, now }: { iso: string; now: number }) {
  return (
    <div className="when">
      <span>{formatRelativeCoarse(iso, now)}</span>
      <time dateTime={iso} className="when__exact">
        {formatDateTime(iso)}
      </time>
    </div>
  );
}

export function TokensPage({ api }: { api: Api }) {
  const tokens = useLoad(['tokens'], () => api.listTokens());
  const [created, setCreated] = useState<CreatedApiToken | null>(null);
  const [message, setMessage] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);
  const [revoking, setRevoking] = useState<Record<string, boolean>>({});
  const [now, setNow] = useState(() => Date.now());
  const nameRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), TICK_MS);
    return () => clearInterval(t);
  }, []);

  async function onCreated(t: CreatedApiToken) {
    setMessage(null);
    setCreated(t);
    setNow(Date.now());
    await tokens.reload();
  }

  function dismiss() {
    setCreated(null);
    nameRef.current?.focus();
  }

  async function revoke(t: ApiToken) {
    setMessage(null);
    setRevoking((b) => ({ ...b, [t.id]: true }));
    try {
      await api.revokeToken(t.id);
      tokens.setData((list) => (list ?? []).filter((x) => x.id !== t.id));
      if (created?.id === t.id) setCreated(null);
      setMessage({ kind: 'success', text: `Revoked "${t.name}". It stopped working immediately.` });
    } catch (e) {
      setMessage({ kind: 'error', text: `Could not revoke "${t.name}": ${errorMessage(e)}` });
      void tokens.reload();
    } finally {
      setRevoking((b) => ({ ...b, [t.id]: false }));
    }
  }

  const list = tokens.data;
  const atLimit = (list?.length ?? 0) >= MAX_TOKENS;

  return (
    <>
      <PageHeader title="API tokens" description="Personal tokens for scripts and the EntryGuard CLI." />
      <div className="notice notice--info">
        <TerminalIcon />
        <div>
          <p>
            <strong>A token acts as you.</strong> Anything that holds it can do what you can do in EntryGuard, such as
            starting sessions that open your resources. Keep it secret like a password — store it in a secret manager,
            never in source code — and revoke tokens you no longer use.
          </p>
          <p className="notice__more">
            Scripts send it in the header <code className="code-inline">Authorization: Bearer egt_…</code>
          </p>
        </div>
      </div>

      {created && <NewTokenPanel token={created} onDismiss={dismiss} />}

      {message && (
        <Alert kind={message.kind} onDismiss={() => setMessage(null)}>
          {message.text}
        </Alert>
      )}

      <CreateTokenForm api={api} now={now} atLimit={atLimit} nameRef={nameRef} onCreated={(t) => void onCreated(t)} />

      <Card
        title="Your tokens"
        actions={
          list && list.length > 0 ? (
            <span className="muted small">
              {list.length} of {MAX_TOKENS}
            </span>
          ) : undefined
        }
      >
        {tokens.error && <Alert>{tokens.error}</Alert>}
        {list === null ? (
          tokens.loading && <Loading label="Loading your tokens…" />
        ) : list.length === 0 ? (
          <EmptyState title="No API tokens yet" icon={<TerminalIcon size={26} />}>
            Create one above to call the EntryGuard API from a script or the CLI.
          </EmptyState>
        ) : (
          <div className="table-wrap">
            <table className="table" aria-label="Your API tokens">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Created</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Last used</th>
                  <th scope="col" className="col-actions">
                    Actions
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.map((t) => {
                  const expired = t.expiresAt !== null && Date.parse(t.expiresAt) <= now;
                  return (
                    <tr key={t.id} data-token-id={t.id}>
                      <td data-label="Name" className="strong wrap-anywhere">
                        <span>
                          {t.name}
                          {created?.id === t.id && <span className="tag tag--ok token-name__tag">New</span>}
                        </span>
                      </td>
                      <td data-label="Created">
                        <When iso={t.createdAt} now={now} />
                      </td>
                      <td data-label="Expires">
                        {t.expiresAt === null ? (
                          <span className="muted">Never</span>
                        ) : expired ? (
                          <div className="when">
                            <span>
                              <span className="badge badge--gray">
                                <span className="badge__dot" aria-hidden="true" />
                                Expired
                              </span>
                            </span>
                            <time dateTime={t.expiresAt} className="when__exact">
                              {formatDateTime(t.expiresAt)}
                            </time>
                          </div>
                        ) : (
                          <When iso={t.expiresAt} now={now} />
                        )}
                      </td>
                      <td data-label="Last used">
                        {t.lastUsedAt === null ? <span className="muted">Never used</span> : <When iso={t.lastUsedAt} now={now} />}
                      </td>
                      <td data-label="Actions" className="col-actions">
                        <div className="row-actions">
                          <ConfirmDelete verb="Revoke" label={t.name} busy={revoking[t.id]} onConfirm={() => void revoke(t)} />
                        </div>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </Card>
    </>
  );
}

function CreateTokenForm({
  api,
  now,
  atLimit,
  nameRef,
  onCreated,
}: {
  api: Api;
  now: number;
  atLimit: boolean;
  nameRef: React.RefObject<HTMLInputElement | null>;
  onCreated: (t: CreatedApiToken) => void;
}) {
  const [name, setName] = useState('');
  const [expiry, setExpiry] = useState<Expiry>(DEFAULT_EXPIRY);
  const [errors, setErrors] = useState<Errors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setFormError(null);
    const { errors: errs, input } = validateToken(name, expiry);
    setErrors(errs);
    if (hasErrors(errs)) {
      nameRef.current?.focus();
      return;
    }
    setSaving(true);
    try {
      const t = await api.createToken(input);
      setName('');
      setExpiry(DEFAULT_EXPIRY);
      onCreated(t);
    } catch (err) {
      setErrors(fieldErrors(err));
      setFormError(errorMessage(err));
    } finally {
      setSaving(false);
    }
  }

  const expiryHint =
    expiry === 'never'
      ? 'The token works until you revoke it. Prefer an expiry where you can.'
      : `Expires on ${formatDate(new Date(now + Number(expiry) * DAY).toISOString())}.`;

  return (
    <Card title="Create a token">
      <form className="form" onSubmit={submit} noValidate aria-label="Create API token">
        {formError && (
          <Alert>
            {formError}
            <OtherFieldErrors errors={errors} shown={SHOWN} />
          </Alert>
        )}
        {atLimit && (
          <Alert kind="info">
            You have {MAX_TOKENS} tokens, the most allowed. Revoke one you no longer use to create another.
          </Alert>
        )}
        <div className="form-grid token-form">
          <Field label="Name" error={errors.name} hint="Where the token is used, so you recognise it later.">
            {(p) => (
              <input
                {...p}
                ref={nameRef}
                className="input"
                value={name}
                autoComplete="off"
                onChange={(e) => setName(e.target.value)}
                placeholder="CI pipeline"
              />
            )}
          </Field>
          <Field label="Expiration" error={errors.expiresInDays} hint={expiryHint}>
            {(p) => (
              <select {...p} className="input select" value={expiry} onChange={(e) => setExpiry(e.target.value as Expiry)}>
                {EXPIRY_OPTIONS.map((o) => (
                  <option key={o.value} value={o.value}>
                    {o.label}
                  </option>
                ))}
              </select>
            )}
          </Field>
        </div>
        <div className="form-actions">
          <button type="submit" className="btn btn--primary" disabled={saving || atLimit}>
            {saving ? <Spinner /> : <PlusIcon />} Create token
          </button>
        </div>
      </form>
    </Card>
  );
}

/** The one-time view of a new token's secret: it is never available again after this. */
function NewTokenPanel({ token, onDismiss }: { token: CreatedApiToken; onDismiss: () => void }) {
  return (
    <SecretReveal
      title={<>Token “{token.name}” created</>}
      hideLabel="Hide token"
      warning={
        <>
          <strong>Copy it now — it will not be shown again.</strong> EntryGuard keeps only a fingerprint of it. If you lose
          it, revoke it and create a new one.
        </>
      }
      secretLabel="New API token"
      secret={token.token}
      copiedStatus="Token copied to the clipboard"
      onDismiss={onDismiss}
    >
      <p className="muted small token-reveal__foot">
        {token.expiresAt ? `Expires ${formatDateTime(token.expiresAt)}.` : 'Never expires.'} Revoke it below when it is
        no longer needed.
      </p>
    </SecretReveal>
  );
}
