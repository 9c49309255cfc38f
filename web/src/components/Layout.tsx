import { useEffect, useState } from 'react';
import type { Me } from '../api/types';
import { href, type Route } from '../lib/router';
import { Alert } from './ui';
import {
  BadgeIcon,
  BuildingIcon,
  ClockIcon,
  CloseIcon,
  DocIcon,
  KeyIcon,
  ListIcon,
  LogoutIcon,
  MenuIcon,
  ServerIcon,
  ShieldIcon,
  TerminalIcon,
  UsersIcon,
} from './Icons';

const ADMIN_ITEMS: { route: Route; label: string; icon: React.ReactNode }[] = [
  { route: 'admin/live-access', label: 'Live access', icon: <ShieldIcon size={18} /> },
  { route: 'admin/credentials', label: 'Credentials', icon: <KeyIcon /> },
  { route: 'admin/resources', label: 'Resources', icon: <ServerIcon /> },
  { route: 'admin/roles', label: 'Roles', icon: <BadgeIcon /> },
  { route: 'admin/users', label: 'Users', icon: <UsersIcon /> },
  { route: 'admin/iam-policy', label: 'IAM Policy', icon: <DocIcon /> },
  { route: 'admin/audit-logs', label: 'Audit Logs', icon: <ListIcon /> },
  { route: 'admin/webhooks', label: 'Webhooks', icon: <TerminalIcon /> },
  { route: 'admin/organization', label: 'Organization', icon: <BuildingIcon /> },
];

function NavItem({ route, current, label, icon }: { route: Route; current: Route; label: string; icon: React.ReactNode }) {
  const active = route === current;
  return (
    <li>
      <a href={href(route)} className={`nav__link ${active ? 'is-active' : ''}`} aria-current={active ? 'page' : undefined}>
        {icon}
        <span>{label}</span>
      </a>
    </li>
  );
}

export function Layout({ me, route, onSignOut, children }: { me: Me; route: Route; onSignOut: () => void; children: React.ReactNode }) {
  const [open, setOpen] = useState(false);
  useEffect(() => setOpen(false), [route]);

  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <aside className={`sidebar ${open ? 'is-open' : ''}`}>
        <div className="sidebar__top">
          <a href={href('sessions')} className="brand">
            <ShieldIcon size={28} className="brand-icon" />
            <span className="brand__name">EntryGuard</span>
          </a>
          <button
            type="button"
            className="btn btn--icon sidebar__toggle"
            aria-expanded={open}
            aria-controls="sidebar-nav"
            aria-label={open ? 'Close menu' : 'Open menu'}
            onClick={() => setOpen((o) => !o)}
          >
            {open ? <CloseIcon /> : <MenuIcon />}
          </button>
        </div>
        <nav id="sidebar-nav" className="nav" aria-label="Main">
          <ul className="nav__list">
            <NavItem route="sessions" current={route} label="Sessions" icon={<ClockIcon />} />
          </ul>
          {me.user.isAdmin && (
            <>
              <p className="nav__section" id="nav-admin">
                Admin
              </p>
              <ul className="nav__list" aria-labelledby="nav-admin">
                {ADMIN_ITEMS.map((i) => (
                  <NavItem key={i.route} {...i} current={route} />
                ))}
              </ul>
            </>
          )}
          <p className="nav__section" id="nav-account">
            Account
          </p>
          <ul className="nav__list" aria-labelledby="nav-account">
            <NavItem route="tokens" current={route} label="API tokens" icon={<TerminalIcon />} />
          </ul>
          <div className="account">
            <span className="avatar" aria-hidden="true">
              {me.user.email.charAt(0).toUpperCase()}
            </span>
            <div className="account__text">
              <span className="account__email" title={me.user.email}>
                {me.user.email}
              </span>
              <span className="account__org">
                {me.organization.name} · {me.organization.tier.charAt(0) + me.organization.tier.slice(1).toLowerCase()}
              </span>
            </div>
            <button type="button" className="btn btn--icon btn--ghost" onClick={onSignOut} aria-label="Sign out" title="Sign out">
              <LogoutIcon />
            </button>
          </div>
        </nav>
      </aside>
      <main id="main" className="main" tabIndex={-1}>
        <div className="main__inner">
          {me.organization.status === 'SUSPENDED' && (
            <Alert>Your organization is suspended: sessions cannot be started or extended. Contact the operator of this EntryGuard deployment.</Alert>
          )}
          {children}
        </div>
      </main>
    </div>
  );
}
