import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { Credential, Resource } from '../../api/types';
import { calls, makeApi } from '../../test/helpers';
import { Queries } from '../../lib/queries';
import { AuditLogsPage } from './AuditLogs';
import { CredentialsPage } from './Credentials';
import { OrganizationPage } from './Organization';
import { ResourcesPage } from './Resources';
import { RolesPage } from './Roles';
import { UsersPage } from './Users';

const cred: Credential = {
  id: 'c1',
  name: 'Simulated cloud',
  provider: 'simulated',
  region: 'eu-west-1',
  accessKeyId: null,
  roleArn: null,
  externalId: null,
  hasSecret: false,
  status: 'UNVERIFIED',
  statusMessage: null,
  accountId: null,
  checkedAt: null,
  createdAt: '2026-11-22T10:00:00Z',
};

const res: Resource = {
  id: 'r1',
  name: 'Bastion',
  credentialId: 'c1',
  securityGroupId: 'sg-0e1a2b3c4d5e6f701',
  region: 'eu-west-1',
  ports: [{ protocol: 'tcp', fromPort: 22, toPort: 22 }],
  createdAt: '2026-11-22T10:00:00Z',
};

const validation = (message: string, fields: Record<string, string>) => ({
  status: 400,
  body: { error: { code: 'VALIDATION_FAILED', message, fields } },
});

