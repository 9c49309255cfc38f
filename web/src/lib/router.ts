import { useEffect, useState } from 'react';

/** Hash routes (#/sessions, #/admin/resources): work on any static host without rewrites. */
export type Route =
  | 'sessions'
  | 'tokens'
  | 'admin/live-access'
  | 'admin/credentials'
  | 'admin/resources'
  | 'admin/roles'
  | 'admin/users'
  | 'admin/iam-policy'
  | 'admin/audit-logs'
  | 'admin/webhooks'
  | 'admin/organization';

export const ROUTES: Route[] = [
  'sessions',
  'tokens',
  'admin/live-access',
  'admin/credentials',
  'admin/resources',
  'admin/roles',
  'admin/users',
  'admin/iam-policy',
  'admin/audit-logs',
  'admin/webhooks',
  'admin/organization',
];

export function parseHash(hash: string): Route {
  const path = hash.replace(/^#\/?/, '').replace(/\/+$/, '');
  return (ROUTES as string[]).includes(path) ? (path as Route) : 'sessions';
}

export function href(route: Route): string {
  return `#/${route}`;
}

export function useRoute(): [Route, (r: Route) => void] {
  const [route, setRoute] = useState<Route>(() => parseHash(window.location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(window.location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  const go = (r: Route) => {
    window.location.hash = `/${r}`;
  };
  return [route, go];
}
