import { useState } from 'react';
import { errorMessage, fieldErrors, type Api } from '../../api/client';
import type { Credential, CredentialInput, Provider } from '../../api/types';
import { KeyIcon, PlusIcon } from '../../components/Icons';
import { CredentialStatusBadge } from '../../components/StatusBadge';
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
import { ACCESS_KEY_RE, checkRegion, hasErrors, required, ROLE_ARN_RE, type Errors } from '../../lib/validation';

type AuthMethod = 'role' | 'keys';

interface Form {
  name: string;
  provider: Provider;
  region: string;
  method: AuthMethod;
  accessKeyId: string;
  secretAccessKey: string;
  roleArn: string;
  externalId: string;
}

const EMPTY: Form = {
  name: '',
  provider: 'aws',
  region: '',
  method: 'role',
  accessKeyId: '',
  secretAccessKey: '',
  roleArn: '',
  externalId: '',
};

export function validateCredential(f: Form): { errors: Errors; input: CredentialInput } {
  const errors: Errors = {};
  required(errors, 'name', f.name, 'Name');
  checkRegion(errors, 'region', f.region);
  const input: CredentialInput = { name: f.name.trim(), provider: f.provider, region: f.region.trim() };
  if (f.provider === 'aws') {
    if (f.method === 'role') {
      const arn = f.roleArn.trim();
      if (!arn) errors.roleArn = 'Role ARN is required';
      else if (!ROLE_ARN_RE.test(arn)) errors.roleArn = 'Use a role ARN like arn:aws:iam::123456789012:role/EntryGuard';
      input.roleArn = arn;
      if (f.externalId.trim()) input.externalId = f.externalId.trim();
    } else {
      const key = f.accessKeyId.trim();
      if (!key) errors.accessKeyId = 'Access key ID is required';
      else if (!ACCESS_KEY_RE.test(key)) errors.accessKeyId = 'Use an access key ID like AKIAIOSFODNN7EXAMPLE';
      if (!f.secretAccessKey) errors.secretAccessKey = 'Secret access key is required';
      input.accessKeyId = key;
      input.secretAccessKey = f.secretAccessKey;
    }
  }
  return { errors, input };
}

const SHOWN = ['name', 'provider', 'region', 'roleArn', 'externalId', 'accessKeyId', 'secretAccessKey'];