describe('Resources form', () => {
  function setup(onPost?: (body: unknown) => { status: number; body: unknown }) {
    const { api, fetchImpl } = makeApi(({ method, path, body }) => {
      if (method === 'GET' && path === '/api/admin/resources') return { body: [res] };
      if (method === 'GET' && path === '/api/admin/credentials') return { body: [cred] };
      if (method === 'POST' && path === '/api/admin/resources') return onPost?.(body) ?? { status: 201, body: { ...res, id: 'r2', ...(body as object) } };
      if (method === 'PATCH' && path === '/api/admin/resources/r1') return { body: { ...res, ...(body as object) } };
      if (method === 'DELETE' && path === '/api/admin/resources/r1') return { status: 204 };
      return undefined;
    });
    render(<ResourcesPage api={api} />, { wrapper: Queries });
    return { fetchImpl };
  }

  it('validates before sending: required fields, security group id, region, port ranges', async () => {
    const user = userEvent.setup();
    const { fetchImpl } = setup();
    await screen.findByRole('cell', { name: 'Bastion' });
    await user.click(screen.getByRole('button', { name: 'Add resource' }));
    const form = screen.getByRole('form', { name: 'Add resource' });
    await user.clear(within(form).getByLabelText('Region'));
    await user.type(within(form).getByLabelText('Security group ID'), 'sg-nothex');
    await user.type(within(form).getByLabelText('Region'), 'Europe');
    await user.clear(within(form).getByLabelText('From port'));
    await user.type(within(form).getByLabelText('From port'), '70000');
    await user.clear(within(form).getByLabelText('To port'));
    await user.type(within(form).getByLabelText('To port'), '22');
    await user.click(within(form).getByRole('button', { name: 'Add resource' }));

    expect(within(form).getByText('Name is required')).toBeInTheDocument();
    expect(within(form).getByText(/Use a security group ID like sg-0123abcd or sg-0123456789abcdef0/)).toBeInTheDocument();
    expect(within(form).getByText(/Use an AWS region code like eu-west-1/)).toBeInTheDocument();
    expect(within(form).getByText('From port must be a whole number between 0 and 65535')).toBeInTheDocument();
    expect(within(form).getByLabelText('Security group ID')).toHaveAttribute('aria-invalid', 'true');
    expect(within(form).getByLabelText('Security group ID')).toHaveAccessibleDescription(expect.stringContaining('sg-0123abcd'));
    expect(calls(fetchImpl, 'POST', '/api/admin/resources')).toBe(0);

    await user.clear(within(form).getByLabelText('From port'));
    await user.type(within(form).getByLabelText('From port'), '8443');
    await user.click(within(form).getByRole('button', { name: 'Add resource' }));
    expect(within(form).getByText('To port must be greater than or equal to From port')).toBeInTheDocument();
    expect(calls(fetchImpl, 'POST', '/api/admin/resources')).toBe(0);
  });

  it('sends a valid resource, with the port editor', async () => {
    const user = userEvent.setup();
    const { fetchImpl } = setup();
    await screen.findByRole('cell', { name: 'Bastion' });
    await user.click(screen.getByRole('button', { name: 'Add resource' }));
    const form = screen.getByRole('form', { name: 'Add resource' });
    await user.type(within(form).getByLabelText('Name'), 'Reporting');
    await user.type(within(form).getByLabelText('Security group ID'), 'sg-0123abcd');
    await user.click(within(form).getByRole('button', { name: 'Add port range' }));
    const second = within(form).getByRole('group', { name: 'Port range 2' });
    await user.selectOptions(within(second).getByLabelText('Protocol'), 'udp');
    await user.type(within(second).getByLabelText('From port'), '60000');
    await user.type(within(second).getByLabelText('To port'), '61000');
    await user.click(within(form).getByRole('button', { name: 'Add resource' }));
    await screen.findByText('Added "Reporting".');
    const post = fetchImpl.mock.calls.find(([, init]) => init?.method === 'POST')!;
    expect(JSON.parse(String(post[1]!.body))).toEqual({
      name: 'Reporting',
      credentialId: 'c1',
      securityGroupId: 'sg-0123abcd',
      region: 'eu-west-1',
      ports: [
        { protocol: 'tcp', fromPort: 22, toPort: 22 },
        { protocol: 'udp', fromPort: 60000, toPort: 61000 },
      ],
    });
  });

  it("shows the API's field errors next to the fields", async () => {
    const user = userEvent.setup();
    setup(() =>
      validation('securityGroupId: no such group', {
        securityGroupId: 'no such security group in eu-west-1',
        'ports[0].fromPort': 'must be between 0 and 65535',
        somethingElse: 'is odd',
      }),
    );
    await screen.findByRole('cell', { name: 'Bastion' });
    await user.click(screen.getByRole('button', { name: 'Add resource' }));
    const form = screen.getByRole('form', { name: 'Add resource' });
    await user.type(within(form).getByLabelText('Name'), 'Reporting');
    await user.type(within(form).getByLabelText('Security group ID'), 'sg-0123abcd');
    await user.click(within(form).getByRole('button', { name: 'Add resource' }));
    expect(await within(form).findByText('no such security group in eu-west-1')).toBeInTheDocument();
    expect(within(form).getByLabelText('Security group ID')).toHaveAccessibleDescription('no such security group in eu-west-1');
    expect(within(form).getByLabelText('From port')).toHaveAccessibleDescription('must be between 0 and 65535');
    expect(within(form).getByRole('alert')).toHaveTextContent('securityGroupId: no such group');
    expect(within(form).getByRole('alert')).toHaveTextContent('somethingElse: is odd');
  });

  it('edits with PATCH and deletes after confirmation', async () => {
    const user = userEvent.setup();
    const { fetchImpl } = setup();
    await user.click(await screen.findByRole('button', { name: 'Edit Bastion' }));
    const form = screen.getByRole('form', { name: 'Edit resource' });
    expect(within(form).getByLabelText('Security group ID')).toHaveValue('sg-0e1a2b3c4d5e6f701');
    await user.clear(within(form).getByLabelText('Name'));
    await user.type(within(form).getByLabelText('Name'), 'Bastion (SSH)');
    await user.click(within(form).getByRole('button', { name: 'Save changes' }));
    await screen.findByRole('cell', { name: 'Bastion (SSH)' });
    expect(calls(fetchImpl, 'PATCH', '/api/admin/resources/r1')).toBe(1);

    await user.click(screen.getByRole('button', { name: 'Delete Bastion (SSH)' }));
    expect(calls(fetchImpl, 'DELETE', '/api/admin/resources/r1')).toBe(0);
    await user.click(screen.getByRole('button', { name: 'Confirm delete Bastion (SSH)' }));
    await waitFor(() => expect(calls(fetchImpl, 'DELETE', '/api/admin/resources/r1')).toBe(1));
    await screen.findByText('No resources yet');
  });
});

