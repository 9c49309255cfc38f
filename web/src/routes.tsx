import { lazy, type ReactNode } from 'react';
import type { Api } from './api/client';
import type { Organization } from './api/types';
import {
  BadgeIcon,
  BellIcon,
  BuildingIcon,
  ClockIcon,
  DocIcon,
  KeyIcon,
  ListIcon,
  ServerIcon,
  ShieldIcon,
  TerminalIcon,
  UsersIcon,
} from './components/Icons';
import { SessionsPage } from './pages/Sessions';
import { TokensPage } from './pages/Tokens';

// Admin pages load on first visit: most people never open them, and Live access brings chart.js.
const AuditLogsPage = lazy(() => import('./pages/admin/AuditLogs').then((m) => ({ default: m.AuditLogsPage })));
const CredentialsPage = lazy(() => import('./pages/admin/Credentials').then((m) => ({ default: m.CredentialsPage })));
const IamPolicyPage = lazy(() => import('./pages/admin/IamPolicy').then((m) => ({ default: m.IamPolicyPage })));
const LiveAccessPage = lazy(() => import('./pages/admin/LiveAccess').then((m) => ({ default: m.LiveAccessPage })));
const OrganizationPage = lazy(() => import('./pages/admin/Organization').then((m) => ({ default: m.OrganizationPage })));
const ResourcesPage = lazy(() => import('./pages/admin/Resources').then((m) => ({ default: m.ResourcesPage })));
const RolesPage = lazy(() => import('./pages/admin/Roles').then((m) => ({ default: m.RolesPage })));
const WebhooksPage = lazy(() => import('./pages/admin/Webhooks').then((m) => ({ default: m.WebhooksPage })));
const UsersPage = lazy(() => import('./pages/admin/Users').then((m) => ({ default: m.UsersPage })));

/** What a page gets from the signed-in shell. */
export interface PageContext {
  api: Api;
  onOrganizationChange: (o: Organization) => void;
}

export type NavSection = 'main' | 'admin' | 'account';

export interface PageRoute {
  /** The hash path without the leading slash: `#/admin/resources` is `admin/resources`. */
  path: string;
  /** The navigation label, the page's heading and the first part of the document title. */
  title: string;
  section: NavSection;
  icon: ReactNode;
  render: (ctx: PageContext) => ReactNode;
}

// Every page of the app, in navigation order: the router and the sidebar both read this list, so a
// new page is one entry here. Pages in the "admin" section are for administrators only.
export const PAGES: PageRoute[] = [
  { path: 'sessions', title: 'Sessions', section: 'main', icon: <ClockIcon />, render: ({ api }) => <SessionsPage api={api} /> },
  { path: 'admin/live-access', title: 'Live access', section: 'admin', icon: <ShieldIcon size={18} />, render: ({ api }) => <LiveAccessPage api={api} /> },
  { path: 'admin/credentials', title: 'Credentials', section: 'admin', icon: <KeyIcon />, render: ({ api }) => <CredentialsPage api={api} /> },
  { path: 'admin/resources', title: 'Resources', section: 'admin', icon: <ServerIcon />, render: ({ api }) => <ResourcesPage api={api} /> },
  { path: 'admin/roles', title: 'Roles', section: 'admin', icon: <BadgeIcon />, render: ({ api }) => <RolesPage api={api} /> },
  { path: 'admin/users', title: 'Users', section: 'admin', icon: <UsersIcon />, render: ({ api }) => <UsersPage api={api} /> },
  { path: 'admin/iam-policy', title: 'IAM Policy', section: 'admin', icon: <DocIcon />, render: ({ api }) => <IamPolicyPage api={api} /> },
  { path: 'admin/audit-logs', title: 'Audit Logs', section: 'admin', icon: <ListIcon />, render: ({ api }) => <AuditLogsPage api={api} /> },
  { path: 'admin/webhooks', title: 'Webhooks', section: 'admin', icon: <BellIcon />, render: ({ api }) => <WebhooksPage api={api} /> },
  {
    path: 'admin/organization',
    title: 'Organization',
    section: 'admin',
    icon: <BuildingIcon />,
    render: ({ api, onOrganizationChange }) => <OrganizationPage api={api} onSaved={onOrganizationChange} />,
  },
  { path: 'tokens', title: 'API tokens', section: 'account', icon: <TerminalIcon />, render: ({ api }) => <TokensPage api={api} /> },
];

/** Where the app opens, and where unknown paths lead. */
export const HOME_PATH = 'sessions';
