import type { PortRange } from '../api/types';

export type Errors = Record<string, string>;

export const SG_ID_RE = /^sg-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;
export const REGION_RE = /^[a-z]{2}(?:-gov|-iso[a-z]*)?-[a-z]+-\d{1,2}$/;
export const ROLE_ARN_RE = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
export const ACCESS_KEY_RE = /^[A-Z0-9]{16,128}$/;
export const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function required(errors: Errors, key: string, value: string, label = 'This field') {
  if (!value.trim()) errors[key] = `${label} is required`;
}

export function checkSecurityGroupId(errors: Errors, key: string, value: string) {
  const v = value.trim();
  if (!v) errors[key] = 'Security group ID is required';
  else if (!SG_ID_RE.test(v)) errors[key] = 'Use a security group ID like sg-0123abcd or sg-0123456789abcdef0';
}

export function checkRegion(errors: Errors, key: string, value: string) {
  const v = value.trim();
  if (!v) errors[key] = 'Region is required';
  else if (!REGION_RE.test(v)) errors[key] = 'Use an AWS region code like eu-west-1';
}

/** Port rows as typed in the form (strings), checked and converted. */
export interface PortRow {
  protocol: 'tcp' | 'udp';
  fromPort: string;
  toPort: string;
}

function parsePort(errors: Errors, key: string, raw: string, label: string): number | null {
  const v = raw.trim();
  if (!v) {
    errors[key] = `${label} is required`;
    return null;
  }
  if (!/^\d+$/.test(v) || Number(v) > 65535) {
    errors[key] = `${label} must be a whole number between 0 and 65535`;
    return null;
  }
  return Number(v);
}

export function checkPorts(errors: Errors, rows: PortRow[]): PortRange[] {
  if (rows.length === 0) errors.ports = 'Add at least one port range';
  const out: PortRange[] = [];
  rows.forEach((r, i) => {
    const from = parsePort(errors, `ports[${i}].fromPort`, r.fromPort, 'From port');
    const to = parsePort(errors, `ports[${i}].toPort`, r.toPort, 'To port');
    if (from !== null && to !== null) {
      if (from > to) errors[`ports[${i}].toPort`] = 'To port must be greater than or equal to From port';
      out.push({ protocol: r.protocol, fromPort: from, toPort: to });
    }
  });
  return out;
}

export function hasErrors(e: Errors): boolean {
  return Object.keys(e).length > 0;
}
