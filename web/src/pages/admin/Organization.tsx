import { useEffect, useState } from 'react';
import { errorMessage, fieldErrors, type Api } from '../../api/client';
import { TIERS, type Organization, type Tier } from '../../api/types';
import { Alert, Card, Field, Loading, OtherFieldErrors, PageHeader, Spinner } from '../../components/ui';
import { useLoad } from '../../lib/useLoad';
import { hasErrors, type Errors } from '../../lib/validation';

export const TIER_INFO: Record<Tier, string> = {
  FREE: 'Sessions of 1, 2 or 4 h · 1 concurrent session per user',
  STARTER: 'Sessions up to 24 h · 3 concurrent sessions per user',
  TEAM: 'Sessions up to 24 h · unlimited concurrent sessions',
  BUSINESS: 'Sessions up to 24 h · unlimited concurrent sessions',
};

const label = (t: Tier) => t.charAt(0) + t.slice(1).toLowerCase();

export function OrganizationPage({ api, onSaved }: { api: Api; onSaved?: (o: Organization) => void }) {
  const org = useLoad(() => api.getOrganization(), [api]);
  const [name, setName] = useState('');
  const [tier, setTier] = useState<Tier>('FREE');
  const [errors, setErrors] = useState<Errors>({});
  const [message, setMessage] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);
  const [saving, setSaving] = useState(false);

  useEffect(() => {
    if (org.data) {
      setName(org.data.name);
      setTier(org.data.tier);
    }
  }, [org.data]);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setMessage(null);
    const errs: Errors = {};
    if (!name.trim()) errs.name = 'Organization name is required';
    setErrors(errs);
    if (hasErrors(errs)) return;
    setSaving(true);
    try {
      const saved = await api.putOrganization({ name: name.trim(), tier });
      org.setData(saved);
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
      <PageHeader title="Organization" description="Your organization's name and plan. The plan sets session lengths and how many sessions a user may run at once." />
      {message && (
        <Alert kind={message.kind} onDismiss={() => setMessage(null)}>
          {message.text}
          {message.kind === 'error' && <OtherFieldErrors errors={errors} shown={['name', 'tier']} />}
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
            <fieldset className={`fieldset ${errors.tier ? 'field--error' : ''}`}>
              <legend>Plan</legend>
              {errors.tier && <p className="field__error">{errors.tier}</p>}
              <div className="plans">
                {TIERS.map((t) => (
                  <label key={t} className={`plan ${tier === t ? 'is-selected' : ''}`}>
                    <input type="radio" name="tier" value={t} checked={tier === t} onChange={() => setTier(t)} />
                    <span className="plan__name">{label(t)}</span>
                    <span className="plan__info">{TIER_INFO[t]}</span>
                  </label>
                ))}
              </div>
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
