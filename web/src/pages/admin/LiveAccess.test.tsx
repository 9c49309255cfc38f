import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { calls, makeApi, session } from '../../test/helpers';
import { Queries } from '../../lib/queries';
import { LiveAccessPage } from './LiveAccess';

const USERS = [
  { id: 'u1', email: 'dev@example.com', isAdmin: false, resourceIds: [], roleIds: [] },
  { id: 'u2', email: 'ops@example.com', isAdmin: false, resourceIds: [], roleIds: [] },
];
const RESOURCES = [{ id: 'r1', name: 'bastion', credentialId: 'c1', securityGroupId: 'sg-1', region: 'eu-west-1', ports: [] }];
const ACTIVITY = {
  days: Array.from({ length: 30 }, (_, i) => ({ date: `2026-11-${String(i + 1).padStart(2, '0')}`, started: i === 29 ? 4 : 0, failed: i === 29 ? 1 : 0 })),
  failureRate: 0.25,
};

function world() {
  let live = [
    { user: USERS[0], session: session({ id: 's1' }) },
    { user: USERS[1], session: session({ id: 's2', ipAddresses: [{ address: '2001:db8::7', version: 'v6' }] }) },
  ];
  return makeApi(({ method, path, body }) => {
    if (method === 'GET' && path === '/api/admin/users') return { body: USERS };
    if (method === 'GET' && path === '/api/admin/resources') return { body: RESOURCES };
    if (method === 'GET' && path === '/api/admin/sessions/activity') return { body: ACTIVITY };
    if (method === 'GET' && path.startsWith('/api/admin/sessions')) {
      const q = new URL(path, 'http://x').searchParams;
      return { body: live.filter((l) => !q.get('userId') || l.user.id === q.get('userId')) };
    }
    if (method === 'POST' && path === '/api/admin/sessions/s1/stop') {
      live = live.filter((l) => l.session.id !== 's1');
      return { status: 202, body: session({ id: 's1', status: 'EXPIRING' }) };
    }
    if (method === 'POST' && path === '/api/admin/sessions/revoke-all') {
      const stopped = live.length;
      live = [];
      return { body: { stopped, scope: body ?? null } };
    }
    return undefined;
  });
}

describe('Live access', () => {
  it('lists who has access, filters by user and stops one session', async () => {
    const user = userEvent.setup();
    const { api, fetchImpl } = world();
    render(<LiveAccessPage api={api} />, { wrapper: Queries });
    const table = await screen.findByRole('table', { name: 'Live sessions' });
    expect(within(table).getByText('dev@example.com')).toBeInTheDocument();
    expect(within(table).getByText('2001:db8::7')).toBeInTheDocument();
    expect(screen.getByText(/4 sessions in the last 30 days · failure rate 25.0 %/)).toBeInTheDocument();

    await user.selectOptions(screen.getByLabelText('User'), 'u2');
    await waitFor(() => expect(calls(fetchImpl, 'GET', '/api/admin/sessions?userId=u2')).toBeGreaterThan(0));
    await waitFor(() => expect(within(screen.getByRole('table', { name: 'Live sessions' })).queryByText('dev@example.com')).toBeNull());
    await user.selectOptions(screen.getByLabelText('User'), '');

    await user.click(await screen.findByRole('button', { name: "Stop dev@example.com's session" }));
    expect(await screen.findByText(/Stopped dev@example.com's session/)).toBeInTheDocument();
    expect(calls(fetchImpl, 'POST', '/api/admin/sessions/s1/stop')).toBe(1);
  });

  it('revokes all access only after a confirmation', async () => {
    const user = userEvent.setup();
    const { api, fetchImpl } = world();
    render(<LiveAccessPage api={api} />, { wrapper: Queries });
    await screen.findByRole('table', { name: 'Live sessions' });
    await user.click(screen.getByRole('button', { name: /Revoke all now/ }));
    expect(calls(fetchImpl, 'POST', '/api/admin/sessions/revoke-all')).toBe(0);
    await user.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(calls(fetchImpl, 'POST', '/api/admin/sessions/revoke-all')).toBe(0);

    await user.selectOptions(screen.getByLabelText('Resource'), 'r1');
    await user.click(screen.getByRole('button', { name: /Revoke all now/ }));
    await user.click(screen.getByRole('button', { name: 'Confirm: revoke all access to bastion' }));
    expect(await screen.findByText(/Revoked: 2 live sessions stopped/)).toBeInTheDocument();
    const post = fetchImpl.mock.calls.find(([, init]) => init?.method === 'POST')!;
    expect(JSON.parse(String(post[1]!.body))).toEqual({ resourceId: 'r1' });
    expect(await screen.findByText('Nobody has access right now')).toBeInTheDocument();
  });
});
