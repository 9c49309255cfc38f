import type { AddressProbes } from '../config';
import type {
  AddressProof,
  ApiToken,
  ApiTokenInput,
  AuditPage,
  AuditQuery,
  CreatedApiToken,
  Credential,
  CredentialInput,
  DevUser,
  IamPolicy,
  IpVersion,
  LiveSession,
  Me,
  Organization,
  Resource,
  ResourceInput,
  Role,
  RoleInput,
  Session,
  SessionActivity,
  User,
  UserInput,
} from './types';

/** An error answered by the API (`{"error":{"code","message","fields"}}`) or a network failure. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly fields: Record<string, string>;

  constructor(status: number, code: string, message: string, fields?: Record<string, string>) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.fields = fields ?? {};
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error) return err.message;
  return 'Something went wrong';
}

export function fieldErrors(err: unknown): Record<string, string> {
  return err instanceof ApiError ? err.fields : {};
}

export interface ApiOptions {
  baseUrl: string;
  getToken: () => string | null;
  /** Called when any request answers 401: the caller returns to the sign-in screen. */
  onUnauthorized?: () => void;
  /**
   * Tried once when a request answers 401, before giving up: true when a fresh token is now
   * available (`getToken` returns it), and the request is sent again.
   */
  renew?: () => Promise<boolean>;
  fetchImpl?: typeof fetch;
  /** Where to prove the caller's address of each IP family (config.json's `addressProbes`). */
  addressProbes?: AddressProbes;
}

/** What the probes found: a proof per family that answered in time. */
export interface DetectedAddresses {
  proofs: string[];
  /** The families probed (configured), and those that answered. */
  probed: IpVersion[];
  found: IpVersion[];
}

