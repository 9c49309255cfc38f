import { describe, expect, it, vi } from 'vitest';
import {
  base64UrlEncode,
  beginLogin,
  buildAuthorizeUrl,
  checkState,
  completeLogin,
  discoveryUrl,
  isCallback,
  OidcError,
  PENDING_KEY,
  pkceChallenge,
  randomString,
} from './oidc';

const settings = {
  issuer: 'https://login.example.com/tenant/',
  clientId: 'entryguard-spa',
  redirectUri: 'https://app.example.com/',
};

function idpFetch(tokenResponse: { status: number; body: unknown } = { status: 200, body: { id_token: 'ID.TOKEN', access_token: 'ACCESS' } }) {
  return vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    if (url === 'https://login.example.com/tenant/.well-known/openid-configuration') {
      return new Response(
        JSON.stringify({ authorization_endpoint: 'https://login.example.com/authorize', token_endpoint: 'https://login.example.com/token' }),
        { status: 200 },
      );
    }
    if (url === 'https://login.example.com/token' && init?.method === 'POST') {
      return new Response(JSON.stringify(tokenResponse.body), { status: tokenResponse.status });
    }
    return new Response('not found', { status: 404 });
  });
}

describe('PKCE', () => {
  it('computes the S256 challenge of RFC 7636 appendix B', async () => {
    expect(await pkceChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  });

  it('makes URL-safe random verifiers of 43 characters from 32 bytes', () => {
    const v = randomString(32);
    expect(v).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(randomString(32)).not.toBe(v);
    expect(base64UrlEncode(new Uint8Array([251, 255, 191]))).toBe('-_-_');
  });
});

describe('URL building', () => {
  it('builds the discovery URL without a double slash', () => {
    expect(discoveryUrl('https://login.example.com/tenant/')).toBe('https://login.example.com/tenant/.well-known/openid-configuration');
    expect(discoveryUrl('https://login.example.com')).toBe('https://login.example.com/.well-known/openid-configuration');
  });

  it('builds the authorize URL with code flow, S256 and state', () => {
    const u = new URL(
      buildAuthorizeUrl('https://login.example.com/authorize?prompt=login', {
        clientId: 'c',
        redirectUri: 'https://app.example.com/',
        state: 'st',
        codeChallenge: 'ch',
      }),
    );
    expect(u.origin + u.pathname).toBe('https://login.example.com/authorize');
    expect(Object.fromEntries(u.searchParams)).toEqual({
      prompt: 'login',
      response_type: 'code',
      client_id: 'c',
      redirect_uri: 'https://app.example.com/',
      scope: 'openid email profile',
      state: 'st',
      code_challenge: 'ch',
      code_challenge_method: 'S256',
    });
  });

  it('recognises the callback URL', () => {
    expect(isCallback('https://app.example.com/?code=abc&state=xyz')).toBe(true);
    expect(isCallback('https://app.example.com/?error=access_denied&state=xyz')).toBe(true);
    expect(isCallback('https://app.example.com/#/sessions')).toBe(false);
  });
});

describe('state check', () => {
  it('accepts only the state this tab sent', () => {
    expect(() => checkState('abc', { state: 'abc', codeVerifier: 'v' })).not.toThrow();
    expect(() => checkState('evil', { state: 'abc', codeVerifier: 'v' })).toThrow(OidcError);
    expect(() => checkState(null, { state: 'abc', codeVerifier: 'v' })).toThrow(/state mismatch/);
    expect(() => checkState('abc', null)).toThrow(/No sign-in was started/);
  });
});

describe('login round trip', () => {
  it('begins with a stored state and verifier, then exchanges the code with the verifier', async () => {
    const fetchImpl = idpFetch();
    const url = new URL(await beginLogin(settings, sessionStorage, fetchImpl as unknown as typeof fetch));
    const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY)!);
    expect(url.searchParams.get('state')).toBe(pending.state);
    expect(url.searchParams.get('code_challenge')).toBe(await pkceChallenge(pending.codeVerifier));

    const token = await completeLogin(
      settings,
      `https://app.example.com/?code=the-code&state=${pending.state}`,
      sessionStorage,
      fetchImpl as unknown as typeof fetch,
    );
    expect(token).toBe('ID.TOKEN');
    expect(sessionStorage.getItem(PENDING_KEY)).toBeNull();
    const [, init] = fetchImpl.mock.calls.find(([u]) => String(u).endsWith('/token'))!;
    expect(Object.fromEntries(new URLSearchParams(String(init!.body)))).toEqual({
      grant_type: 'authorization_code',
      code: 'the-code',
      redirect_uri: 'https://app.example.com/',
      client_id: 'entryguard-spa',
      code_verifier: pending.codeVerifier,
    });
  });

  it('uses the access token when configured', async () => {
    const fetchImpl = idpFetch();
    sessionStorage.setItem(PENDING_KEY, JSON.stringify({ state: 's', codeVerifier: 'v' }));
    const token = await completeLogin({ ...settings, bearer: 'access' }, 'https://app.example.com/?code=c&state=s', sessionStorage, fetchImpl as unknown as typeof fetch);
    expect(token).toBe('ACCESS');
  });

  it('refuses a response whose state does not match, without calling the token endpoint', async () => {
    const fetchImpl = idpFetch();
    sessionStorage.setItem(PENDING_KEY, JSON.stringify({ state: 's', codeVerifier: 'v' }));
    await expect(
      completeLogin(settings, 'https://app.example.com/?code=c&state=forged', sessionStorage, fetchImpl as unknown as typeof fetch),
    ).rejects.toThrow(/state mismatch/);
    expect(fetchImpl).not.toHaveBeenCalled();
  });

  it('reports the provider error and token endpoint failures', async () => {
    sessionStorage.setItem(PENDING_KEY, JSON.stringify({ state: 's', codeVerifier: 'v' }));
    await expect(
      completeLogin(settings, 'https://app.example.com/?error=access_denied&error_description=User+cancelled&state=s', sessionStorage, idpFetch() as unknown as typeof fetch),
    ).rejects.toThrow('User cancelled');
    sessionStorage.setItem(PENDING_KEY, JSON.stringify({ state: 's', codeVerifier: 'v' }));
    await expect(
      completeLogin(
        settings,
        'https://app.example.com/?code=c&state=s',
        sessionStorage,
        idpFetch({ status: 400, body: { error: 'invalid_grant', error_description: 'Code expired' } }) as unknown as typeof fetch,
      ),
    ).rejects.toThrow('Code expired');
  });
});
