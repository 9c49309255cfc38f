import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Session } from '../api/types';
import { POLL_INTERVAL_MS } from '../lib/sessions';
import { calls, makeApi, me, session } from '../test/helpers';
import { Queries } from '../lib/queries';
import { SessionsPage } from './Sessions';

const H = 3600_000;

function setup(opts: { me?: ReturnType<typeof me>; sessions?: () => Session[]; start?: (body: unknown) => { status: number; body: unknown } } = {}) {
  const m = opts.me ?? me();
  const list = opts.sessions ?? (() => []);
  const { api, fetchImpl } = makeApi(({ method, path, body }) => {
    if (method === 'GET' && path === '/api/me') return { body: m };
    if (method === 'GET' && path === '/api/sessions') return { body: list() };
    if (method === 'POST' && path === '/api/sessions') return opts.start?.(body) ?? { status: 202, body: session({ status: 'PENDING' }) };
    if (method === 'POST' && path.endsWith('/extend')) return { body: session({ expiresAt: new Date(Date.now() + 4 * H).toISOString() }) };
    if (method === 'POST' && path.endsWith('/stop')) return { status: 202, body: session({ status: 'EXPIRING' }) };
    return undefined;
  });
  render(<SessionsPage api={api} />, { wrapper: Queries });
  return { api, fetchImpl };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('duration dropdown', () => {
  it('shows exactly the allowed durations from /api/me', async () => {
    setup({ me: me({ allowedDurationsHours: [1, 2, 4], maxSessionDurationHours: 4 }) });
    const select = await screen.findByLabelText('Session duration');
    await waitFor(() => expect(within(select).getAllByRole('option')).toHaveLength(3));
    const values = within(select)
      .getAllByRole('option')
      .map((o) => (o as HTMLOptionElement).value);
    expect(values).toEqual(['1', '2', '4']);
    expect(within(select).getAllByRole('option').map((o) => o.textContent)).toEqual(['1 hour', '2 hours', '4 hours']);
  });

  it('shows all paid-tier durations', async () => {
    setup();
    const select = await screen.findByLabelText('Session duration');
    await waitFor(() =>
      expect(within(select).getAllByRole('option').map((o) => (o as HTMLOptionElement).value)).toEqual(['1', '2', '4', '8', '12', '16', '24']),
    );
  });

  it('starts a session with the chosen duration', async () => {
    const user = userEvent.setup();
    const { fetchImpl } = setup({ me: me({ allowedDurationsHours: [1, 2, 4] }) });
    const select = await screen.findByLabelText('Session duration');
    await waitFor(() => expect(select).toHaveValue('2'));
    await user.selectOptions(select, '4');
    await user.click(screen.getByRole('button', { name: 'Start Session' }));
    await screen.findByText('PENDING');
    const post = fetchImpl.mock.calls.find(([, init]) => init?.method === 'POST');
    expect(JSON.parse(String(post![1]!.body))).toEqual({ durationHours: 4 });
  });
});

describe('errors and empty states', () => {
  it('shows the API message when a start is refused', async () => {
    const user = userEvent.setup();
    setup({
      start: () => ({ status: 400, body: { error: { code: 'DURATION_EXCEEDS_MAXIMUM', message: 'Duration exceeds maximum allowed' } } }),
    });
    await user.click(await screen.findByRole('button', { name: 'Start Session' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('Duration exceeds maximum allowed');
  });

  it('tells a user without resources to ask an administrator', async () => {
    setup({ me: me({ resourceCount: 0 }) });
    expect(await screen.findByText(/No resources are assigned to you/)).toBeInTheDocument();
    expect(screen.getByText(/ask your administrator to add you to a role/)).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Start Session' })).toBeDisabled();
  });

  it('says "No sessions yet" when there are none', async () => {
    setup();
    expect(await screen.findByText('No sessions yet')).toBeInTheDocument();
  });
});

describe('session rows', () => {
  it('shows IPs with version badges, status, resource count and relative expiry', async () => {
    const s = session({
      ipAddresses: [
        { address: '203.0.113.7', version: 'v4' },
        { address: '2001:db8::1', version: 'v6' },
      ],
      expiresAt: new Date(Date.now() + 2 * H - 30_000).toISOString(),
    });
    setup({ sessions: () => [s] });
    const row = (await screen.findAllByRole('row')).find((r) => r.classList.contains('session-row'))!;
    expect(within(row).getByText('203.0.113.7')).toBeInTheDocument();
    expect(within(row).getByText('2001:db8::1')).toBeInTheDocument();
    expect(within(row).getByLabelText('IPv6')).toBeInTheDocument();
    expect(within(row).getByText('ACTIVE')).toHaveClass('badge--green');
    expect(within(row).getByText(/in 1 h 59 min/)).toBeInTheDocument();
    expect(row.querySelector('time')).toHaveAttribute('dateTime', s.expiresAt);
  });

  it('expands the per-resource table on click and with Enter/Space', async () => {
    const s = session();
    s.resources[1] = { ...s.resources[1], status: 'FAILED', error: 'Security group sg-0123 was not found' };
    setup({ sessions: () => [{ ...s, status: 'PARTIAL' }] });
    const row = await screen.findByRole('row', { name: /Session from 203\.0\.113\.7/ });
    expect(row).toHaveAttribute('aria-expanded', 'false');
    expect(screen.queryByRole('table', { name: 'Resources in this session' })).not.toBeInTheDocument();

    fireEvent.click(row);
    expect(row).toHaveAttribute('aria-expanded', 'true');
    const inner = screen.getByRole('table', { name: 'Resources in this session' });
    expect(within(inner).getAllByRole('columnheader').map((h) => h.textContent)).toEqual(['Resource', 'IP', 'Status', 'Error']);
    expect(within(inner).getByText('APPLIED')).toHaveClass('badge--green');
    expect(within(inner).getByText('FAILED')).toHaveClass('badge--red');
    expect(within(inner).getByText('Security group sg-0123 was not found')).toBeInTheDocument();

    row.focus();
    fireEvent.keyDown(row, { key: 'Enter' });
    expect(row).toHaveAttribute('aria-expanded', 'false');
    fireEvent.keyDown(row, { key: ' ' });
    expect(row).toHaveAttribute('aria-expanded', 'true');
    fireEvent.keyDown(row, { key: 'a' });
    expect(row).toHaveAttribute('aria-expanded', 'true');
  });

  it('rows are keyboard-reachable and action buttons do not toggle the row', async () => {
    const user = userEvent.setup();
    setup({ sessions: () => [session()] });
    const row = await screen.findByRole('row', { name: /Session from/ });
    expect(row).toHaveAttribute('tabindex', '0');
    await user.click(within(row).getByRole('button', { name: /Extend session by 2 hours/ }));
    expect(row).toHaveAttribute('aria-expanded', 'false');
  });
});

describe('+2h button', () => {
  it('is enabled for an ACTIVE session within the maximum and extends it', async () => {
    const user = userEvent.setup();
    const { fetchImpl } = setup({ sessions: () => [session()] });
    const btn = await screen.findByRole('button', { name: /Extend session by 2 hours/ });
    expect(btn).toBeEnabled();
    expect(btn).toHaveTextContent('+2h');
    await user.click(btn);
    await waitFor(() => expect(calls(fetchImpl, 'POST', '/api/sessions/s1/extend')).toBe(1));
    await screen.findByText(/in 3 h 59 min|in 4 h/);
  });

  it('is disabled with the reason when the status is not ACTIVE or PARTIAL', async () => {
    setup({ sessions: () => [session({ status: 'CANCELLED', endedAt: new Date().toISOString() })] });
    const btn = await screen.findByRole('button', { name: /Extend session by 2 hours/ });
    expect(btn).toBeDisabled();
    expect(btn).toHaveAttribute('title', expect.stringContaining('Only active or partial sessions can be extended'));
    expect(btn).toHaveAccessibleDescription(expect.stringContaining('Only active or partial sessions can be extended'));
    expect(screen.getByTestId('extend-reason')).toHaveClass('sr-only');
  });

  it('is disabled with the reason when it would pass maxSessionDurationHours', async () => {
    const now = Date.now();
    const s = session({ createdAt: new Date(now - 60_000).toISOString(), expiresAt: new Date(now + 4 * H - 60_000).toISOString() });
    setup({ me: me({ allowedDurationsHours: [1, 2, 4], maxSessionDurationHours: 4 }), sessions: () => [s] });
    const btn = await screen.findByRole('button', { name: /Extend session by 2 hours/ });
    await waitFor(() => expect(btn).toBeDisabled());
    expect(btn).toHaveAccessibleDescription(expect.stringContaining('maximum session duration of 4 h'));
    expect(btn.closest('span')).toHaveAttribute('title', expect.stringContaining('maximum session duration of 4 h'));
  });

  it('stop is a square icon button, disabled once the session has ended', async () => {
    setup({
      sessions: () => [session(), session({ id: 's2', status: 'EXPIRED', endedAt: new Date().toISOString() })],
    });
    const stops = await screen.findAllByRole('button', { name: 'Stop session' });
    expect(stops[0]).toBeEnabled();
    expect(stops[0].querySelector('svg rect')).not.toBeNull();
    expect(stops[1]).toBeDisabled();
  });
});

describe('polling', () => {
  it('polls every 1.5 s while something is in flight and stops once everything settled', async () => {
    vi.useFakeTimers();
    let n = 0;
    const sequence = (): Session[] => {
      n += 1;
      if (n === 1) return [session({ status: 'PENDING', resources: [{ resourceId: 'r1', resourceName: 'bastion', ip: '203.0.113.7', status: 'PENDING', error: null }] })];
      if (n === 2) return [session({ status: 'PENDING', resources: [{ resourceId: 'r1', resourceName: 'bastion', ip: '203.0.113.7', status: 'APPLYING', error: null }] })];
      return [session({ status: 'ACTIVE', resources: [{ resourceId: 'r1', resourceName: 'bastion', ip: '203.0.113.7', status: 'APPLIED', error: null }] })];
    };
    const { fetchImpl } = setup({ sessions: sequence });
    const listCalls = () => calls(fetchImpl, 'GET', '/api/sessions');

    await act(async () => {
      await vi.advanceTimersByTimeAsync(0);
    });
    expect(listCalls()).toBe(1);
    expect(screen.getByText('PENDING')).toBeInTheDocument();
    expect(screen.getByText('Updating')).toBeInTheDocument();

    await act(async () => {
      await vi.advanceTimersByTimeAsync(POLL_INTERVAL_MS);
    });
    expect(listCalls()).toBe(2);

    await act(async () => {
      await vi.advanceTimersByTimeAsync(POLL_INTERVAL_MS);
    });
    expect(listCalls()).toBe(3);
    expect(screen.getByText('ACTIVE')).toBeInTheDocument();
    expect(screen.queryByText('Updating')).not.toBeInTheDocument();

    await act(async () => {
      await vi.advanceTimersByTimeAsync(POLL_INTERVAL_MS * 10);
    });
    expect(listCalls()).toBe(3);
  });

  it('does not poll when nothing is in flight, and starts after a stop', async () => {
    vi.useFakeTimers();
    let stopped = false;
    const { fetchImpl } = setup({
      sessions: () => [stopped ? session({ status: 'CANCELLED', endedAt: new Date().toISOString() }) : session()],
    });
    await act(async () => {
      await vi.advanceTimersByTimeAsync(POLL_INTERVAL_MS * 5);
    });
    expect(calls(fetchImpl, 'GET', '/api/sessions')).toBe(1);

    // Stop → the API answers EXPIRING → polling resumes until CANCELLED.
    stopped = true;
    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: 'Stop session' }));
      await vi.advanceTimersByTimeAsync(0);
    });
    expect(screen.getByText('EXPIRING')).toHaveClass('badge--yellow');
    await act(async () => {
      await vi.advanceTimersByTimeAsync(POLL_INTERVAL_MS);
    });
    expect(calls(fetchImpl, 'GET', '/api/sessions')).toBe(2);
    expect(screen.getByText('CANCELLED')).toBeInTheDocument();
    await act(async () => {
      await vi.advanceTimersByTimeAsync(POLL_INTERVAL_MS * 5);
    });
    expect(calls(fetchImpl, 'GET', '/api/sessions')).toBe(2);
  });
});
