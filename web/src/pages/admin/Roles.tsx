import { useState } from 'react';
import { errorMessage, fieldErrors, type Api } from '../../api/client';
import type { Resource, Role, RoleInput, User } from '../../api/types';
import { CheckboxList } from '../../components/CheckboxList';
import { BadgeIcon, EditIcon, PlusIcon } from '../../components/Icons';
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
import { hasErrors, required, type Errors } from '../../lib/validation';

interface Form {
  name: string;
  maxHours: string;
  resourceIds: string[];
  userIds: string[];
}

export function validateRole(f: Form): { errors: Errors; input: RoleInput } {
  const errors: Errors = {};
  required(errors, 'name', f.name, 'Name');
  let max: number | null = null;
  const raw = f.maxHours.trim();
  if (raw) {
    if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 24) {
      errors.maxSessionDurationHours = 'Enter a whole number of hours from 1 to 24, or leave empty';
    } else max = Number(raw);
  }
  return {
    errors,
    input: { name: f.name.trim(), maxSessionDurationHours: max, resourceIds: f.resourceIds, userIds: f.userIds },
  };
}

export function RolesPage({ api }: { api: Api }) {
  const roles = useLoad(['roles'], () => api.listRoles());
  const resources = useLoad(['resources'], () => api.listResources());
  const users = useLoad(['users'], () => api.listUsers());
  const [editing, setEditing] = useState<Role | 'new' | null>(null);
  const [message, setMessage] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);

  const resName = (id: string) => resources.data?.find((r) => r.id === id)?.name ?? 'Unknown resource';
  const userEmail = (id: string) => users.data?.find((u) => u.id === id)?.email ?? 'Unknown user';

  async function remove(r: Role) {
    setMessage(null);
    try {
      await api.deleteRole(r.id);
      roles.setData((list) => (list ?? []).filter((x) => x.id !== r.id));
      setMessage({ kind: 'success', text: `Deleted "${r.name}".` });
    } catch (e) {
      setMessage({ kind: 'error', text: errorMessage(e) });
    }
  }

  return (
    <>
      <PageHeader
        title="Roles"
        description="A role gives its members access to a set of resources, optionally with a shorter maximum session."
        actions={
          editing === null && (
            <button type="button" className="btn btn--primary" onClick={() => setEditing('new')}>
              <PlusIcon /> Add role
            </button>
          )
        }
      />
      {editing !== null && (
        <RoleForm
          key={editing === 'new' ? 'new' : editing.id}
          api={api}
          role={editing === 'new' ? null : editing}
          resources={resources.data ?? []}
          users={users.data ?? []}
          onCancel={() => setEditing(null)}
          onSaved={(r, created) => {
            roles.setData((list) => (created ? [...(list ?? []), r] : (list ?? []).map((x) => (x.id === r.id ? r : x))));
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
      <Card title="All roles">
        {roles.error && <Alert>{roles.error}</Alert>}
        {roles.data === null ? (
          roles.loading && <Loading />
        ) : roles.data.length === 0 ? (
          <EmptyState title="No roles yet" icon={<BadgeIcon size={28} />}>
            Create a role, add resources and members, and those members can start sessions.
          </EmptyState>
        ) : (
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Max session</th>
                  <th scope="col">Resources</th>
                  <th scope="col">Members</th>
                  <th scope="col" className="col-actions">
                    Actions
                  </th>
                </tr>
              </thead>
              <tbody>
                {roles.data.map((r) => (
                  <tr key={r.id}>
                    <td data-label="Name" className="strong">
                      {r.name}
                    </td>
                    <td data-label="Max session">
                      {r.maxSessionDurationHours ? `${r.maxSessionDurationHours} h` : <span className="muted">Plan limit</span>}
                    </td>
                    <td data-label="Resources">
                      <NameList names={r.resourceIds.map(resName)} empty="No resources" />
                    </td>
                    <td data-label="Members">
                      <NameList names={r.userIds.map(userEmail)} empty="No members" />
                    </td>
                    <td data-label="Actions" className="col-actions">
                      <div className="row-actions">
                        <button type="button" className="btn btn--ghost btn--sm" onClick={() => setEditing(r)} aria-label={`Edit ${r.name}`}>
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

export function NameList({ names, empty }: { names: string[]; empty: string }) {
  if (names.length === 0) return <span className="muted">{empty}</span>;
  return (
    <span className="tags">
      {names.map((n, i) => (
        <span key={`${n}-${i}`} className="tag">
          {n}
        </span>
      ))}
    </span>
  );
}

function RoleForm({
  api,
  role,
  resources,
  users,
  onSaved,
  onCancel,
}: {
  api: Api;
  role: Role | null;
  resources: Resource[];
  users: User[];
  onSaved: (r: Role, created: boolean) => void;
  onCancel: () => void;
}) {
  const [form, setForm] = useState<Form>(() => ({
    name: role?.name ?? '',
    maxHours: role?.maxSessionDurationHours ? String(role.maxSessionDurationHours) : '',
    resourceIds: role?.resourceIds ?? [],
    userIds: role?.userIds ?? [],
  }));
  const [errors, setErrors] = useState<Errors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const set = <K extends keyof Form>(k: K, v: Form[K]) => setForm((f) => ({ ...f, [k]: v }));

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setFormError(null);
    const { errors: errs, input } = validateRole(form);
    setErrors(errs);
    if (hasErrors(errs)) return;
    setSaving(true);
    try {
      const saved = role ? await api.updateRole(role.id, input) : await api.createRole(input);
      onSaved(saved, !role);
    } catch (err) {
      setErrors(fieldErrors(err));
      setFormError(errorMessage(err));
    } finally {
      setSaving(false);
    }
  }

  return (
    <Card title={role ? `Edit ${role.name}` : 'Add role'}>
      <form className="form" onSubmit={submit} noValidate aria-label={role ? 'Edit role' : 'Add role'}>
        {formError && (
          <Alert>
            {formError}
            <OtherFieldErrors errors={errors} shown={['name', 'maxSessionDurationHours', 'resourceIds', 'userIds']} />
          </Alert>
        )}
        <div className="form-grid">
          <Field label="Name" error={errors.name}>
            {(p) => <input {...p} className="input" value={form.name} onChange={(e) => set('name', e.target.value)} placeholder="Developers" />}
          </Field>
          <Field
            label="Max session duration (hours)"
            error={errors.maxSessionDurationHours}
            optional
            hint="1–24. Leave empty to use the plan's limit. The most restrictive limit applies."
          >
            {(p) => <input {...p} className="input" inputMode="numeric" value={form.maxHours} onChange={(e) => set('maxHours', e.target.value)} placeholder="Plan limit" />}
          </Field>
        </div>
        <div className="form-grid">
          <CheckboxList
            legend="Resources"
            items={resources.map((r) => ({ id: r.id, label: r.name, detail: r.securityGroupId }))}
            selected={form.resourceIds}
            onChange={(ids) => set('resourceIds', ids)}
            empty="No resources exist yet — add them on the Resources page."
            error={errors.resourceIds}
          />
          <CheckboxList
            legend="Members"
            items={users.map((u) => ({ id: u.id, label: u.email, detail: u.isAdmin ? 'admin' : undefined }))}
            selected={form.userIds}
            onChange={(ids) => set('userIds', ids)}
            empty="No users exist yet."
            error={errors.userIds}
          />
        </div>
        <div className="form-actions">
          <button type="submit" className="btn btn--primary" disabled={saving}>
            {saving && <Spinner />} {role ? 'Save changes' : 'Add role'}
          </button>
          <button type="button" className="btn btn--ghost" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </Card>
  );
}
