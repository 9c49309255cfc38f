/** The runtime configuration, read from /config.json (written at deploy time). */
export type AuthConfig =
  | { mode: 'dev' }
  | {
      mode: 'oidc';
      issuer: string;
      clientId: string;
      redirectUri: string;
      /** Defaults to "openid email profile". */
      scope?: string;
      /** Which token to send as Bearer: the ID token (default) or the access token. */
      bearer?: 'id' | 'access';
    };

/**
 * Base URLs of the API reachable over one IP family only (`GET /api/address` there proves the
 * caller's address of that family). Either or both may be missing.
 */
export interface AddressProbes {
  v4?: string;
  v6?: string;
}

export interface AppConfig {
  apiBaseUrl: string;
  auth: AuthConfig;
  /** Absent: the session covers the address the start request came from only. */
  addressProbes?: AddressProbes;
}

export const DEFAULT_CONFIG: AppConfig = { apiBaseUrl: '', auth: { mode: 'dev' }, addressProbes: {} };

function parseProbes(raw: unknown): AddressProbes {
  if (!raw || typeof raw !== 'object') return {};
  const r = raw as Record<string, unknown>;
  const out: AddressProbes = {};
  for (const family of ['v4', 'v6'] as const) {
    const url = r[family];
    if (typeof url === 'string' && /^https?:\/\//.test(url)) out[family] = url;
  }
  return out;
}

export class ConfigError extends Error {}

export function parseConfig(raw: unknown): AppConfig {
  if (!raw || typeof raw !== 'object') throw new ConfigError('config.json is not a JSON object');
  const r = raw as Record<string, unknown>;
  const apiBaseUrl = typeof r.apiBaseUrl === 'string' ? r.apiBaseUrl : '';
  const addressProbes = parseProbes(r.addressProbes);
  const auth = (r.auth ?? { mode: 'dev' }) as Record<string, unknown>;
  if (auth.mode === 'dev' || auth.mode === undefined) return { apiBaseUrl, auth: { mode: 'dev' }, addressProbes };
  if (auth.mode === 'oidc') {
    for (const k of ['issuer', 'clientId', 'redirectUri']) {
      if (typeof auth[k] !== 'string' || !auth[k]) {
        throw new ConfigError(`config.json: auth.${k} is required when auth.mode is "oidc"`);
      }
    }
    return {
      apiBaseUrl,
      addressProbes,
      auth: {
        mode: 'oidc',
        issuer: auth.issuer as string,
        clientId: auth.clientId as string,
        redirectUri: auth.redirectUri as string,
        scope: typeof auth.scope === 'string' ? auth.scope : undefined,
        bearer: auth.bearer === 'access' ? 'access' : 'id',
      },
    };
  }
  throw new ConfigError(`config.json: unknown auth.mode "${String(auth.mode)}"`);
}

export async function loadConfig(fetchImpl: typeof fetch = fetch): Promise<AppConfig> {
  const res = await fetchImpl('/config.json', { cache: 'no-store' });
  if (res.status === 404) return DEFAULT_CONFIG;
  if (!res.ok) throw new ConfigError(`Cannot load /config.json (HTTP ${res.status})`);
  return parseConfig(await res.json());
}
