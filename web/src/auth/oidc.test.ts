import { afterEach, describe, expect, it, vi } from 'vitest';
import { beginLogin, completeLogin, isCallback, onRenewed, renewNow, userManager } from './oidc';

const ISSUER = 'https://login.example.com/tenant';
const settings = {
  issuer: ISSUER,
  clientId: 'entryguard-spa',
  redirectUri: 'https://app.example.com/',
};

function b64url(bytes: Uint8Array | string): string {
  const raw = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
  let bin = '';
  for (const b of raw) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** An unsigned JWT: the app never checks signatures (the API does). */
function idToken(n: number): string {
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: ISSUER, aud: settings.clientId, sub: 'user-1', email: 'dev@example.com', iat: now, exp: now + 3600, n };
  return `${b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}.sig`;
}

function claimsOf(jwt: string): { n: number } {
  return JSON.parse(atob(jwt.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/')));
}

async function s256(verifier: string): Promise<string> {
  return b64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
}

type TokenAnswer = { status: number; body: unknown };

/** The provider: discovery and a token endpoint answering from `answers` in turn. */
function provider(...answers: TokenAnswer[]) {
  const tokenCalls: Record<string, string>[] = [];
  const f = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    if (url === `${ISSUER}/.well-known/openid-configuration`) {
      return Response.json({
        issuer: ISSUER,
        authorization_endpoint: 'https://login.example.com/authorize',
        token_endpoint: 'https://login.example.com/token',
      });
    }
    if (url === 'https://login.example.com/token' && init?.method === 'POST') {
      tokenCalls.push(Object.fromEntries(new URLSearchParams(String(init.body))));
      const a = answers.shift() ?? { status: 500, body: {} };
      return new Response(JSON.stringify(a.body), { status: a.status, headers: { 'Content-Type': 'application/json' } });
    }
    return new Response('not found', { status: 404 });
  });
  vi.stubGlobal('fetch', f);
  return { tokenCalls };
}

const ok = (n: number, extra: Record<string, unknown> = {}): TokenAnswer => ({
  status: 200,
  body: { id_token: idToken(n), access_token: `ACCESS-${n}`, token_type: 'Bearer', expires_in: 3600, refresh_token: `REFRESH-${n}`, ...extra },
});

afterEach(async () => {
  await userManager(settings).removeUser();
  vi.unstubAllGlobals();
});

describe('sign-in request', () => {
  it('asks for an authorization code with an S256 PKCE challenge and a state', async () => {
    provider();
    const u = new URL(await beginLogin(settings));
    expect(u.origin + u.pathname).toBe('https://login.example.com/authorize');
    const p = Object.fromEntries(u.searchParams);
    expect(p).toMatchObject({
      response_type: 'code',
      client_id: 'entryguard-spa',
      redirect_uri: 'https://app.example.com/',
      scope: 'openid email profile',
      code_challenge_method: 'S256',
    });
    expect(p.state).toMatch(/^[0-9a-f]{32}$/);
    expect(p.code_challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(new URL(await beginLogin(settings)).searchParams.get('state')).not.toBe(p.state);
  });

  it('recognises the callback URL', () => {
    expect(isCallback('https://app.example.com/?code=abc&state=xyz')).toBe(true);
    expect(isCallback('https://app.example.com/?error=access_denied&state=xyz')).toBe(true);
    expect(isCallback('https://app.example.com/#/sessions')).toBe(false);
  });
});

describe('login round trip', () => {
  it('exchanges the code with the verifier of the challenge it sent, and returns the ID token', async () => {
    const { tokenCalls } = provider(ok(1));
    const u = new URL(await beginLogin(settings));
    const state = u.searchParams.get('state')!;
    const token = await completeLogin(settings, `https://app.example.com/?code=the-code&state=${state}`);
    expect(claimsOf(token).n).toBe(1);
    expect(tokenCalls).toHaveLength(1);
    const { code_verifier, ...rest } = tokenCalls[0]!;
    expect(rest).toEqual({
      grant_type: 'authorization_code',
      code: 'the-code',
      redirect_uri: 'https://app.example.com/',
      client_id: 'entryguard-spa',
    });
    expect(await s256(code_verifier!)).toBe(u.searchParams.get('code_challenge'));
  });

  it('uses the access token when configured', async () => {
    provider(ok(1));
    const state = new URL(await beginLogin(settings)).searchParams.get('state')!;
    const token = await completeLogin({ ...settings, bearer: 'access' }, `https://app.example.com/?code=c&state=${state}`);
    expect(token).toBe('ACCESS-1');
  });

  it('refuses a response whose state does not match, without calling the token endpoint', async () => {
    const { tokenCalls } = provider(ok(1));
    await beginLogin(settings);
    await expect(completeLogin(settings, 'https://app.example.com/?code=c&state=forged')).rejects.toThrow(/state mismatch/);
    expect(tokenCalls).toHaveLength(0);
  });

  it('reports the provider error and token endpoint failures', async () => {
    provider({ status: 400, body: { error: 'invalid_grant', error_description: 'Code expired' } });
    let state = new URL(await beginLogin(settings)).searchParams.get('state')!;
    await expect(
      completeLogin(settings, `https://app.example.com/?error=access_denied&error_description=User+cancelled&state=${state}`),
    ).rejects.toThrow('User cancelled');
    state = new URL(await beginLogin(settings)).searchParams.get('state')!;
    await expect(completeLogin(settings, `https://app.example.com/?code=c&state=${state}`)).rejects.toThrow('Code expired');
  });
});

describe('renewal', () => {
  it('renews with the refresh token, without a new sign-in, and hands on the new ID token', async () => {
    const { tokenCalls } = provider(ok(1), ok(2));
    const state = new URL(await beginLogin(settings)).searchParams.get('state')!;
    await completeLogin(settings, `https://app.example.com/?code=c&state=${state}`);
    const renewed: string[] = [];
    const stop = onRenewed(settings, (t) => renewed.push(t));
    // The expiry timer and a refused request may ask at once: one renewal serves both.
    const [a, b] = await Promise.all([renewNow(settings), renewNow(settings)]);
    stop();
    expect(a).toBe(b);
    expect(tokenCalls).toHaveLength(2);
    expect(tokenCalls[1]).toMatchObject({ grant_type: 'refresh_token', refresh_token: 'REFRESH-1', client_id: 'entryguard-spa' });
    expect(renewed).toHaveLength(1);
    expect(claimsOf(renewed[0]!).n).toBe(2);
  });

  it('keeps using the refresh token when the provider does not rotate it (Cognito)', async () => {
    const { tokenCalls } = provider(ok(1), ok(2, { refresh_token: undefined }), ok(3));
    const state = new URL(await beginLogin(settings)).searchParams.get('state')!;
    await completeLogin(settings, `https://app.example.com/?code=c&state=${state}`);
    await userManager(settings).signinSilent();
    const user = await userManager(settings).signinSilent();
    expect(tokenCalls.slice(1).map((c) => c.refresh_token)).toEqual(['REFRESH-1', 'REFRESH-1']);
    expect(claimsOf(user!.id_token!).n).toBe(3);
  });
});
