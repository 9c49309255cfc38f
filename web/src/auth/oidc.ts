// Authorization-code flow with PKCE (RFC 7636, S256) against the configured OIDC issuer.
// Kept deliberately small: discovery, the authorize URL, the state check and the token exchange.

export interface OidcSettings {
  issuer: string;
  clientId: string;
  redirectUri: string;
  scope?: string;
  bearer?: 'id' | 'access';
}

export interface Discovery {
  authorization_endpoint: string;
  token_endpoint: string;
  end_session_endpoint?: string;
}

export interface PendingLogin {
  state: string;
  codeVerifier: string;
}

export const PENDING_KEY = 'entryguard.oidc.pending';
export const DEFAULT_SCOPE = 'openid email profile';

export class OidcError extends Error {}

export function base64UrlEncode(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A random URL-safe string from `byteLength` random bytes (32 bytes → 43 characters). */
export function randomString(byteLength = 32): string {
  const bytes = new Uint8Array(byteLength);
  crypto.getRandomValues(bytes);
  return base64UrlEncode(bytes);
}

/** The S256 code challenge: BASE64URL(SHA-256(ASCII(code_verifier))). */
export async function pkceChallenge(codeVerifier: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(codeVerifier));
  return base64UrlEncode(new Uint8Array(digest));
}

export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

export async function discover(issuer: string, fetchImpl: typeof fetch = fetch): Promise<Discovery> {
  const res = await fetchImpl(discoveryUrl(issuer));
  if (!res.ok) throw new OidcError(`Cannot read the sign-in provider's configuration (HTTP ${res.status})`);
  const doc = (await res.json()) as Partial<Discovery>;
  if (!doc.authorization_endpoint || !doc.token_endpoint) {
    throw new OidcError("The sign-in provider's configuration has no authorization or token endpoint");
  }
  return doc as Discovery;
}

export function buildAuthorizeUrl(
  authorizationEndpoint: string,
  p: { clientId: string; redirectUri: string; scope?: string; state: string; codeChallenge: string },
): string {
  const url = new URL(authorizationEndpoint);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', p.clientId);
  url.searchParams.set('redirect_uri', p.redirectUri);
  url.searchParams.set('scope', p.scope || DEFAULT_SCOPE);
  url.searchParams.set('state', p.state);
  url.searchParams.set('code_challenge', p.codeChallenge);
  url.searchParams.set('code_challenge_method', 'S256');
  return url.toString();
}

/** Throws unless the `state` that came back is the one this browser sent. */
export function checkState(returned: string | null, pending: PendingLogin | null): void {
  if (!pending) throw new OidcError('No sign-in was started in this browser tab. Please sign in again.');
  if (!returned || returned !== pending.state) {
    throw new OidcError('The sign-in response does not match the request (state mismatch). Please sign in again.');
  }
}

/** Starts a sign-in: remembers state and verifier, returns the URL to send the browser to. */
export async function beginLogin(
  s: OidcSettings,
  storage: Storage = sessionStorage,
  fetchImpl: typeof fetch = fetch,
): Promise<string> {
  const d = await discover(s.issuer, fetchImpl);
  const pending: PendingLogin = { state: randomString(16), codeVerifier: randomString(32) };
  storage.setItem(PENDING_KEY, JSON.stringify(pending));
  return buildAuthorizeUrl(d.authorization_endpoint, {
    clientId: s.clientId,
    redirectUri: s.redirectUri,
    scope: s.scope,
    state: pending.state,
    codeChallenge: await pkceChallenge(pending.codeVerifier),
  });
}

export function isCallback(href: string): boolean {
  const u = new URL(href);
  return u.searchParams.has('state') && (u.searchParams.has('code') || u.searchParams.has('error'));
}

function readPending(storage: Storage): PendingLogin | null {
  try {
    const raw = storage.getItem(PENDING_KEY);
    return raw ? (JSON.parse(raw) as PendingLogin) : null;
  } catch {
    return null;
  }
}

/** Finishes a sign-in on the redirect URI: checks state, exchanges the code, returns the bearer token. */
export async function completeLogin(
  s: OidcSettings,
  href: string,
  storage: Storage = sessionStorage,
  fetchImpl: typeof fetch = fetch,
): Promise<string> {
  const u = new URL(href);
  const pending = readPending(storage);
  storage.removeItem(PENDING_KEY);
  const error = u.searchParams.get('error');
  if (error) {
    throw new OidcError(u.searchParams.get('error_description') || `Sign-in was refused (${error})`);
  }
  checkState(u.searchParams.get('state'), pending);
  const code = u.searchParams.get('code');
  if (!code) throw new OidcError('The sign-in response has no authorization code');
  const d = await discover(s.issuer, fetchImpl);
  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code,
    redirect_uri: s.redirectUri,
    client_id: s.clientId,
    code_verifier: pending!.codeVerifier,
  });
  const res = await fetchImpl(d.token_endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: body.toString(),
  });
  const tokens = (await res.json().catch(() => ({}))) as {
    id_token?: string;
    access_token?: string;
    error?: string;
    error_description?: string;
  };
  if (!res.ok) {
    throw new OidcError(tokens.error_description || `The token exchange failed (HTTP ${res.status})`);
  }
  const token = s.bearer === 'access' ? tokens.access_token : (tokens.id_token ?? tokens.access_token);
  if (!token) throw new OidcError('The sign-in provider returned no token');
  return token;
}
