// The JSON shapes of the API: names over the types generated from docs/openapi.json into
// ./schema.ts (`npm run gen:api`; web/ci.sh fails when schema.ts differs from a fresh generation).
// Only what the document does not describe is written here.

import type { components } from './schema';

type Schemas = components['schemas'];

export type Tier = Schemas['Tier'];
export const TIERS: Tier[] = ['FREE', 'STARTER', 'TEAM', 'BUSINESS'];
export type SessionStatus = Schemas['SessionStatus'];
export type EntryStatus = Schemas['EntryStatus'];
export type Me = Schemas['Me'];
export type ApiToken = Schemas['ApiToken'];
export type CreatedApiToken = Schemas['CreatedApiToken'];
export type ApiTokenInput = Schemas['NewApiToken'];
export type IpAddress = Schemas['IpAddress'];
export type IpVersion = Schemas['IpVersion'];
export type SessionResource = Schemas['SessionResource'];
export type Session = Schemas['Session'];
export type LiveSession = Schemas['LiveSession'];
export type SessionActivity = Schemas['SessionActivity'];
export type OrgStatus = Schemas['OrgStatus'];
export type Organization = Schemas['Organization'];
export type AddressProof = Schemas['Address'];
export type CredentialStatus = Schemas['CredentialStatus'];
export type Provider = Schemas['Provider'];
export type Credential = Schemas['Credential'];
export type CredentialInput = Schemas['NewCredential'];
export type PortRange = Schemas['PortRange'];
export type Protocol = PortRange['protocol'];
export type Resource = Schemas['Resource'];
export type ResourceInput = Schemas['NewResource'];
export type Role = Schemas['Role'];
export type RoleInput = Schemas['NewRole'];
export type User = Schemas['User'];
export type UserInput = Schemas['NewUser'];
export type AuditEvent = Schemas['AuditEvent'];
export type AuditPage = Schemas['AuditPage'];
export type IamPolicy = Schemas['IamPolicy'];

/** The development login's seeded people (`GET /api/dev/users`, not in the document). */
export interface DevUser {
  email: string;
  isAdmin: boolean;
  organizationName: string;
}

/** The query of `GET /api/admin/audit-logs`. */
export interface AuditQuery {
  from?: string;
  to?: string;
  type?: string;
  userId?: string;
  cursor?: string;
  limit?: number;
}
