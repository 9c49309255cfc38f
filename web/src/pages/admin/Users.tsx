import { useState } from 'react';
import { errorMessage, fieldErrors, type Api } from '../../api/client';
import type { Resource, User, UserInput } from '../../api/types';
import { CheckboxList } from '../../components/CheckboxList';
import { EditIcon, PlusIcon, UsersIcon } from '../../components/Icons';
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
import { EMAIL_RE, hasErrors, type Errors } from '../../lib/validation';
import { NameList } from './Roles';

interface Form {
  email: string;
  isAdmin: boolean;
  resourceIds: string[];
}

export function validateUser(f: Form): { errors: Errors; input: UserInput } {
  const errors: Errors = {};
  const email = f.email.trim();
  if (!email) errors.email = 'E-mail is required';
  else if (!EMAIL_RE.test(email)) errors.email = 'Enter a valid e-mail address, like name@example.com';
  return { errors, input: { email, isAdmin: f.isAdmin, resourceIds: f.resourceIds } };
}

export function UsersPage({ api }: { api: Api }) {
  const users = useLoad(['users'], () => api.listUsers());
  const resources = useLoad(['resources'], () => api.listResources());
  const roles = useLoad(['roles'], () => api.listRoles());
  const [editing, setEditing] = useState<User | 'new' | null>(null);
  const [message, setMessage] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);

  const resName = (id: string) => resources.data?.find((r) => r.id === id)?.name ?? 'Unknown resource';
  const roleName = (id: string) => roles.data?.find((r) => r.id === id)?.name ?? 'Unknown role';

  async function remove(u: User) {
    setMessage(null);
    try {
      await api.deleteUser(u.id);
      users.setData((list) => (list ?? []).filter((x) => x.id !== u.id));
      setMessage({ kind: 'success', text: `Deleted ${u.email}.` });
    } catch (e) {
      setMessage({ kind: 'error', text: errorMessage(e) });
    }
  }

  return (
    <>
      <PageHeader
        title="Users"
        description="People in your organization. Give access through roles, or assign resources directly."
        actions={
          editing === null && (
            <button type="button" className="btn btn--primary" onClick={() => setEditing('new')}>
              <PlusIcon /> Add user
            </button>
          )
        }
      />
      {editing !== null && (
        <UserForm
          key={editing === 'new' ? 'new' : editing.id}
          api={api}
          user={editing === 'new' ? null : editing}
          resources={resources.data ?? []}
          onCancel={() => setEditing(null)}
          onSaved={(u, created) => {
            users.setData((list) => (created ? [...(list ?? []), u] : (list ?? []).map((x) => (x.id === u.id ? u : x))));
            setEditing(null);
            setMessage({ kind: 'success', text: created ? `Added ${u.email}.` : `Saved ${u.email}.` });
          }}
        />
      )}
      {message && (
        <Alert kind={message.kind} onDismiss={() => setMessage(null)}>
          {message.text}
        </Alert>
      )}
      <Card title="All users">
        {users.error && <Alert>{users.error}</Alert>}
        {users.data === null ? (
          users.loading && <Loading />
        ) : users.data.length === 0 ? (
          <EmptyState title="No users yet" icon={<UsersIcon size={28} />}>
            Add the people who need access.
          </EmptyState>
        ) : (
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">E-mail</th>
                  <th scope="col">Access level</th>
                  <th scope="col">Roles</th>
                  <th scope="col">Direct resources</th>
                  <th scope="col" className="col-actions">
                    Actions
                  </th>
                </tr>
              </thead>
              <tbody>
                {users.data.map((u) => (
                  <tr key={u.id}>
                    <td data-label="E-mail" className="strong">
                      {u.email}
                    </td>
                    <td data-label="Access level">
                      {u.isAdmin ? <span className="tag tag--admin">Admin</span> : <span className="tag">Member</span>}
                    </td>
                    <td data-label="Roles">
                      <NameList names={u.roleIds.map(roleName)} empty="No roles" />
                    </td>
                    <td data-label="Direct resources">
                      <NameList names={u.resourceIds.map(resName)} empty="None" />
                    </td>
                    <td data-label="Actions" className="col-actions">
                      <div className="row-actions">
                        <button type="button" className="btn btn--ghost btn--sm" onClick={() => setEditing(u)} aria-label={`Edit ${u.email}`}>
                          <EditIcon size={14} /> Edit
                        </button>
                        <ConfirmDelete label={u.email} onConfirm={() => void remove(u)} />
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

function UserForm({
  api,
  user,
  resources,
  onSaved,
  onCancel,
}: {
  api: Api;
  user: User | null;
  resources: Resource[];
  onSaved: (u: User, created: boolean) => void;
  onCancel: () => void;
}) {
  const [form, setForm] = useState<Form>(() => ({
    email: user?.email ?? '',
    isAdmin: user?.isAdmin ?? false,
    resourceIds: user?.resourceIds ?? [],
  }));
  const [errors, setErrors] = useState<Errors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const set = <K extends keyof Form>(k: K, v: Form[K]) => setForm((f) => ({ ...f, [k]: v }));

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setFormError(null);
    const { errors: errs, input } = validateUser(form);
    setErrors(errs);
    if (hasErrors(errs)) return;
    setSaving(true);
    try {
      const saved = user ? await api.updateUser(user.id, input) : await api.createUser(input);
      onSaved(saved, !user);
    } catch (err) {
      setErrors(fieldErrors(err));
      setFormError(errorMessage(err));
    } finally {
      setSaving(false);
    }
  }

  return (
    <Card title={user ? `Edit ${user.email}` : 'Add user'}>
      <form className="form" onSubmit={submit} noValidate aria-label={user ? 'Edit user' : 'Add user'}>
        {formError && (
          <Alert>
            {formError}
            <OtherFieldErrors errors={errors} shown={['email', 'isAdmin', 'resourceIds']} />
          </Alert>
        )}
        <div className="form-grid">
          <Field label="E-mail" error={errors.email}>
            {(p) => <input {...p} className="input" type="email" value={form.email} onChange={(e) => set('email', e.target.value)} placeholder="name@example.com" />}
          </Field>
          <div className="field field--check">
            <label className="check">
              <input type="checkbox" checked={form.isAdmin} onChange={(e) => set('isAdmin', e.target.checked)} />
              <span>
                Administrator
                <span className="muted small block">Can manage credentials, resources, roles, users and the organization.</span>
              </span>
            </label>
            {errors.isAdmin && <p className="field__error">{errors.isAdmin}</p>}
          </div>
        </div>
        <CheckboxList
          legend="Direct resources"
          items={resources.map((r) => ({ id: r.id, label: r.name, detail: r.securityGroupId }))}
          selected={form.resourceIds}
          onChange={(ids) => set('resourceIds', ids)}
          empty="No resources exist yet."
          error={errors.resourceIds}
        />
        <div className="form-actions">
          <button type="submit" className="btn btn--primary" disabled={saving}>
            {saving && <Spinner />} {user ? 'Save changes' : 'Add user'}
          </button>
          <button type="button" className="btn btn--ghost" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </Card>
  );
}
