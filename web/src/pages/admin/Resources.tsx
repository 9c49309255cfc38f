import { useState } from 'react';
import { errorMessage, fieldErrors, type Api } from '../../api/client';
import type { Credential, PortRange, Resource, ResourceInput } from '../../api/types';
import { CloseIcon, EditIcon, PlusIcon, ServerIcon } from '../../components/Icons';
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
import { useLoad } from '../../lib/queries';
import {
  checkPorts,
  checkRegion,
  checkSecurityGroupId,
  hasErrors,
  required,
  type Errors,
  type PortRow,
} from '../../lib/validation';

interface Form {
  name: string;
  credentialId: string;
  securityGroupId: string;
  region: string;
  ports: PortRow[];
}

export function validateResource(f: Form): { errors: Errors; input: ResourceInput } {
  const errors: Errors = {};
  required(errors, 'name', f.name, 'Name');
  if (!f.credentialId) errors.credentialId = 'Choose a credential';
  checkSecurityGroupId(errors, 'securityGroupId', f.securityGroupId);
  checkRegion(errors, 'region', f.region);
  const ports = checkPorts(errors, f.ports);
  return {
    errors,
    input: {
      name: f.name.trim(),
      credentialId: f.credentialId,
      securityGroupId: f.securityGroupId.trim(),
      region: f.region.trim(),
      ports,
    },
  };
}

export function formatPorts(ports: PortRange[]) {
  return ports.map((p) => `${p.protocol.toUpperCase()} ${p.fromPort === p.toPort ? p.fromPort : `${p.fromPort}–${p.toPort}`}`);
}

