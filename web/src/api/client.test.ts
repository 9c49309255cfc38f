import { describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../config';
import { Api, ApiError } from './client';

function api(status: number, body: unknown, onUnauthorized = vi.fn()) {
  const fetchImpl = vi.fn(async () => new Response(body === null ? null : JSON.stringify(body), { status }));
  return { a: new Api({ baseUrl: 'https://api.example.com/', getToken: () => 'tok', onUnauthorized, fetchImpl }), fetchImpl, onUnauthorized };
}

describe('Api', () => {
  it('sends the bearer token and JSON to the configured base URL', async () => {
    const { a, fetchImpl } = api(202, { id: 's1' });
    await a.startSession(2);
    expect(fetchImpl).toHaveBeenCalledWith('https://api.example.com/api/sessions', {
      method: 'POST',
      headers: { Accept: 'application/json', Authorization: 'Bearer tok', 'Content-Type': 'application/json' },
      body: '{"durationHours":2}',
    });
  });

  it('turns the error body into an ApiError with message and fields', async () => {
    const { a } = api(400, { error: { code: 'VALIDATION_FAILED', message: 'ports[0].fromPort: bad', fields: { 'ports[0].fromPort': 'bad' } } });
    const err = await a.createResource({ name: 'x', credentialId: 'c', securityGroupId: 'sg-0123abcd', region: 'eu-west-1', ports: [] }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 400, code: 'VALIDATION_FAILED', message: 'ports[0].fromPort: bad', fields: { 'ports[0].fromPort': 'bad' } });
  });

  it('on a 401 renews the token once and sends the request again with it', async () => {
    let token = 'old';
    const fetchImpl = vi.fn(async (_u: RequestInfo | URL, init?: RequestInit) => {
      const ok = (init!.headers as Record<string, string>).Authorization === 'Bearer new';
      return new Response(JSON.stringify(ok ? { id: 'me' } : { error: { code: 'UNAUTHENTICATED', message: 'expired' } }), { status: ok ? 200 : 401 });
    });
    const onUnauthorized = vi.fn();
    const renew = vi.fn(async () => {
      token = 'new';
      return true;
    });
    const a = new Api({ baseUrl: '', getToken: () => token, onUnauthorized, renew, fetchImpl });
    await expect(a.me()).resolves.toEqual({ id: 'me' });
    expect(renew).toHaveBeenCalledTimes(1);
    expect(fetchImpl).toHaveBeenCalledTimes(2);
    expect(onUnauthorized).not.toHaveBeenCalled();

    // A renewal that fails, or a renewed token the API still refuses, ends the sign-in.
    const refused = api(401, { error: { code: 'UNAUTHENTICATED', message: 'no' } });
    const renewing = new Api({ baseUrl: '', getToken: () => 'x', onUnauthorized: refused.onUnauthorized, renew, fetchImpl: refused.fetchImpl });
    await expect(renewing.me()).rejects.toMatchObject({ status: 401 });
    expect(refused.fetchImpl).toHaveBeenCalledTimes(2);
    expect(refused.onUnauthorized).toHaveBeenCalledTimes(1);
    const failing = new Api({ baseUrl: '', getToken: () => 'x', onUnauthorized, renew: async () => Promise.reject(new Error('offline')), fetchImpl: refused.fetchImpl });
    await expect(failing.me()).rejects.toMatchObject({ status: 401 });
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
  });

  it('calls onUnauthorized on a 401', async () => {
    const { a, onUnauthorized } = api(401, { error: { code: 'UNAUTHENTICATED', message: 'Sign in again' } });
    await expect(a.me()).rejects.toMatchObject({ status: 401, message: 'Sign in again' });
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
  });

  it('handles 204 and non-JSON errors', async () => {
    await expect(api(204, null).a.deleteRole('r1')).resolves.toBeUndefined();
    const fetchImpl = vi.fn(async () => new Response('<html>bad gateway</html>', { status: 502 }));
    const a = new Api({ baseUrl: '', getToken: () => null, fetchImpl });
    await expect(a.me()).rejects.toMatchObject({ status: 502, message: 'The request failed (HTTP 502).' });
  });

  it('builds audit-log queries without empty parameters', async () => {
    const { a, fetchImpl } = api(200, { items: [], nextCursor: null });
    await a.auditLogs({ type: 'auth.login', userId: '', cursor: 'a/b', limit: 50 });
    expect((fetchImpl.mock.calls[0] as unknown[])[0]).toBe('https://api.example.com/api/admin/audit-logs?type=auth.login&cursor=a%2Fb&limit=50');
  });
});