export function CredentialsPage({ api }: { api: Api }) {
  const creds = useLoad(['credentials'], () => api.listCredentials());
  const [showForm, setShowForm] = useState(false);
  const [message, setMessage] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);
  const [busy, setBusy] = useState<Record<string, boolean>>({});

  async function validate(c: Credential) {
    setMessage(null);
    setBusy((b) => ({ ...b, [c.id]: true }));
    try {
      const updated = await api.validateCredential(c.id);
      if (updated && updated.id) creds.setData((list) => (list ?? []).map((x) => (x.id === updated.id ? updated : x)));
      else await creds.reload();
      if (updated?.status === 'INVALID') {
        const why = updated.statusMessage ? `: ${updated.statusMessage}` : '.';
        setMessage({ kind: 'error', text: `"${c.name}" was rejected by the cloud provider${why}` });
      } else if (updated?.status === 'VALID') {
        const account = updated.accountId ? ` (account ${updated.accountId})` : '';
        setMessage({ kind: 'success', text: `"${c.name}" is valid${account}.` });
      } else {
        setMessage({ kind: 'success', text: `"${c.name}" was checked with the cloud provider.` });
      }
    } catch (e) {
      setMessage({ kind: 'error', text: `Could not validate "${c.name}": ${errorMessage(e)}` });
    } finally {
      setBusy((b) => ({ ...b, [c.id]: false }));
    }
  }

  async function remove(c: Credential) {
    setMessage(null);
    try {
      await api.deleteCredential(c.id);
      creds.setData((list) => (list ?? []).filter((x) => x.id !== c.id));
      setMessage({ kind: 'success', text: `Deleted "${c.name}".` });
    } catch (e) {
      setMessage({ kind: 'error', text: errorMessage(e) });
    }
  }

  return (
    <>
      <PageHeader
        title="Credentials"
        description="Cloud credentials EntryGuard uses to change security group rules."
        actions={
          !showForm && (
            <button type="button" className="btn btn--primary" onClick={() => setShowForm(true)}>
              <PlusIcon /> Add credential
            </button>
          )
        }
      />
      <div className="notice notice--info">
        <KeyIcon />
        <div>
          <strong>Role-based credentials are recommended.</strong> EntryGuard assumes an IAM role in your account with an
          external ID, so no long-lived secret is stored: it works with short-lived credentials only. You can revoke
          EntryGuard's access at any time by deleting the role or changing its trust policy, and the external ID
          (generated for your organization unless you give one) keeps anyone else from getting EntryGuard to use your
          role on their behalf. Use access keys only where a role is not possible; their secret is stored encrypted and
          never shown again.
        </div>
      </div>

      {showForm && (
        <CredentialForm
          api={api}
          onCancel={() => setShowForm(false)}
          onCreated={(c) => {
            creds.setData((list) => [...(list ?? []), c]);
            setShowForm(false);
            setMessage({ kind: 'success', text: `Added "${c.name}". Click Validate to check it.` });
          }}
        />
      )}

      {message && (
        <Alert kind={message.kind} onDismiss={() => setMessage(null)}>
          {message.text}
        </Alert>
      )}

      <Card title="All credentials">
        {creds.error && <Alert>{creds.error}</Alert>}
        {creds.data === null ? (
          creds.loading && <Loading />
        ) : creds.data.length === 0 ? (
          <EmptyState title="No credentials yet" icon={<KeyIcon size={28} />}>
            Add a credential so EntryGuard can manage your security groups.
          </EmptyState>
        ) : (
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Status</th>
                  <th scope="col">Provider</th>
                  <th scope="col">Region</th>
                  <th scope="col">Authentication</th>
                  <th scope="col">Last checked</th>
                  <th scope="col" className="col-actions">
                    Actions
                  </th>
                </tr>
              </thead>
              <tbody>
                {creds.data.map((c) => (
                  <tr key={c.id}>
                    <td data-label="Name" className="strong">
                      {c.name}
                      {c.accountId && <div className="muted small">Account {c.accountId}</div>}
                    </td>
                    <td data-label="Status">
                      <CredentialStatusBadge status={c.status} />
                      {c.status === 'INVALID' && c.statusMessage && <div className="muted small">{c.statusMessage}</div>}
                    </td>
                    <td data-label="Provider">{c.provider === 'aws' ? 'AWS' : 'Simulated'}</td>
                    <td data-label="Region" className="mono">
                      {c.region}
                    </td>
                    <td data-label="Authentication" className="small">
                      {c.roleArn ? (
                        <>
                          <span className="tag">Role</span> <span className="mono break">{c.roleArn}</span>
                        </>
                      ) : c.accessKeyId ? (
                        <>
                          <span className="tag">Access key</span> <span className="mono">{c.accessKeyId}</span>
                          {c.hasSecret && <span className="muted"> · secret stored</span>}
                        </>
                      ) : (
                        <span className="muted">None needed</span>
                      )}
                    </td>
                    <td data-label="Last checked" className="small">
                      {c.checkedAt ? formatDateTime(c.checkedAt) : <span className="muted">Never</span>}
                    </td>
                    <td data-label="Actions" className="col-actions">
                      <div className="row-actions">
                        <button
                          type="button"
                          className="btn btn--secondary btn--sm"
                          onClick={() => void validate(c)}
                          disabled={busy[c.id]}
                          aria-label={`Validate ${c.name}`}
                        >
                          {busy[c.id] && <Spinner />} Validate
                        </button>
                        <ConfirmDelete label={c.name} onConfirm={() => void remove(c)} />
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Card>
    </>
  );
}

export function CredentialForm({
  api,
  onCreated,
  onCancel,
}: {
  api: Api;
  onCreated: (c: Credential) => void;
  onCancel: () => void;
}) {
  const [form, setForm] = useState<Form>(EMPTY);
  const [errors, setErrors] = useState<Errors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const set = <K extends keyof Form>(k: K, v: Form[K]) => setForm((f) => ({ ...f, [k]: v }));

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setFormError(null);
    const { errors: errs, input } = validateCredential(form);
    setErrors(errs);
    if (hasErrors(errs)) return;
    setSaving(true);
    try {
      const created = await api.createCredential(input);
      // The secret is never kept or shown after creation.
      setForm(EMPTY);
      onCreated(created);
    } catch (err) {
      setErrors(fieldErrors(err));
      setFormError(errorMessage(err));
      setForm((f) => ({ ...f, secretAccessKey: '' }));
    } finally {
      setSaving(false);
    }
  }

  return (
    <Card title="Add credential">
      <form className="form" onSubmit={submit} noValidate>
        {formError && (
          <Alert>
            {formError}
            <OtherFieldErrors errors={errors} shown={SHOWN} />
          </Alert>
        )}
        <div className="form-grid">
          <Field label="Name" error={errors.name}>
            {(p) => <input {...p} className="input" value={form.name} onChange={(e) => set('name', e.target.value)} placeholder="Production account" />}
          </Field>
          <Field label="Provider" error={errors.provider}>
            {(p) => (
              <select {...p} className="input select" value={form.provider} onChange={(e) => set('provider', e.target.value as Provider)}>
                <option value="aws">AWS</option>
                <option value="simulated">Simulated (local testing)</option>
              </select>
            )}
          </Field>
          <Field label="Region" error={errors.region} hint="The AWS region of the security groups, e.g. eu-west-1">
            {(p) => <input {...p} className="input mono" value={form.region} onChange={(e) => set('region', e.target.value)} placeholder="eu-west-1" />}
          </Field>
        </div>

        {form.provider === 'aws' && (
          <fieldset className="fieldset">
            <legend>Authentication</legend>
            <div className="radio-row">
              <label className="radio">
                <input type="radio" name="method" checked={form.method === 'role'} onChange={() => set('method', 'role')} />
                IAM role <span className="tag tag--ok">Recommended</span>
              </label>
              <label className="radio">
                <input type="radio" name="method" checked={form.method === 'keys'} onChange={() => set('method', 'keys')} />
                Access key
              </label>
            </div>
            {form.method === 'role' ? (
              <div className="form-grid">
                <Field label="Role ARN" error={errors.roleArn}>
                  {(p) => (
                    <input {...p} className="input mono" value={form.roleArn} onChange={(e) => set('roleArn', e.target.value)} placeholder="arn:aws:iam::123456789012:role/EntryGuard" />
                  )}
                </Field>
                <Field label="External ID" error={errors.externalId} optional hint="Set the same value in the role's trust policy.">
                  {(p) => <input {...p} className="input mono" value={form.externalId} onChange={(e) => set('externalId', e.target.value)} />}
                </Field>
              </div>
            ) : (
              <div className="form-grid">
                <Field label="Access key ID" error={errors.accessKeyId}>
                  {(p) => (
                    <input {...p} className="input mono" autoComplete="off" value={form.accessKeyId} onChange={(e) => set('accessKeyId', e.target.value)} placeholder="AKIA…" />
                  )}
                </Field>
                <Field label="Secret access key" error={errors.secretAccessKey} hint="It is never shown again after you save.">
                  {(p) => (
                    <input {...p} className="input mono" type="password" autoComplete="new-password" value={form.secretAccessKey} onChange={(e) => set('secretAccessKey', e.target.value)} />
                  )}
                </Field>
              </div>
            )}
          </fieldset>
        )}

        <div className="form-actions">
          <button type="submit" className="btn btn--primary" disabled={saving}>
            {saving && <Spinner />} Add credential
          </button>
          <button type="button" className="btn btn--ghost" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </Card>
  );
}