export function ResourcesPage({ api }: { api: Api }) {
  const resources = useLoad(['resources'], () => api.listResources());
  const creds = useLoad(['credentials'], () => api.listCredentials());
  const [editing, setEditing] = useState<Resource | 'new' | null>(null);
  const [message, setMessage] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);

  const credName = (id: string) => creds.data?.find((c) => c.id === id)?.name ?? '—';

  async function remove(r: Resource) {
    setMessage(null);
    try {
      await api.deleteResource(r.id);
      resources.setData((list) => (list ?? []).filter((x) => x.id !== r.id));
      setMessage({ kind: 'success', text: `Deleted "${r.name}".` });
    } catch (e) {
      setMessage({ kind: 'error', text: errorMessage(e) });
    }
  }

  return (
    <>
      <PageHeader
        title="Resources"
        description="Security groups EntryGuard opens for users during their sessions."
        actions={
          editing === null && (
            <button type="button" className="btn btn--primary" onClick={() => setEditing('new')}>
              <PlusIcon /> Add resource
            </button>
          )
        }
      />
      {editing !== null && (
        <ResourceForm
          key={editing === 'new' ? 'new' : editing.id}
          api={api}
          credentials={creds.data ?? []}
          resource={editing === 'new' ? null : editing}
          onCancel={() => setEditing(null)}
          onSaved={(r, created) => {
            resources.setData((list) => (created ? [...(list ?? []), r] : (list ?? []).map((x) => (x.id === r.id ? r : x))));
            setEditing(null);
            setMessage({ kind: 'success', text: created ? `Added "${r.name}".` : `Saved "${r.name}".` });
          }}
        />
      )}
      {message && (
        <Alert kind={message.kind} onDismiss={() => setMessage(null)}>
          {message.text}
        </Alert>
      )}
      <Card title="All resources">
        {resources.error && <Alert>{resources.error}</Alert>}
        {resources.data === null ? (
          resources.loading && <Loading />
        ) : resources.data.length === 0 ? (
          <EmptyState title="No resources yet" icon={<ServerIcon size={28} />}>
            Add a security group, then give users access to it through a role.
          </EmptyState>
        ) : (
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Security group</th>
                  <th scope="col">Region</th>
                  <th scope="col">Ports</th>
                  <th scope="col">Credential</th>
                  <th scope="col" className="col-actions">
                    Actions
                  </th>
                </tr>
              </thead>
              <tbody>
                {resources.data.map((r) => (
                  <tr key={r.id}>
                    <td data-label="Name" className="strong">
                      {r.name}
                    </td>
                    <td data-label="Security group" className="mono">
                      {r.securityGroupId}
                    </td>
                    <td data-label="Region" className="mono">
                      {r.region}
                    </td>
                    <td data-label="Ports">
                      <span className="tags">
                        {formatPorts(r.ports).map((p) => (
                          <span key={p} className="tag mono">
                            {p}
                          </span>
                        ))}
                      </span>
                    </td>
                    <td data-label="Credential">{credName(r.credentialId)}</td>
                    <td data-label="Actions" className="col-actions">
                      <div className="row-actions">
                        <button
                          type="button"
                          className="btn btn--ghost btn--sm"
                          onClick={() => setEditing(r)}
                          aria-label={`Edit ${r.name}`}
                        >
                          <EditIcon size={14} /> Edit
                        </button>
                        <ConfirmDelete label={r.name} onConfirm={() => void remove(r)} />
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

function toRows(ports: PortRange[]): PortRow[] {
  return ports.map((p) => ({ protocol: p.protocol, fromPort: String(p.fromPort), toPort: String(p.toPort) }));
}

export function ResourceForm({
  api,
  credentials,
  resource,
  onSaved,
  onCancel,
}: {
  api: Api;
  credentials: Credential[];
  resource: Resource | null;
  onSaved: (r: Resource, created: boolean) => void;
  onCancel: () => void;
}) {
  const [form, setForm] = useState<Form>(() =>
    resource
      ? {
          name: resource.name,
          credentialId: resource.credentialId,
          securityGroupId: resource.securityGroupId,
          region: resource.region,
          ports: toRows(resource.ports),
        }
      : {
          name: '',
          credentialId: credentials.length === 1 ? credentials[0].id : '',
          securityGroupId: '',
          region: credentials.length === 1 ? credentials[0].region : '',
          ports: [{ protocol: 'tcp', fromPort: '22', toPort: '22' }],
        },
  );
  const [errors, setErrors] = useState<Errors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const set = <K extends keyof Form>(k: K, v: Form[K]) => setForm((f) => ({ ...f, [k]: v }));
  const setPort = (i: number, patch: Partial<PortRow>) =>
    setForm((f) => ({ ...f, ports: f.ports.map((p, j) => (j === i ? { ...p, ...patch } : p)) }));

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setFormError(null);
    const { errors: errs, input } = validateResource(form);
    setErrors(errs);
    if (hasErrors(errs)) return;
    setSaving(true);
    try {
      const saved = resource ? await api.updateResource(resource.id, input) : await api.createResource(input);
      onSaved(saved, !resource);
    } catch (err) {
      setErrors(fieldErrors(err));
      setFormError(errorMessage(err));
    } finally {
      setSaving(false);
    }
  }

  const shown = ['name', 'credentialId', 'securityGroupId', 'region', 'ports', 'ports[]'];
  form.ports.forEach((_, i) => shown.push(`ports[${i}].fromPort`, `ports[${i}].toPort`, `ports[${i}].protocol`, `ports[${i}]`));

  return (
    <Card title={resource ? `Edit ${resource.name}` : 'Add resource'}>
      <form className="form" onSubmit={submit} noValidate aria-label={resource ? 'Edit resource' : 'Add resource'}>
        {formError && (
          <Alert>
            {formError}
            <OtherFieldErrors errors={errors} shown={shown} />
          </Alert>
        )}
        <div className="form-grid form-grid--4">
          <Field label="Name" error={errors.name}>
            {(p) => <input {...p} className="input" value={form.name} onChange={(e) => set('name', e.target.value)} placeholder="Bastion host" />}
          </Field>
          <Field label="Credential" error={errors.credentialId}>
            {(p) => (
              <select
                {...p}
                className="input select"
                value={form.credentialId}
                onChange={(e) => {
                  const c = credentials.find((x) => x.id === e.target.value);
                  setForm((f) => ({ ...f, credentialId: e.target.value, region: f.region || c?.region || '' }));
                }}
              >
                <option value="">Choose a credential…</option>
                {credentials.map((c) => (
                  <option key={c.id} value={c.id}>
                    {c.name} ({c.region})
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Security group ID" error={errors.securityGroupId}>
            {(p) => (
              <input {...p} className="input mono" value={form.securityGroupId} onChange={(e) => set('securityGroupId', e.target.value)} placeholder="sg-0123456789abcdef0" />
            )}
          </Field>
          <Field label="Region" error={errors.region}>
            {(p) => <input {...p} className="input mono" value={form.region} onChange={(e) => set('region', e.target.value)} placeholder="eu-west-1" />}
          </Field>
        </div>

        <fieldset className="fieldset">
          <legend>Ports</legend>
          {errors.ports && <p className="field__error">{errors.ports}</p>}
          <div className="ports">
            {form.ports.map((row, i) => (
              <div className="port-row" key={i} role="group" aria-label={`Port range ${i + 1}`}>
                <Field label="Protocol" error={errors[`ports[${i}].protocol`]}>
                  {(p) => (
                    <select {...p} className="input select" value={row.protocol} onChange={(e) => setPort(i, { protocol: e.target.value as 'tcp' | 'udp' })}>
                      <option value="tcp">TCP</option>
                      <option value="udp">UDP</option>
                    </select>
                  )}
                </Field>
                <Field label="From port" error={errors[`ports[${i}].fromPort`] ?? errors[`ports[${i}]`]}>
                  {(p) => (
                    <input {...p} className="input mono" inputMode="numeric" value={row.fromPort} onChange={(e) => setPort(i, { fromPort: e.target.value })} />
                  )}
                </Field>
                <Field label="To port" error={errors[`ports[${i}].toPort`]}>
                  {(p) => (
                    <input {...p} className="input mono" inputMode="numeric" value={row.toPort} onChange={(e) => setPort(i, { toPort: e.target.value })} />
                  )}
                </Field>
                <button
                  type="button"
                  className="btn btn--icon btn--ghost port-row__remove"
                  onClick={() => set('ports', form.ports.filter((_, j) => j !== i))}
                  aria-label={`Remove port range ${i + 1}`}
                  title="Remove port range"
                >
                  <CloseIcon size={16} />
                </button>
              </div>
            ))}
          </div>
          <button
            type="button"
            className="btn btn--ghost btn--sm"
            onClick={() => set('ports', [...form.ports, { protocol: 'tcp', fromPort: '', toPort: '' }])}
          >
            <PlusIcon size={14} /> Add port range
          </button>
        </fieldset>

        <div className="form-actions">
          <button type="submit" className="btn btn--primary" disabled={saving}>
            {saving && <Spinner />} {resource ? 'Save changes' : 'Add resource'}
          </button>
          <button type="button" className="btn btn--ghost" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </Card>
  );
}