describe('address detection', () => {
  const probes = { v4: 'https://v4.api.example.com', v6: 'https://v6.api.example.com' };

  it('asks both single-family hosts at once and sends the proofs with the start', async () => {
    const fetchImpl = vi.fn(async (url: RequestInfo | URL, init?: RequestInit) => {
      const u = String(url);
      if (u.endsWith('/api/sessions')) return new Response(init!.body as string, { status: 202 });
      const version = u.includes('v4.') ? 'v4' : 'v6';
      expect((init!.headers as Record<string, string>).Authorization).toBe('Bearer tok');
      return new Response(JSON.stringify({ address: 'x', version, proof: `proof-${version}` }), { status: 200 });
    });
    const a = new Api({ baseUrl: '', getToken: () => 'tok', fetchImpl, addressProbes: probes });
    const found = await a.detectAddresses();
    expect(found).toEqual({ proofs: ['proof-v4', 'proof-v6'], probed: ['v4', 'v6'], found: ['v4', 'v6'] });
    expect(fetchImpl.mock.calls.map((c) => String(c[0]))).toEqual(['https://v4.api.example.com/api/address', 'https://v6.api.example.com/api/address']);
    await expect(a.startSession(2, found.proofs)).resolves.toEqual({ durationHours: 2, addressProofs: ['proof-v4', 'proof-v6'] });
  });

  it('gives up on a family that fails, answers the wrong family or takes too long', async () => {
    const fetchImpl = vi.fn((url: RequestInfo | URL, init?: RequestInit) => {
      if (String(url).includes('v6.')) {
        return new Promise<Response>((_, reject) => init!.signal!.addEventListener('abort', () => reject(new Error('aborted'))));
      }
      return Promise.resolve(new Response(JSON.stringify({ address: 'x', version: 'v4', proof: 'p4' }), { status: 200 }));
    });
    const a = new Api({ baseUrl: '', getToken: () => 'tok', fetchImpl, addressProbes: probes });
    await expect(a.detectAddresses(20)).resolves.toEqual({ proofs: ['p4'], probed: ['v4', 'v6'], found: ['v4'] });

    const wrong = new Api({
      baseUrl: '',
      getToken: () => 'tok',
      addressProbes: { v6: probes.v6 },
      fetchImpl: vi.fn(async () => new Response(JSON.stringify({ address: 'x', version: 'v4', proof: 'p' }), { status: 200 })),
    });
    await expect(wrong.detectAddresses()).resolves.toEqual({ proofs: [], probed: ['v6'], found: [] });
  });

  it('probes nothing without probe URLs and starts as before', async () => {
    const { a, fetchImpl } = api(202, { id: 's1' });
    await expect(a.detectAddresses()).resolves.toEqual({ proofs: [], probed: [], found: [] });
    expect(fetchImpl).not.toHaveBeenCalled();
  });
});

describe('config', () => {
  it('reads dev and oidc configurations', () => {
    expect(parseConfig({ apiBaseUrl: '', auth: { mode: 'dev' } })).toEqual({ apiBaseUrl: '', auth: { mode: 'dev' }, addressProbes: {} });
    expect(
      parseConfig({ apiBaseUrl: 'https://api.example.com', auth: { mode: 'oidc', issuer: 'https://i', clientId: 'c', redirectUri: 'https://r/' } }),
    ).toEqual({
      apiBaseUrl: 'https://api.example.com',
      auth: { mode: 'oidc', issuer: 'https://i', clientId: 'c', redirectUri: 'https://r/', scope: undefined, bearer: 'id' },
      addressProbes: {},
    });
  });
  it('reads the probe URLs of each family and ignores anything else', () => {
    expect(parseConfig({ addressProbes: { v4: 'http://127.0.0.1:8080', v6: 'http://[::1]:8080' } }).addressProbes).toEqual({
      v4: 'http://127.0.0.1:8080',
      v6: 'http://[::1]:8080',
    });
    expect(parseConfig({ addressProbes: { v4: 'javascript:alert(1)', v6: 7, v5: 'http://x' } }).addressProbes).toEqual({});
    expect(parseConfig({ addressProbes: 'http://x' }).addressProbes).toEqual({});
  });
  it('rejects an incomplete oidc configuration', () => {
    expect(() => parseConfig({ auth: { mode: 'oidc', issuer: 'https://i' } })).toThrow(/clientId/);
    expect(() => parseConfig({ auth: { mode: 'saml' } })).toThrow(/unknown auth.mode/);
  });
});
