import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { Api } from '../api/client';
import type { ApiToken } from '../api/types';
import { calls, makeApi, type Handler } from '../test/helpers';
import { Queries } from '../lib/queries';
import { TokensPage, validateToken } from './Tokens';

const DAY = 86_400_000;
const SECRET = `egt_${'3f'.repeat(32)}`;

function token(over: Partial<ApiToken> = {}): ApiToken {
  const now = Date.now();
  return {
    id: 't1',
    name: 'Laptop script',
    createdAt: new Date(now - 3 * DAY).toISOString(),
    expiresAt: new Date(now + 27 * DAY).toISOString(),
    lastUsedAt: null,
    ...over,
  };
}

/** A small in-memory tokens API: POST adds to the list that GET answers. */
function setup(initial: ApiToken[] = [], override?: Handler) {
  const tokens = [...initial];
  const { api, fetchImpl } = makeApi((req) => {
    const o = override?.(req);
    if (o) return o;
    const { method, path, body } = req;
    if (method === 'GET' && path === '/api/me/tokens') return { body: { tokens } };
    if (method === 'POST' && path === '/api/me/tokens') {
      const b = body as { name: string; expiresInDays?: number };
      const createdAt = new Date().toISOString();
      const t = {
        id: `t${tokens.length + 1}`,
        name: b.name,
        createdAt,
        expiresAt: b.expiresInDays ? new Date(Date.now() + b.expiresInDays * DAY).toISOString() : null,
        lastUsedAt: null,
      };
      tokens.push(t);
      return { status: 201, body: { ...t, token: SECRET } };
    }
    const del = path.match(/^\/api\/me\/tokens\/(.+)$/);
    if (method === 'DELETE' && del) {
      const i = tokens.findIndex((t) => t.id === del[1]);
      if (i < 0) return undefined;
      tokens.splice(i, 1);
      return { status: 204 };
    }
    return undefined;
  });
  render(<TokensPage api={api} />, { wrapper: Queries });
  return { fetchImpl, tokens };
}

const postBody = (fetchImpl: ReturnType<typeof makeApi>['fetchImpl']) =>
  JSON.parse(String(fetchImpl.mock.calls.find(([, init]) => init?.method === 'POST')![1]!.body));