describe('Credentials', () => {
  function setup(extra?: (req: { method: string; path: string; body: unknown }) => { status?: number; body?: unknown } | undefined) {
    const { api, fetchImpl } = makeApi((req) => {
      const r = extra?.(req);
      if (r) return r;
      if (req.method === 'GET' && req.path === '/api/admin/credentials') return { body: [cred] };
      return undefined;
    });
    render(<CredentialsPage api={api} />, { wrapper: Queries });
    return { fetchImpl };
  }

  it('lists credentials with status, region and provider, and recommends roles', async () => {
    setup();
    expect(await screen.findByText('Unverified')).toHaveClass('badge--gray');
    expect(screen.getByText('Simulated')).toBeInTheDocument();
    expect(screen.getByText('eu-west-1')).toBeInTheDocument();
    expect(screen.getByText(/Role-based credentials are recommended/)).toBeInTheDocument();
    expect(screen.getByText(/no long-lived secret is stored/)).toBeInTheDocument();
    expect(screen.getByText(/deleting the role/)).toBeInTheDocument();
    expect(screen.getByText(/external ID/)).toBeInTheDocument();
  });

  it('records what Validate found: the account, or why the credential was rejected', async () => {
    const user = userEvent.setup();
    let answer: Credential = { ...cred, status: 'VALID', accountId: '123456789012', checkedAt: '2026-11-22T11:00:00Z' };
    setup(({ method, path }) =>
      method === 'POST' && path === '/api/admin/credentials/c1/validate' ? { body: answer } : undefined,
    );
    await user.click(await screen.findByRole('button', { name: 'Validate Simulated cloud' }));
    expect(await screen.findByRole('status')).toHaveTextContent('"Simulated cloud" is valid (account 123456789012).');
    expect(screen.getByText('Account 123456789012')).toBeInTheDocument();
    expect(screen.getByText('Valid')).toBeInTheDocument();

    answer = { ...cred, status: 'INVALID', statusMessage: 'InvalidClientTokenId: the token is invalid', checkedAt: '2026-11-22T11:05:00Z' };
    await user.click(screen.getByRole('button', { name: 'Validate Simulated cloud' }));
    expect(await screen.findByRole('alert')).toHaveTextContent(
      '"Simulated cloud" was rejected by the cloud provider: InvalidClientTokenId: the token is invalid',
    );
    expect(screen.getByText('Invalid')).toBeInTheDocument();
    expect(screen.getAllByText('InvalidClientTokenId: the token is invalid', { exact: false }).length).toBe(2);
    expect(screen.queryByText(/Account 1234/)).not.toBeInTheDocument();
  });

  it("shows the API's error when Validate answers 404", async () => {
    const user = userEvent.setup();
    setup();
    await user.click(await screen.findByRole('button', { name: 'Validate Simulated cloud' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('Could not validate "Simulated cloud": Route not found');
  });

  it('validates the AWS form and never shows the secret after creation', async () => {
    const user = userEvent.setup();
    const { fetchImpl } = setup(({ method, path, body }) =>
      method === 'POST' && path === '/api/admin/credentials'
        ? {
            status: 201,
            body: { ...cred, id: 'c2', provider: 'aws', name: (body as { name: string }).name, accessKeyId: 'AKIAIOSFODNN7EXAMPLE', hasSecret: true },
          }
        : undefined,
    );
    await screen.findByText('Unverified');
    await user.click(screen.getByRole('button', { name: 'Add credential' }));
    const submit = screen.getAllByRole('button', { name: 'Add credential' }).at(-1)!;
    await user.click(submit);
    expect(screen.getByText('Name is required')).toBeInTheDocument();
    expect(screen.getByText('Region is required')).toBeInTheDocument();
    expect(screen.getByText('Role ARN is required')).toBeInTheDocument();
    await user.type(screen.getByLabelText('Role ARN'), 'arn:aws:iam::12:role/x');
    await user.click(submit);
    expect(screen.getByText(/Use a role ARN like/)).toBeInTheDocument();

    await user.click(screen.getByRole('radio', { name: 'Access key' }));
    await user.type(screen.getByLabelText('Name'), 'Prod');
    await user.type(screen.getByLabelText('Region'), 'eu-west-1');
    await user.type(screen.getByLabelText('Access key ID'), 'AKIAIOSFODNN7EXAMPLE');
    await user.click(submit);
    expect(screen.getByText('Secret access key is required')).toBeInTheDocument();
    expect(calls(fetchImpl, 'POST', '/api/admin/credentials')).toBe(0);
    await user.type(screen.getByLabelText('Secret access key'), 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY');
    await user.click(submit);
    await screen.findByText(/Added "Prod"/);
    const post = fetchImpl.mock.calls.find(([, init]) => init?.method === 'POST')!;
    expect(JSON.parse(String(post[1]!.body))).toMatchObject({ provider: 'aws', accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' });
    expect(screen.queryByText(/wJalrXUtnFEMI/)).not.toBeInTheDocument();
    expect(document.body.innerHTML).not.toContain('wJalrXUtnFEMI');
    expect(screen.getByText('secret stored', { exact: false })).toBeInTheDocument();
  });
});

describe('Roles, Users and Organization forms', () => {
  it('checks the role maximum is 1–24 and shows API field errors', async () => {
    const user = userEvent.setup();
    const { api, fetchImpl } = makeApi(({ method, path }) => {
      if (method === 'GET' && path === '/api/admin/roles') return { body: [] };
      if (method === 'GET' && path === '/api/admin/resources') return { body: [res] };
      if (method === 'GET' && path === '/api/admin/users') return { body: [{ id: 'u1', email: 'dev@example.com', isAdmin: false, resourceIds: [], roleIds: [], createdAt: '' }] };
      if (method === 'POST' && path === '/api/admin/roles') return validation('name: already used', { name: 'a role with this name exists' });
      return undefined;
    });
    render(<RolesPage api={api} />, { wrapper: Queries });
    await screen.findByText('No roles yet');
    await user.click(screen.getByRole('button', { name: 'Add role' }));
    const form = screen.getByRole('form', { name: 'Add role' });
    await user.type(within(form).getByLabelText(/Max session duration/), '36');
    await user.click(within(form).getByRole('button', { name: 'Add role' }));
    expect(within(form).getByText('Name is required')).toBeInTheDocument();
    expect(within(form).getByText(/from 1 to 24/)).toBeInTheDocument();
    expect(calls(fetchImpl, 'POST', '/api/admin/roles')).toBe(0);

    await user.type(within(form).getByLabelText('Name'), 'Developers');
    await user.clear(within(form).getByLabelText(/Max session duration/));
    await user.type(within(form).getByLabelText(/Max session duration/), '4');
    await user.click(within(form).getByRole('checkbox', { name: /Bastion/ }));
    await user.click(within(form).getByRole('checkbox', { name: /dev@example.com/ }));
    await user.click(within(form).getByRole('button', { name: 'Add role' }));
    expect(await within(form).findByText('a role with this name exists')).toBeInTheDocument();
    const post = fetchImpl.mock.calls.find(([, init]) => init?.method === 'POST')!;
    expect(JSON.parse(String(post[1]!.body))).toEqual({ name: 'Developers', maxSessionDurationHours: 4, resourceIds: ['r1'], userIds: ['u1'] });
  });

  it('checks the user e-mail and shows a CONFLICT from the API', async () => {
    const user = userEvent.setup();
    const { api, fetchImpl } = makeApi(({ method, path }) => {
      if (method === 'GET' && path === '/api/admin/users') return { body: [] };
      if (method === 'GET' && path === '/api/admin/resources') return { body: [] };
      if (method === 'GET' && path === '/api/admin/roles') return { body: [] };
      if (method === 'POST' && path === '/api/admin/users') return { status: 409, body: { error: { code: 'CONFLICT', message: 'This e-mail is already used' } } };
      return undefined;
    });
    render(<UsersPage api={api} />, { wrapper: Queries });
    await screen.findByText('No users yet');
    await user.click(screen.getByRole('button', { name: 'Add user' }));
    const form = screen.getByRole('form', { name: 'Add user' });
    await user.type(within(form).getByLabelText('E-mail'), 'not-an-email');
    await user.click(within(form).getByRole('button', { name: 'Add user' }));
    expect(within(form).getByText(/Enter a valid e-mail address/)).toBeInTheDocument();
    expect(calls(fetchImpl, 'POST', '/api/admin/users')).toBe(0);
    await user.clear(within(form).getByLabelText('E-mail'));
    await user.type(within(form).getByLabelText('E-mail'), 'ops@example.com');
    await user.click(within(form).getByRole('checkbox', { name: /Administrator/ }));
    await user.click(within(form).getByRole('button', { name: 'Add user' }));
    expect(await within(form).findByRole('alert')).toHaveTextContent('This e-mail is already used');
    const post = fetchImpl.mock.calls.find(([, init]) => init?.method === 'POST')!;
    expect(JSON.parse(String(post[1]!.body))).toEqual({ email: 'ops@example.com', isAdmin: true, resourceIds: [] });
  });

  it('renames the organization with PUT and shows the plan read-only', async () => {
    const user = userEvent.setup();
    const { api, fetchImpl } = makeApi(({ method, path, body }) => {
      if (method === 'GET' && path === '/api/admin/organization') return { body: { id: 'o1', name: 'Demo Org', tier: 'TEAM', status: 'ACTIVE' } };
      if (method === 'PUT' && path === '/api/admin/organization') return { body: { id: 'o1', tier: 'TEAM', status: 'ACTIVE', ...(body as object) } };
      return undefined;
    });
    render(<OrganizationPage api={api} />, { wrapper: Queries });
    const name = await screen.findByLabelText('Organization name');
    await waitFor(() => expect(name).toHaveValue('Demo Org'));
    expect(screen.queryByRole('radio')).not.toBeInTheDocument();
    expect(within(screen.getByRole('list', { name: 'Plans' })).getByText(/Team · current plan/)).toBeInTheDocument();
    expect(screen.getByText(/contact the operator/)).toBeInTheDocument();
    await user.clear(name);
    await user.click(screen.getByRole('button', { name: 'Save' }));
    expect(screen.getByText('Organization name is required')).toBeInTheDocument();
    await user.type(name, 'Acme');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await screen.findByText('Organization saved.');
    const put = fetchImpl.mock.calls.find(([, init]) => init?.method === 'PUT')!;
    expect(JSON.parse(String(put[1]!.body))).toEqual({ name: 'Acme' });

    // IPv6 rules: the address by default, its /64 when chosen (sent only when changed).
    const ipv6 = screen.getByLabelText('IPv6 rules open');
    expect(ipv6).toHaveValue('128');
    await user.selectOptions(ipv6, '64');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(fetchImpl.mock.calls.filter(([, init]) => init?.method === 'PUT')).toHaveLength(2));
    const second = fetchImpl.mock.calls.filter(([, init]) => init?.method === 'PUT')[1];
    expect(JSON.parse(String(second[1]!.body))).toEqual({ name: 'Acme', ipv6Prefix: 64 });
    await waitFor(() => expect(screen.getByLabelText('IPv6 rules open')).toHaveValue('64'));
  });
});

describe('Audit logs', () => {
  it('filters by type and user and pages with "Load more"', async () => {
    const user = userEvent.setup();
    const ev = (id: string, type: string) => ({
      id,
      time: '2026-11-22T10:00:00Z',
      type,
      actorId: 'u1',
      actorEmail: 'dev@example.com',
      ip: '203.0.113.7',
      sessionId: null,
      resourceId: null,
      outcome: 'SUCCESS',
      message: `event ${id}`,
    });
    const { api, fetchImpl } = makeApi(({ method, path }) => {
      if (method === 'GET' && path === '/api/admin/users') return { body: [{ id: 'u1', email: 'dev@example.com', isAdmin: false, resourceIds: [], roleIds: [], createdAt: '' }] };
      if (method === 'GET' && path.startsWith('/api/admin/audit-logs')) {
        const q = new URLSearchParams(path.split('?')[1]);
        if (q.get('cursor') === 'next-1') return { body: { items: [ev('e3', 'session.started')], nextCursor: null } };
        return { body: { items: [ev('e1', 'session.started'), ev('e2', 'auth.login')], nextCursor: 'next-1' } };
      }
      return undefined;
    });
    render(<AuditLogsPage api={api} />, { wrapper: Queries });
    expect(await screen.findByText('event e1')).toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Load more' }));
    expect(await screen.findByText('event e3')).toBeInTheDocument();
    expect(screen.getByText('event e1')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Load more' })).not.toBeInTheDocument();

    await user.type(screen.getByLabelText('Event type'), 'session.started');
    await user.selectOptions(screen.getByLabelText('User'), 'u1');
    await user.click(screen.getByRole('button', { name: 'Apply filters' }));
    await waitFor(() =>
      expect(calls(fetchImpl, 'GET', '/api/admin/audit-logs?type=session.started&userId=u1&limit=50')).toBe(1),
    );
  });
});
