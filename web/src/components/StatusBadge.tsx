import type { CredentialStatus, EntryStatus, SessionStatus } from '../api/types';
import {
  ENTRY_COLORS,
  ENTRY_DESCRIPTIONS,
  SESSION_COLORS,
  SESSION_DESCRIPTIONS,
  type BadgeColor,
} from '../lib/sessions';

export function Badge({ color, children, title }: { color: BadgeColor; children: React.ReactNode; title?: string }) {
  return (
    <span className={`badge badge--${color}`} data-color={color} title={title}>
      <span className="badge__dot" aria-hidden="true" />
      {children}
    </span>
  );
}

export function SessionStatusBadge({ status }: { status: SessionStatus }) {
  return (
    <Badge color={SESSION_COLORS[status] ?? 'gray'} title={SESSION_DESCRIPTIONS[status]}>
      {status}
    </Badge>
  );
}

export function EntryStatusBadge({ status }: { status: EntryStatus }) {
  return (
    <Badge color={ENTRY_COLORS[status] ?? 'gray'} title={ENTRY_DESCRIPTIONS[status]}>
      {status}
    </Badge>
  );
}

const CREDENTIAL: Record<CredentialStatus, { color: BadgeColor; label: string; title: string }> = {
  VALID: { color: 'green', label: 'Valid', title: 'The credential was verified against the cloud provider' },
  INVALID: { color: 'red', label: 'Invalid', title: 'The cloud provider rejected this credential' },
  UNVERIFIED: { color: 'gray', label: 'Unverified', title: 'Not checked yet — click Validate' },
};

export function CredentialStatusBadge({ status }: { status: CredentialStatus }) {
  const c = CREDENTIAL[status] ?? CREDENTIAL.UNVERIFIED;
  return (
    <Badge color={c.color} title={c.title}>
      {c.label}
    </Badge>
  );
}

export function IpVersionBadge({ version }: { version: 'v4' | 'v6' }) {
  return (
    <span className={`ipv ipv--${version}`} aria-label={version === 'v4' ? 'IPv4' : 'IPv6'}>
      {version}
    </span>
  );
}