describe('API tokens page', () => {
  it('shows a loading state, then the empty state with the explanation', async () => {
    let answer: (r: Response) => void = () => {};
    const pending = new Promise<Response>((r) => (answer = r));
    const api = new Api({ baseUrl: '', getToken: () => 't', fetchImpl: (() => pending) as unknown as typeof fetch });
    render(<TokensPage api={api} />, { wrapper: Queries });
    expect(screen.getByRole('status')).toHaveTextContent('Loading your tokens…');
    expect(screen.getByText(/A token acts as you/)).toBeInTheDocument();
    expect(screen.getByText(/revoke tokens you no longer use/)).toBeInTheDocument();
    answer(new Response(JSON.stringify({ tokens: [] }), { status: 200 }));
    expect(await screen.findByText('No API tokens yet')).toBeInTheDocument();
    expect(screen.queryByRole('table')).not.toBeInTheDocument();
  });

  it('creates a token, shows its secret once, and refreshes the list', async () => {
    const user = userEvent.setup();
    const { fetchImpl } = setup([token()]);
    await screen.findByRole('cell', { name: 'Laptop script' });
    expect(calls(fetchImpl, 'GET', '/api/me/tokens')).toBe(1);
    const form = screen.getByRole('form', { name: 'Create API token' });
    expect(within(form).getByLabelText('Expiration')).toHaveValue('90');
    await user.type(within(form).getByLabelText('Name'), '  CI pipeline ');
    await user.selectOptions(within(form).getByLabelText('Expiration'), '365');
    await user.click(within(form).getByRole('button', { name: 'Create token' }));

    const panel = await screen.findByRole('region', { name: 'Token “CI pipeline” created' });
    expect(postBody(fetchImpl)).toEqual({ name: 'CI pipeline', expiresInDays: 365 });
    const secret = within(panel).getByLabelText('New API token');
    expect(secret).toHaveValue(SECRET);
    expect(secret).toHaveAttribute('readonly');
    expect(secret).toHaveFocus();
    expect(within(panel).getByText(/it will not be shown again/)).toBeInTheDocument();

    await user.click(within(panel).getByRole('button', { name: 'Copy' }));
    expect(await within(panel).findByRole('button', { name: 'Copied' })).toBeInTheDocument();
    expect(await navigator.clipboard.readText()).toBe(SECRET);

    // The list is fetched again and shows the new token, never its secret.
    await waitFor(() => expect(calls(fetchImpl, 'GET', '/api/me/tokens')).toBe(2));
    const row = (await screen.findByRole('cell', { name: /^CI pipeline/ })).closest('tr')!;
    expect(within(row).getByText('New')).toBeInTheDocument();
    expect(within(row).getByText('in 365 days')).toBeInTheDocument();
    expect(within(row).getByText('Never used')).toBeInTheDocument();
    expect(screen.getByRole('table').textContent).not.toContain(SECRET);
    expect(within(form).getByLabelText('Name')).toHaveValue('');

    // Hidden means gone: nothing on the page holds the secret any more.
    await user.click(within(panel).getByRole('button', { name: 'Hide token' }));
    expect(screen.queryByRole('region', { name: /created/ })).not.toBeInTheDocument();
    expect(document.body.innerHTML).not.toContain(SECRET);
    expect(within(form).getByLabelText('Name')).toHaveFocus();
  });

  it('sends no expiry for "No expiry" and shows "Never" and the last use', async () => {
    const user = userEvent.setup();
    const used = new Date(Date.now() - 2 * 3600_000).toISOString();
    const { fetchImpl } = setup([token({ lastUsedAt: used })]);
    const first = (await screen.findByRole('cell', { name: 'Laptop script' })).closest('tr')!;
    expect(within(first).getByText('2 h ago')).toBeInTheDocument();
    expect(within(first).getByText('in 27 days')).toBeInTheDocument();
    expect(within(first).getByText('3 days ago')).toBeInTheDocument();
    expect(within(first).getByText('2 h ago').nextElementSibling).toHaveAttribute('datetime', used);

    const form = screen.getByRole('form', { name: 'Create API token' });
    await user.type(within(form).getByLabelText('Name'), 'Nightly report');
    await user.selectOptions(within(form).getByLabelText('Expiration'), 'No expiry');
    expect(within(form).getByLabelText('Expiration')).toHaveAccessibleDescription(/works until you revoke it/);
    await user.click(within(form).getByRole('button', { name: 'Create token' }));
    await screen.findByRole('region', { name: 'Token “Nightly report” created' });
    expect(postBody(fetchImpl)).toEqual({ name: 'Nightly report' });
    const row = (await screen.findByRole('cell', { name: /^Nightly report/ })).closest('tr')!;
    expect(within(row).getByText('Never')).toBeInTheDocument();
  });

  it('validates the name before sending', async () => {
    const user = userEvent.setup();
    const { fetchImpl } = setup();
    await screen.findByText('No API tokens yet');
    const form = screen.getByRole('form', { name: 'Create API token' });
    const name = within(form).getByLabelText('Name');
    await user.type(name, '   ');
    await user.click(within(form).getByRole('button', { name: 'Create token' }));
    expect(within(form).getByText('Name is required')).toBeInTheDocument();
    expect(name).toHaveAttribute('aria-invalid', 'true');
    expect(name).toHaveAccessibleDescription('Name is required');
    expect(name).toHaveFocus();

    await user.clear(name);
    await user.click(name);
    await user.paste('x'.repeat(101));
    await user.click(within(form).getByRole('button', { name: 'Create token' }));
    expect(within(form).getByText('Name must be at most 100 characters')).toBeInTheDocument();
    expect(calls(fetchImpl, 'POST', '/api/me/tokens')).toBe(0);

    expect(validateToken('x'.repeat(100), '30')).toEqual({ errors: {}, input: { name: 'x'.repeat(100), expiresInDays: 30 } });
    expect(validateToken('a\tb', '30').errors.name).toBe('Name must not contain control characters');
  });

  it("shows the API's field errors and the token limit", async () => {
    const user = userEvent.setup();
    let answer: 'validation' | 'limit' = 'validation';
    setup([], ({ method, path }) => {
      if (method !== 'POST' || path !== '/api/me/tokens') return undefined;
      return answer === 'validation'
        ? {
            status: 400,
            body: {
              error: {
                code: 'VALIDATION_FAILED',
                message: 'expiresInDays: must be between 1 and 365 days, not 400',
                fields: { expiresInDays: 'must be between 1 and 365 days, not 400', scope: 'unknown field' },
              },
            },
          }
        : {
            status: 409,
            body: { error: { code: 'TOKEN_LIMIT_REACHED', message: 'You already have 50 API tokens; revoke one you no longer use first' } },
          };
    });
    await screen.findByText('No API tokens yet');
    const form = screen.getByRole('form', { name: 'Create API token' });
    await user.type(within(form).getByLabelText('Name'), 'CI');
    await user.click(within(form).getByRole('button', { name: 'Create token' }));
    expect(await within(form).findByText('must be between 1 and 365 days, not 400')).toBeInTheDocument();
    expect(within(form).getByLabelText('Expiration')).toHaveAccessibleDescription('must be between 1 and 365 days, not 400');
    expect(within(form).getByRole('alert')).toHaveTextContent('scope: unknown field');
    expect(within(form).getByLabelText('Name')).toHaveValue('CI');

    answer = 'limit';
    await user.click(within(form).getByRole('button', { name: 'Create token' }));
    await waitFor(() => expect(within(form).getByRole('alert')).toHaveTextContent('You already have 50 API tokens'));
    expect(screen.queryByRole('region', { name: /created/ })).not.toBeInTheDocument();
  });

  it('revokes a token only after confirmation', async () => {
    const user = userEvent.setup();
    const { fetchImpl } = setup([token(), token({ id: 't2', name: 'Backup job', expiresAt: null })]);
    await screen.findByRole('cell', { name: 'Backup job' });
    expect(screen.getByText('2 of 50')).toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Revoke Laptop script' }));
    expect(calls(fetchImpl, 'DELETE', '/api/me/tokens/t1')).toBe(0);
    expect(screen.getByRole('button', { name: 'Confirm revoke Laptop script' })).toHaveFocus();
    await user.click(screen.getByRole('button', { name: 'Confirm revoke Laptop script' }));
    await waitFor(() => expect(calls(fetchImpl, 'DELETE', '/api/me/tokens/t1')).toBe(1));
    expect(await screen.findByText('Revoked "Laptop script". It stopped working immediately.')).toBeInTheDocument();
    expect(screen.queryByRole('cell', { name: 'Laptop script' })).not.toBeInTheDocument();
    expect(screen.getByRole('cell', { name: 'Backup job' })).toBeInTheDocument();

    // Cancel leaves the token alone.
    await user.click(screen.getByRole('button', { name: 'Revoke Backup job' }));
    await user.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(calls(fetchImpl, 'DELETE', '/api/me/tokens/t2')).toBe(0);

    await user.click(screen.getByRole('button', { name: 'Revoke Backup job' }));
    await user.click(screen.getByRole('button', { name: 'Confirm revoke Backup job' }));
    expect(await screen.findByText('No API tokens yet')).toBeInTheDocument();
  });

  it('shows an expired token as Expired and a failed revoke as an error', async () => {
    const user = userEvent.setup();
    setup([token({ expiresAt: new Date(Date.now() - DAY).toISOString() })], ({ method }) =>
      method === 'DELETE' ? { status: 503, body: { error: { code: 'UNAVAILABLE', message: 'The store cannot be reached; try again' } } } : undefined,
    );
    const row = (await screen.findByRole('cell', { name: 'Laptop script' })).closest('tr')!;
    expect(within(row).getByText('Expired')).toHaveClass('badge--gray');
    await user.click(within(row).getByRole('button', { name: 'Revoke Laptop script' }));
    await user.click(within(row).getByRole('button', { name: 'Confirm revoke Laptop script' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('Could not revoke "Laptop script": The store cannot be reached; try again');
    expect(screen.getByRole('cell', { name: 'Laptop script' })).toBeInTheDocument();
  });
});
