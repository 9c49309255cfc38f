import { useState } from 'react';
import { errorMessage, fieldErrors, type Api } from '../../api/client';
import { TIERS, type Organization, type Tier } from '../../api/types';
import { Alert, Card, Field, Loading, OtherFieldErrors, PageHeader, Spinner } from '../../components/ui';
import { useLoad } from '../../lib/queries';
import { hasErrors, type Errors } from '../../lib/validation';

export const TIER_INFO: Record<Tier, string> = {
  FREE: 'Sessions of 1, 2 or 4 h · 1 concurrent session per user',
  STARTER: 'Sessions up to 24 h · 3 concurrent sessions per user',
  TEAM: 'Sessions up to 24 h · unlimited concurrent sessions',
  BUSINESS: 'Sessions up to 24 h · unlimited concurrent sessions',
};

const label = (t: Tier) => t.charAt(0) + t.slice(1).toLowerCase();

export function OrganizationPage({ api, onSaved }: { api: Api; onSaved?: (o: Organization) => void }) {
  const org = useLoad(['organization'], () => api.getOrganization());
  // The saved name until the person edits it.
  const [edited, setName] = useState<string | null>(null);
  const name = edited ?? org.data?.name ?? '';
  const [editedPrefix, setPrefix] = useState<number | null>(null);
  const savedPrefix = org.data?.ipv6Prefix ?? 128;
  const prefix = editedPrefix ?? savedPrefix;
  const [errors, setErrors] = useState<Errors>({});
  const [message, setMessage] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);
  const [saving, setSaving] = useState(false);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setMessage(null);
    const errs: Errors = {};
    if (!name.trim()) errs.name = 'Organization name is required';
    setErrors(errs);
    if (hasErrors(errs)) return;
    setSaving(true);
    try {
      const saved = await api.putOrganization(prefix === savedPrefix ? { name: name.trim() } : { name: name.trim(), ipv6Prefix: prefix });
      org.setData(saved);
      setName(null);
      setPrefix(null);
      onSaved?.(saved);
      setMessage({ kind: 'success', text: 'Organization saved.' });
    } catch (err) {
      setErrors(fieldErrors(err));
      setMessage({ kind: 'error', text: errorMessage(err) });
    } finally {
      setSaving(false);
    }
  }

  return (
    <>
      <PageHeader title="Organization" description="Your organization's name and plan. The plan sets session lengths and how many sessions a user may run at once; the operator of this EntryGuard deployment changes it." />
      {message && (
        <Alert kind={message.kind} onDismiss={() => setMessage(null)}>
          {message.text}
          {message.kind === 'error' && <OtherFieldErrors errors={errors} shown={['name', 'ipv6Prefix']} />}
        </Alert>
      )}
      <Card title="Settings">
        {org.error && <Alert>{org.error}</Alert>}
        {!org.data ? (
          org.loading && <Loading />
        ) : (
          <form className="form form--narrow" onSubmit={submit} noValidate aria-label="Organization settings">
            <Field label="Organization name" error={errors.name}>
              {(p) => <input {...p} className="input" value={name} onChange={(e) => setName(e.target.value)} />}
            </Field>
            <Field label="IPv6 rules open" error={errors.ipv6Prefix}>
              {(p) => (
                <select {...p} className="input select" value={prefix} onChange={(e) => setPrefix(Number(e.target.value))}>
                  <option value={128}>The address only (/128)</option>
                  <option value={64}>Its whole network (/64)</option>
                </select>
              )}
            </Field>
            <p className="field__hint">
              Devices change their IPv6 address often (privacy addresses, commonly daily), which a /128 rule stops matching mid-session; a /64
              covers every address of the person&apos;s network. Applies to sessions started after saving.
            </p>
            <fieldset className="fieldset">
              <legend>Plan</legend>
              <p className="field__hint">To change the plan, contact the operator of this EntryGuard deployment.</p>
              {org.data.status === 'SUSPENDED' && (
                <Alert>This organization is suspended: no session can be started or extended.</Alert>
              )}
              <ul className="plans" aria-label="Plans">
                {TIERS.map((t) => (
                  <li key={t} className={`plan ${org.data!.tier === t ? 'is-selected' : ''}`} aria-current={org.data!.tier === t ? 'true' : undefined}>
                    <span className="plan__name">
                      {label(t)}
                      {org.data!.tier === t && ' · current plan'}
                    </span>
                    <span className="plan__info">{TIER_INFO[t]}</span>
                  </li>
                ))}
              </ul>
            </fieldset>
            <div className="form-actions">
              <button type="submit" className="btn btn--primary" disabled={saving}>
                {saving && <Spinner />} Save
              </button>
            </div>
          </form>
        )}
      </Card>
    </>
  );
}
