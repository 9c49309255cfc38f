import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { errorMessage, type Api } from '../../api/client';
import { CheckIcon, CopyIcon, DocIcon } from '../../components/Icons';
import { Alert, Card, EmptyState, Loading, PageHeader } from '../../components/ui';
import { copyText } from '../../lib/clipboard';
import { useLoad } from '../../lib/queries';

export function JsonBlock({ title, value, description }: { title: string; value: unknown; description?: string }) {
  const text = JSON.stringify(value, null, 2);
  const [state, setState] = useState<'idle' | 'copied' | string>('idle');
  return (
    <Card
      title={title}
      actions={
        <button
          type="button"
          className="btn btn--secondary btn--sm"
          onClick={() =>
            copyText(text).then(
              () => setState('copied'),
              (e) => setState(errorMessage(e)),
            )
          }
        >
          {state === 'copied' ? <CheckIcon size={14} /> : <CopyIcon size={14} />}
          {state === 'copied' ? 'Copied' : 'Copy JSON'}
        </button>
      }
    >
      {description && <p className="muted card__desc">{description}</p>}
      {state !== 'idle' && state !== 'copied' && <Alert>{state}</Alert>}
      <pre className="code" tabIndex={0} aria-label={title}>
        <code>{text}</code>
      </pre>
    </Card>
  );
}

export function IamPolicyPage({ api }: { api: Api }) {
  const creds = useLoad(['credentials'], () => api.listCredentials());
  const [chosen, setCredentialId] = useState('');
  // The first credential until the person picks another.
  const credentialId = chosen || creds.data?.[0]?.id || '';
  const policyQuery = useQuery({
    queryKey: ['iam-policy', credentialId],
    queryFn: () => api.iamPolicy(credentialId),
    enabled: credentialId !== '',
  });
  const policy = policyQuery.data ?? null;
  const error = policyQuery.error ? errorMessage(policyQuery.error) : null;
  const loading = policyQuery.isFetching;

  return (
    <>
      <PageHeader
        title="IAM Policy"
        description="The least-privilege IAM policy EntryGuard needs for a credential: attach it to the IAM role or user in AWS."
      />
      <Card>
        {creds.error && <Alert>{creds.error}</Alert>}
        {creds.data === null ? (
          creds.loading && <Loading />
        ) : creds.data.length === 0 ? (
          <EmptyState title="No credentials yet" icon={<DocIcon size={28} />}>
            Add a credential on the Credentials page to generate its policy.
          </EmptyState>
        ) : (
          <div className="field form--narrow">
            <label htmlFor="policy-credential" className="field__label">
              Credential
            </label>
            <select id="policy-credential" className="input select" value={credentialId} onChange={(e) => setCredentialId(e.target.value)}>
              {creds.data.map((c) => (
                <option key={c.id} value={c.id}>
                  {c.name} ({c.region})
                </option>
              ))}
            </select>
          </div>
        )}
      </Card>
      {error && <Alert>{error}</Alert>}
      {loading && !policy && <Loading label="Generating policy…" />}
      {policy && (
        <>
          <JsonBlock
            title="Permissions policy"
            value={policy.policy}
            description="Covers exactly the security groups of the resources that use this credential."
          />
          {policy.trustPolicy != null && (
            <JsonBlock
              title="Trust policy"
              value={policy.trustPolicy}
              description="Set this as the role's trust relationship so EntryGuard can assume it with the external ID."
            />
          )}
        </>
      )}
    </>
  );
}
