import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { Queries } from '../../lib/queries';
import { calls, makeApi } from '../../test/helpers';
import { validateWebhook, WebhooksPage, type Webhook, type WebhookDelivery } from './Webhooks';

const SECRET = `whsec_${'ab'.repeat(32)}`;

/** An in-memory webhooks API: POST adds to the list, PATCH changes it, test events are delivered. */
function setup() {
  const hooks: Webhook[] = [];
  const log: WebhookDelivery[] = [];
  const { api, fetchImpl } = makeApi(({ method, path, body }) => {
    if (method === 'GET' && path === '/api/admin/webhooks') return { body: hooks };
    if (method === 'POST' && path === '/api/admin/webhooks') {
      const b = body as { url: string; events: string[]; format: 'JSON' | 'SLACK' };
      if (b.url.includes('169.254')) {
        return {
          status: 400,
          body: { error: { code: 'VALIDATION_FAILED', message: 'Invalid url', fields: { url: '169.254.169.254 is a link-local address' } } },
        };
      }
      const h: Webhook = { id: `w${hooks.length + 1}`, url: b.url, events: b.events, format: b.format, enabled: true, createdAt: new Date().toISOString() };
      hooks.push(h);
      return { status: 201, body: { webhook: h, secret: SECRET } };
    }
    const one = path.match(/^\/api\/admin\/webhooks\/([^/]+)(\/.*)?$/);
    if (one) {
      const h = hooks.find((x) => x.id === one[1]);
      if (!h) return undefined;
      if (method === 'PATCH') {
        Object.assign(h, body);
        return { body: h };
      }
      if (method === 'POST' && one[2] === '/test') {
        const now = new Date().toISOString();
        const d: WebhookDelivery = {
          id: `d${log.length + 1}`,
          endpointId: h.id,
          event: 'webhook.test',
          facts: { message: 'A test event' },
          status: 'DELIVERED',
          attempts: 1,
          responseCode: 204,
          lastError: null,
          createdAt: now,
          updatedAt: now,
          nextAttemptAt: now,
        };
        log.unshift(d);
        return { status: 202, body: d };
      }
      if (method === 'GET' && one[2] === '/deliveries') return { body: log.filter((d) => d.endpointId === h.id) };
    }
    return undefined;
  });
  render(<WebhooksPage api={api} />, { wrapper: Queries });
  return { fetchImpl, hooks };
}

describe('validateWebhook', () => {
  it('needs an http(s) URL and at least one event', () => {
    expect(validateWebhook('', ['session.failed']).url).toBe('URL is required');
    expect(validateWebhook('ftp://x.example', ['session.failed']).url).toBe('Use an https:// URL');
    expect(validateWebhook('https://hooks.example.com/x', []).events).toBe('Pick at least one event');
    expect(validateWebhook('https://hooks.example.com/x', ['session.failed'])).toEqual({});
  });
});

describe('WebhooksPage', () => {
  it('adds an endpoint, shows its secret once, sends a test event and disables it', async () => {
    const user = userEvent.setup();
    const { fetchImpl, hooks } = setup();
    await screen.findByText('No webhook endpoints yet');
    const form = screen.getByRole('form', { name: 'Add webhook endpoint' });

    await user.type(within(form).getByLabelText('URL'), 'https://169.254.169.254/');
    await user.click(within(form).getByRole('button', { name: 'Add endpoint' }));
    expect(await within(form).findByText('169.254.169.254 is a link-local address')).toBeInTheDocument();

    await user.clear(within(form).getByLabelText('URL'));
    await user.type(within(form).getByLabelText('URL'), 'https://hooks.example.com/x');
    await user.selectOptions(within(form).getByLabelText('Format'), 'SLACK');
    await user.click(within(form).getByRole('button', { name: 'Add endpoint' }));
    expect(await screen.findByLabelText('Signing secret')).toHaveValue(SECRET);
    expect(hooks[0].format).toBe('SLACK');

    const row = (await screen.findByText('https://hooks.example.com/x')).closest('tr')!;
    await user.click(within(row).getByRole('button', { name: 'Send test event' }));
    const deliveries = await screen.findByRole('table', { name: 'Deliveries' });
    expect(await within(deliveries).findByText('DELIVERED')).toBeInTheDocument();
    expect(calls(fetchImpl, 'POST', '/api/admin/webhooks/w1/test')).toBe(1);

    await user.click(within(row).getByRole('button', { name: 'Disable' }));
    await waitFor(() => expect(within(row).getByText('Disabled')).toBeInTheDocument());
    expect(within(row).getByRole('button', { name: 'Send test event' })).toBeDisabled();

    await user.click(screen.getByRole('button', { name: 'Hide secret' }));
    expect(screen.queryByLabelText('Signing secret')).not.toBeInTheDocument();
  });
});
