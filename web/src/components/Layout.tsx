import { useState } from 'react';
import { NavLink, useLocation } from 'react-router';
import type { Me } from '../api/types';
import { PAGES, HOME_PATH, type NavSection, type PageRoute } from '../routes';
import { Alert } from './ui';
import { CloseIcon, LogoutIcon, MenuIcon, ShieldIcon } from './Icons';

function NavItem({ page }: { page: PageRoute }) {
  return (
    <li>
      <NavLink to={`/${page.path}`} className={({ isActive }) => `nav__link ${isActive ? 'is-active' : ''}`}>
        {page.icon}
        <span>{page.title}</span>
      </NavLink>
    </li>
  );
}

function NavList({ section, labelledBy }: { section: NavSection; labelledBy?: string }) {
  return (
    <ul className="nav__list" aria-labelledby={labelledBy}>
      {PAGES.filter((p) => p.section === section).map((p) => (
        <NavItem key={p.path} page={p} />
      ))}
    </ul>
  );
}

export function Layout({ me, onSignOut, children }: { me: Me; onSignOut: () => void; children: React.ReactNode }) {
  // The phone-width menu closes on navigation: it is open only on the page it was opened on.
  const { pathname } = useLocation();
  const [openOn, setOpenOn] = useState<string | null>(null);
  const open = openOn === pathname;

  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <aside className={`sidebar ${open ? 'is-open' : ''}`}>
        <div className="sidebar__top">
          <a href={`#/${HOME_PATH}`} className="brand">
            <ShieldIcon size={28} className="brand-icon" />
            <span className="brand__name">EntryGuard</span>
          </a>
          <button
            type="button"
            className="btn btn--icon sidebar__toggle"
            aria-expanded={open}
            aria-controls="sidebar-nav"
            aria-label={open ? 'Close menu' : 'Open menu'}
            onClick={() => setOpenOn(open ? null : pathname)}
          >
            {open ? <CloseIcon /> : <MenuIcon />}
          </button>
        </div>
        <nav id="sidebar-nav" className="nav" aria-label="Main">
          <NavList section="main" />
          {me.user.isAdmin && (
            <>
              <p className="nav__section" id="nav-admin">
                Admin
              </p>
              <NavList section="admin" labelledBy="nav-admin" />
            </>
          )}
          <p className="nav__section" id="nav-account">
            Account
          </p>
          <NavList section="account" labelledBy="nav-account" />
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
