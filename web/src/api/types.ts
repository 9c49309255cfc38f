// The JSON shapes of docs/api.md.

export type Tier = 'FREE' | 'STARTER' | 'TEAM' | 'BUSINESS';
export const TIERS: Tier[] = ['FREE', 'STARTER', 'TEAM', 'BUSINESS'];

export type SessionStatus =
  | 'PENDING'
  | 'ACTIVE'
  | 'PARTIAL'
  | 'FAILED'
  | 'EXPIRING'
  | 'EXPIRED'
  | 'CANCELLED';

export type EntryStatus = 'PENDING' | 'APPLYING' | 'APPLIED' | 'FAILED' | 'REMOVING' | 'REMOVED';

export interface Me {
  user: { id: string; email: string; isAdmin: boolean };
  organization: { id: string; name: string; tier: Tier; status: OrgStatus };
  allowedDurationsHours: number[];
  maxSessionDurationHours: number;
  maxConcurrentSessions: number | null;
  resourceCount: number;
}

/** A personal API token as listed: never the secret. */
export interface ApiToken {
  id: string;
  name: string;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
}

/** The answer to creating a token: the only time its secret (`egt_…`) is available. */
export interface CreatedApiToken extends ApiToken {
  token: string;
}

export interface ApiTokenInput {
  name: string;
  /** 1 to 365; omitted for a token that never expires. */
  expiresInDays?: number;
}

export interface IpAddress {
  address: string;
  version: 'v4' | 'v6';
}

export interface SessionResource {
  resourceId: string;
  resourceName: string;
  ip: string;
  status: EntryStatus;
  error: string | null;
}

export interface Session {
  id: string;
  userId: string;
  status: SessionStatus;
  ipAddresses: IpAddress[];
  resourceCount: number;
  createdAt: string;
  expiresAt: string;
  endedAt: string | null;
  resources: SessionResource[];
  /** The admin who stopped the session, when its own user did not. */
  stoppedBy: { userId: string; email: string } | null;
}

export interface LiveSession {
  user: { id: string; email: string; isAdmin: boolean };
  session: Session;
}

export interface SessionActivity {
  days: { date: string; started: number; failed: number }[];
  failureRate: number;
}

export interface DevUser {
  email: string;
  isAdmin: boolean;
  organizationName: string;
}

export type OrgStatus = 'ACTIVE' | 'SUSPENDED';

export interface Organization {
  id: string;
  name: string;
  /** Read-only: the operator of the deployment sets the plan. */
  tier: Tier;
  status: OrgStatus;
}

export type CredentialStatus = 'UNVERIFIED' | 'VALID' | 'INVALID';
export type Provider = 'aws' | 'simulated';

export interface Credential {
  id: string;
  name: string;
  provider: Provider;
  region: string;
  accessKeyId: string | null;
  roleArn: string | null;
  externalId: string | null;
  hasSecret: boolean;
  status: CredentialStatus;
  /** Why the last check found the credential INVALID. */
  statusMessage?: string | null;
  accountId: string | null;
  checkedAt: string | null;
  createdAt: string;
}

export interface CredentialInput {
  name: string;
  provider: Provider;
  region: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  roleArn?: string;
  externalId?: string;
}

export type Protocol = 'tcp' | 'udp';

export interface PortRange {
  protocol: Protocol;
  fromPort: number;
  toPort: number;
}

export interface Resource {
  id: string;
  name: string;
  credentialId: string;
  securityGroupId: string;
  region: string;
  ports: PortRange[];
  createdAt: string;
}

export interface ResourceInput {
  name: string;
  credentialId: string;
  securityGroupId: string;
  region: string;
  ports: PortRange[];
}

export interface Role {
  id: string;
  name: string;
  maxSessionDurationHours: number | null;
  resourceIds: string[];
  userIds: string[];
  createdAt: string;
}

export interface RoleInput {
  name: string;
  maxSessionDurationHours: number | null;
  resourceIds: string[];
  userIds: string[];
}

export interface User {
  id: string;
  email: string;
  isAdmin: boolean;
  resourceIds: string[];
  roleIds: string[];
  createdAt: string;
}

export interface UserInput {
  email: string;
  isAdmin: boolean;
  resourceIds: string[];
}

export interface AuditEvent {
  id: string;
  time: string;
  type: string;
  actorId: string | null;
  actorEmail: string | null;
  ip: string | null;
  sessionId: string | null;
  resourceId: string | null;
  outcome: string;
  message: string;
}

export interface AuditPage {
  items: AuditEvent[];
  nextCursor: string | null;
}

export interface AuditQuery {
  from?: string;
  to?: string;
  type?: string;
  userId?: string;
  cursor?: string;
  limit?: number;
}

export interface IamPolicy {
  credentialId: string;
  policy: unknown;
  trustPolicy: unknown | null;
}