/** How long one probe may take: a family the network lacks must not hold up the start. */
export const PROBE_TIMEOUT_MS = 3000;

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export class Api {
  private readonly opts: ApiOptions;

  constructor(opts: ApiOptions) {
    this.opts = opts;
  }

  async request<T>(method: Method, path: string, body?: unknown, retried = false): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    const token = this.opts.getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const doFetch = this.opts.fetchImpl ?? fetch;
    let res: Response;
    try {
      res = await doFetch(joinUrl(this.opts.baseUrl, path), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, 'NETWORK', 'Cannot reach the EntryGuard API. Check your connection and try again.');
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let data: unknown = undefined;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = undefined;
      }
    }
    if (!res.ok) {
      const e = (data as { error?: { code?: string; message?: string; fields?: Record<string, string> } } | undefined)
        ?.error;
      const err = new ApiError(
        res.status,
        e?.code ?? `HTTP_${res.status}`,
        e?.message ?? `The request failed (HTTP ${res.status}).`,
        e?.fields,
      );
      if (res.status === 401) {
        if (!retried && this.opts.renew && (await this.opts.renew().catch(() => false))) {
          return this.request<T>(method, path, body, true);
        }
        this.opts.onUnauthorized?.();
      }
      throw err;
    }
    return data as T;
  }

  // Health and development routes
  devUsers() {
    return this.request<DevUser[]>('GET', '/api/dev/users');
  }
  devLogin(email: string) {
    return this.request<{ token: string }>('POST', '/api/dev/login', { email });
  }
  /** Sign-up with the identity provider's token: a new organization on the Free plan. */
  signUp(organizationName: string) {
    return this.request<{ organization: Organization; user: Me['user'] }>('POST', '/api/signup', { organizationName });
  }
  /** The development login's sign-up: a new organization on the Free plan, with this admin. */
  devSignUp(email: string, organizationName: string) {
    return this.request<{ token: string }>('POST', '/api/dev/signup', { email, organizationName });
  }

  // Me and sessions
  me() {
    return this.request<Me>('GET', '/api/me');
  }
  listSessions() {
    return this.request<Session[]>('GET', '/api/sessions');
  }
  /**
   * Asks each configured single-family host of the API for the caller's address and its proof,
   * in parallel, each with a short timeout. A family that fails or times out is simply not found.
   */
  async detectAddresses(timeoutMs = PROBE_TIMEOUT_MS): Promise<DetectedAddresses> {
    const probes = this.opts.addressProbes ?? {};
    const probed = (['v4', 'v6'] as const).filter((f) => probes[f]);
    const doFetch = this.opts.fetchImpl ?? fetch;
    const token = this.opts.getToken();
    const answers = await Promise.all(
      probed.map(async (family) => {
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), timeoutMs);
        try {
          const res = await doFetch(joinUrl(probes[family] as string, '/api/address'), {
            method: 'GET',
            headers: { Accept: 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
            signal: controller.signal,
          });
          if (!res.ok) return null;
          const body = (await res.json()) as Partial<AddressProof>;
          return typeof body.proof === 'string' && body.version === family ? body.proof : null;
        } catch {
          return null;
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const found = probed.filter((_, i) => answers[i] !== null);
    return { proofs: answers.filter((p): p is string => p !== null), probed, found };
  }
  startSession(durationHours: number, addressProofs: string[] = []) {
    return this.request<Session>('POST', '/api/sessions', addressProofs.length > 0 ? { durationHours, addressProofs } : { durationHours });
  }
  stopSession(id: string) {
    return this.request<Session>('POST', `/api/sessions/${encodeURIComponent(id)}/stop`);
  }
  extendSession(id: string, hours = 2) {
    return this.request<Session>('POST', `/api/sessions/${encodeURIComponent(id)}/extend`, { hours });
  }

  // Personal API tokens
  async listTokens() {
    return (await this.request<{ tokens: ApiToken[] }>('GET', '/api/me/tokens')).tokens;
  }
  createToken(input: ApiTokenInput) {
    return this.request<CreatedApiToken>('POST', '/api/me/tokens', input);
  }
  revokeToken(id: string) {
    return this.request<void>('DELETE', `/api/me/tokens/${encodeURIComponent(id)}`);
  }

  // Admin
  getOrganization() {
    return this.request<Organization>('GET', '/api/admin/organization');
  }
  putOrganization(input: { name: string; ipv6Prefix?: number }) {
    return this.request<Organization>('PUT', '/api/admin/organization', input);
  }
  listLiveSessions(filter: { userId?: string; resourceId?: string } = {}) {
    const q = new URLSearchParams();
    if (filter.userId) q.set('userId', filter.userId);
    if (filter.resourceId) q.set('resourceId', filter.resourceId);
    const qs = q.toString();
    return this.request<LiveSession[]>('GET', `/api/admin/sessions${qs ? `?${qs}` : ''}`);
  }
  stopAnySession(id: string) {
    return this.request<Session>('POST', `/api/admin/sessions/${encodeURIComponent(id)}/stop`);
  }
  /** Without a resource: every live session of the organization. */
  revokeAll(resourceId?: string) {
    return this.request<{ stopped: number }>('POST', '/api/admin/sessions/revoke-all', resourceId ? { resourceId } : undefined);
  }
  sessionActivity() {
    return this.request<SessionActivity>('GET', '/api/admin/sessions/activity');
  }
  listCredentials() {
    return this.request<Credential[]>('GET', '/api/admin/credentials');
  }
  createCredential(input: CredentialInput) {
    return this.request<Credential>('POST', '/api/admin/credentials', input);
  }
  deleteCredential(id: string) {
    return this.request<void>('DELETE', `/api/admin/credentials/${encodeURIComponent(id)}`);
  }
  validateCredential(id: string) {
    return this.request<Credential>('POST', `/api/admin/credentials/${encodeURIComponent(id)}/validate`);
  }
  listResources() {
    return this.request<Resource[]>('GET', '/api/admin/resources');
  }
  createResource(input: ResourceInput) {
    return this.request<Resource>('POST', '/api/admin/resources', input);
  }
  updateResource(id: string, input: Partial<ResourceInput>) {
    return this.request<Resource>('PATCH', `/api/admin/resources/${encodeURIComponent(id)}`, input);
  }
  deleteResource(id: string) {
    return this.request<void>('DELETE', `/api/admin/resources/${encodeURIComponent(id)}`);
  }
  listRoles() {
    return this.request<Role[]>('GET', '/api/admin/roles');
  }
  createRole(input: RoleInput) {
    return this.request<Role>('POST', '/api/admin/roles', input);
  }
  updateRole(id: string, input: Partial<RoleInput>) {
    return this.request<Role>('PATCH', `/api/admin/roles/${encodeURIComponent(id)}`, input);
  }
  deleteRole(id: string) {
    return this.request<void>('DELETE', `/api/admin/roles/${encodeURIComponent(id)}`);
  }
  listUsers() {
    return this.request<User[]>('GET', '/api/admin/users');
  }
  createUser(input: UserInput) {
    return this.request<User>('POST', '/api/admin/users', input);
  }
  updateUser(id: string, input: Partial<UserInput>) {
    return this.request<User>('PATCH', `/api/admin/users/${encodeURIComponent(id)}`, input);
  }
  deleteUser(id: string) {
    return this.request<void>('DELETE', `/api/admin/users/${encodeURIComponent(id)}`);
  }
  auditLogs(q: AuditQuery) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) {
      if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
    }
    const qs = params.toString();
    return this.request<AuditPage>('GET', `/api/admin/audit-logs${qs ? `?${qs}` : ''}`);
  }
  iamPolicy(credentialId: string) {
    return this.request<IamPolicy>(
      'GET',
      `/api/admin/iam-policy?credentialId=${encodeURIComponent(credentialId)}`,
    );
  }
}

export function joinUrl(base: string, path: string): string {
  if (!base) return path;
  return base.replace(/\/+$/, '') + path;
}
