import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { makeApi } from '../test/helpers';
import { NewcomerSignUp } from './SignIn';

describe('A newcomer from the identity provider', () => {
  it('creates an organization', async () => {
    const user = userEvent.setup();
    const { api, fetchImpl } = makeApi(({ method, path }) =>
      method === 'POST' && path === '/api/signup'
        ? { status: 201, body: { organization: { id: 'o', name: 'Startup', tier: 'FREE', status: 'ACTIVE' }, user: { id: 'u', email: 'f@s.example', isAdmin: true } } }
        : undefined,
    );
    const onCreated = vi.fn();
    render(<NewcomerSignUp api={api} onCreated={onCreated} onCancel={() => {}} />);
    await user.click(screen.getByRole('button', { name: 'Create' }));
    expect(screen.getByText('Enter a name for the organization')).toBeInTheDocument();
    await user.type(screen.getByLabelText('Organization name'), 'Startup');
    await user.click(screen.getByRole('button', { name: 'Create' }));
    await vi.waitFor(() => expect(onCreated).toHaveBeenCalled());
    const post = fetchImpl.mock.calls.find(([, init]) => init?.method === 'POST')!;
    expect(JSON.parse(String(post[1]!.body))).toEqual({ organizationName: 'Startup' });
  });

  it('is told when sign-up is closed, and can go back', async () => {
    const user = userEvent.setup();
    const { api } = makeApi(() => ({
      status: 403,
      body: { error: { code: 'FORBIDDEN', message: 'Sign-up is closed on this deployment; ask an administrator of your organization to invite you' } },
    }));
    const onCancel = vi.fn();
    render(<NewcomerSignUp api={api} onCreated={() => {}} onCancel={onCancel} />);
    await user.type(screen.getByLabelText('Organization name'), 'Startup');
    await user.click(screen.getByRole('button', { name: 'Create' }));
    expect(await screen.findByText(/Sign-up is closed on this deployment/)).toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Back to sign-in' }));
    expect(onCancel).toHaveBeenCalled();
  });
});
