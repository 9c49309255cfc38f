import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from './App';
import { fakeFetch, me } from './test/helpers';

const devConfig = { apiBaseUrl: '', auth: { mode: 'dev' as const } };

function server(opts: { admin?: boolean; expireAfterLogin?: boolean } = {}) {
  let token: string | null = null;
  return fakeFetch(({ method, path, body }) => {
    if (method === 'GET' && path === '/api/dev/users')
      return {
        body: [
          { email: 'admin@example.com', isAdmin: true, organizationName: 'Demo Org' },
          { email: 'dev@example.com', isAdmin: false, organizationName: 'Demo Org' },
        ],
      };
    if (method === 'POST' && path === '/api/dev/signup') {
      token = `tok-admin-${(body as { email: string }).email}`;
      return { status: 201, body: { token } };
    }
    if (method === 'POST' && path === '/api/dev/login') {
      token = `tok-${(body as { email: string }).email}`;
      return { body: { token } };
    }
    if (opts.expireAfterLogin && path === '/api/sessions') {
      return { status: 401, body: { error: { code: 'UNAUTHENTICATED', message: 'Your token has expired' } } };
    }
    if (method === 'GET' && path === '/api/me') {
      if (token?.startsWith('tok-admin-'))
        return {
          body: me({
            user: { id: 'u', email: token.slice('tok-admin-'.length), isAdmin: true },
            organization: { id: 'o2', name: 'Startup', tier: 'FREE', status: 'ACTIVE' },
            resourceCount: 0,
          }),
        };
      const admin = token?.includes('admin') ?? false;
      return { body: me({ user: { id: 'u', email: admin ? 'admin@example.com' : 'dev@example.com', isAdmin: admin } }) };
    }
    if (method === 'GET' && path === '/api/sessions') return { body: [] };
    if (method === 'GET' && path === '/api/me/tokens') return { body: { tokens: [] } };
    return undefined;
  });
}

beforeEach(() => {
  window.location.hash = '';
});
afterEach(() => {
  vi.unstubAllGlobals();
});

describe('App (dev login)', () => {
  it('marks the development login, signs in a seeded user and keeps the token in sessionStorage', async () => {
    const user = userEvent.setup();
    const f = server();
    vi.stubGlobal('fetch', f);
    render(<App config={devConfig} />);
    expect(screen.getByText('Development login')).toBeInTheDocument();
    await user.click(await screen.findByRole('button', { name: /dev@example\.com/ }));
    expect(await screen.findByRole('heading', { level: 1, name: 'Sessions' })).toBeInTheDocument();
    expect(sessionStorage.getItem('entryguard.token')).toBe('tok-dev@example.com');
    const meCall = f.mock.calls.find(([u]) => String(u).endsWith('/api/me'))!;
    expect((meCall[1]!.headers as Record<string, string>).Authorization).toBe('Bearer tok-dev@example.com');
    // Members have no Admin section.
    const nav = screen.getByRole('navigation', { name: 'Main' });
    expect(within(nav).getByRole('link', { name: 'Sessions' })).toHaveAttribute('aria-current', 'page');
    expect(within(nav).queryByText('Admin')).not.toBeInTheDocument();
    expect(within(nav).queryByRole('link', { name: 'Credentials' })).not.toBeInTheDocument();
  });

  it('shows the Admin section to admins', async () => {
    const user = userEvent.setup();
    vi.stubGlobal('fetch', server());
    render(<App config={devConfig} />);
    await user.click(await screen.findByRole('button', { name: /admin@example\.com/ }));
    const nav = await screen.findByRole('navigation', { name: 'Main' });
    for (const label of ['Credentials', 'Resources', 'Roles', 'Users', 'IAM Policy', 'Audit Logs', 'Organization']) {
      expect(within(nav).getByRole('link', { name: label })).toBeInTheDocument();
    }
  });

  it('gives every user an Account section with API tokens', async () => {
    const user = userEvent.setup();
    vi.stubGlobal('fetch', server());
    render(<App config={devConfig} />);
    await user.click(await screen.findByRole('button', { name: /dev@example\.com/ }));
    const nav = await screen.findByRole('navigation', { name: 'Main' });
    const account = within(nav).getByRole('list', { name: 'Account' });
    const link = within(account).getByRole('link', { name: 'API tokens' });
    expect(link).toHaveAttribute('href', '#/tokens');
    await user.click(link);
    expect(await screen.findByRole('heading', { level: 1, name: 'API tokens' })).toBeInTheDocument();
    expect(link).toHaveAttribute('aria-current', 'page');
    expect(await screen.findByText('No API tokens yet')).toBeInTheDocument();
    expect(document.title).toBe('API tokens · EntryGuard');
  });

  it('creates an organization and lands on its first steps', async () => {
    const user = userEvent.setup();
    const f = server();
    vi.stubGlobal('fetch', f);
    render(<App config={devConfig} />);
    const form = screen.getByRole('form', { name: 'Create an organization' });
    await user.click(within(form).getByRole('button', { name: 'Create' }));
    expect(screen.getByText('Enter your e-mail address and a name for the organization')).toBeInTheDocument();
    await user.type(within(form).getByLabelText('Your e-mail address'), 'founder@startup.example');
    await user.type(within(form).getByLabelText('Organization name'), 'Startup');
    await user.click(within(form).getByRole('button', { name: 'Create' }));
    const steps = await screen.findByRole('note', { name: 'First steps' });
    expect(within(steps).getByRole('link', { name: 'Add a credential' })).toHaveAttribute('href', '#/admin/credentials');
    const post = f.mock.calls.find(([u]) => String(u).endsWith('/api/dev/signup'))!;
    expect(JSON.parse(String(post[1]!.body))).toEqual({ email: 'founder@startup.example', organizationName: 'Startup' });
  });

  it('signs in with a typed e-mail', async () => {
    const user = userEvent.setup();
    vi.stubGlobal('fetch', server());
    render(<App config={devConfig} />);
    await user.type(screen.getByLabelText('E-mail address'), 'dev@example.com');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByRole('heading', { level: 1, name: 'Sessions' })).toBeInTheDocument();
  });

  it('returns to the sign-in screen on a 401', async () => {
    sessionStorage.setItem('entryguard.token', 'stale');
    vi.stubGlobal('fetch', server({ expireAfterLogin: true }));
    render(<App config={devConfig} />);
    expect(await screen.findByText('Your sign-in has expired. Please sign in again.')).toBeInTheDocument();
    expect(screen.getByText('Development login')).toBeInTheDocument();
    await waitFor(() => expect(sessionStorage.getItem('entryguard.token')).toBeNull());
  });
});

describe('App (oidc)', () => {
  it('offers single sign-on instead of the development login', () => {
    render(<App config={{ apiBaseUrl: '', auth: { mode: 'oidc', issuer: 'https://i', clientId: 'c', redirectUri: 'https://r/' } }} />);
    expect(screen.getByRole('button', { name: /Continue with single sign-on/ })).toBeInTheDocument();
    expect(screen.queryByText('Development login')).not.toBeInTheDocument();
  });
});
