import { render, screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { CredentialStatus, EntryStatus, SessionStatus } from '../api/types';
import { CredentialStatusBadge, EntryStatusBadge, IpVersionBadge, SessionStatusBadge } from './StatusBadge';

describe('status badges', () => {
  const sessionCases: [SessionStatus, string][] = [
    ['PENDING', 'blue'],
    ['ACTIVE', 'green'],
    ['PARTIAL', 'orange'],
    ['FAILED', 'red'],
    ['EXPIRING', 'yellow'],
    ['EXPIRED', 'gray'],
    ['CANCELLED', 'gray'],
  ];
  it.each(sessionCases)('session %s is a %s badge labelled with the status', (status, color) => {
    render(<SessionStatusBadge status={status} />);
    const badge = screen.getByText(status);
    expect(badge).toHaveClass('badge', `badge--${color}`);
    expect(badge).toHaveAttribute('data-color', color);
    expect(badge).toHaveAttribute('title');
  });

  const entryCases: [EntryStatus, string][] = [
    ['PENDING', 'blue'],
    ['APPLYING', 'blue'],
    ['APPLIED', 'green'],
    ['FAILED', 'red'],
    ['REMOVING', 'yellow'],
    ['REMOVED', 'gray'],
  ];
  it.each(entryCases)('resource IP %s is a %s badge', (status, color) => {
    render(<EntryStatusBadge status={status} />);
    expect(screen.getByText(status)).toHaveClass(`badge--${color}`);
  });

  const credCases: [CredentialStatus, string, string][] = [
    ['VALID', 'Valid', 'green'],
    ['INVALID', 'Invalid', 'red'],
    ['UNVERIFIED', 'Unverified', 'gray'],
  ];
  it.each(credCases)('credential %s reads "%s" in %s', (status, label, color) => {
    render(<CredentialStatusBadge status={status} />);
    expect(screen.getByText(label)).toHaveClass(`badge--${color}`);
  });

  it('labels IP versions v4 and v6', () => {
    render(
      <>
        <IpVersionBadge version="v4" />
        <IpVersionBadge version="v6" />
      </>,
    );
    expect(screen.getByLabelText('IPv4')).toHaveTextContent('v4');
    expect(screen.getByLabelText('IPv6')).toHaveTextContent('v6');
  });
});
