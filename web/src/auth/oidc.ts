// Sign-in with the configured OIDC provider through oidc-client-ts: authorization code with PKCE
// (S256), and renewal with the refresh token before the tokens expire (and when the API refuses
// one), so a sign-in lasts as long as the provider's refresh token does rather than the ID token's
// hour. Renewal never uses a hidden
// iframe (`prompt=none`): the app's Content-Security-Policy allows no frames.

import { ErrorResponse, OidcClient, UserManager, WebStorageStateStore, type OidcClientSettings, type User } from 'oidc-client-ts';

export interface OidcSettings {
  issuer: string;
  clientId: string;
  redirectUri: string;
  scope?: string;
  bearer?: 'id' | 'access';
}

export const DEFAULT_SCOPE = 'openid email profile';

export class OidcError extends Error {}

const managers = new Map<string, UserManager>();

function clientSettings(s: OidcSettings): OidcClientSettings {
  return {
    authority: s.issuer,
    client_id: s.clientId,
    redirect_uri: s.redirectUri,
    scope: s.scope || DEFAULT_SCOPE,
    response_type: 'code',
    // The pending sign-in and the tokens stay in this tab, like the bearer token.
    stateStore: new WebStorageStateStore({ store: sessionStorage }),
    loadUserInfo: false,
  };
}

/** One manager per settings for the page's lifetime: it owns the renewal timer. */
export function userManager(s: OidcSettings): UserManager {
  const key = JSON.stringify([s.issuer, s.clientId, s.redirectUri, s.scope ?? DEFAULT_SCOPE]);
  let m = managers.get(key);
  if (!m) {
    m = new UserManager({
      ...clientSettings(s),
      userStore: new WebStorageStateStore({ store: sessionStorage }),
      // Renewal is ours (below), so the timer and a refused request never spend the same refresh
      // token twice: providers that rotate refresh tokens would refuse the second use.
      automaticSilentRenew: false,
      monitorSession: false,
    });
    managers.set(key, m);
    m.events.addAccessTokenExpiring(() => void renewNow(s));
    // A reloaded page arms the expiry timer for the tokens this tab already has.
    void m.getUser();
  }
  return m;
}

/** The token the API accepts as `Authorization: Bearer …`. */
export function bearerOf(user: User, bearer: OidcSettings['bearer']): string {
  const token = bearer === 'access' ? user.access_token : (user.id_token ?? user.access_token);
  if (!token) throw new OidcError('The sign-in provider returned no token');
  return token;
}

/** Starts a sign-in: remembers state and PKCE verifier, returns the URL to send the browser to. */
export async function beginLogin(s: OidcSettings): Promise<string> {
  const request = await new OidcClient(clientSettings(s)).createSigninRequest({});
  return request.url;
}

export function isCallback(href: string): boolean {
  const u = new URL(href);
  return u.searchParams.has('state') && (u.searchParams.has('code') || u.searchParams.has('error'));
}

/** Finishes a sign-in on the redirect URI: checks state, exchanges the code, returns the bearer token. */
export async function completeLogin(s: OidcSettings, href: string): Promise<string> {
  let user: User;
  try {
    user = await userManager(s).signinRedirectCallback(href);
  } catch (e) {
    if (e instanceof ErrorResponse) {
      throw new OidcError(e.error_description || `Sign-in was refused (${e.error ?? 'unknown error'})`);
    }
    if (e instanceof Error && /state/i.test(e.message)) {
      throw new OidcError('The sign-in response does not match the request (state mismatch). Please sign in again.');
    }
    throw e;
  }
  return bearerOf(user, s.bearer);
}

const renewals = new Map<UserManager, Promise<string | null>>();

/**
 * Renews the tokens with the refresh token now: a minute before they expire, and when the API
 * refuses the current one (a laptop waking after the timer should have fired). One renewal at a
 * time; the new bearer token, or null when the provider would not renew.
 */
export function renewNow(s: OidcSettings): Promise<string | null> {
  const m = userManager(s);
  let p = renewals.get(m);
  if (!p) {
    p = m
      .signinSilent()
      .then((u) => (u ? bearerOf(u, s.bearer) : null))
      .catch(() => null)
      .finally(() => renewals.delete(m));
    renewals.set(m, p);
  }
  return p;
}

/** Calls `onToken` with each renewed bearer token; returns the unsubscribe function. */
export function onRenewed(s: OidcSettings, onToken: (token: string) => void): () => void {
  return userManager(s).events.addUserLoaded((user) => {
    try {
      onToken(bearerOf(user, s.bearer));
    } catch {
      // No token in the renewal: the current one is used until the API refuses it.
    }
  });
}

/** Forgets this tab's tokens, which also stops renewing them. */
export async function forget(s: OidcSettings): Promise<void> {
  await userManager(s).removeUser();
}
