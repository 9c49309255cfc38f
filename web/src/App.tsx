import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { Api, ApiError, errorMessage } from './api/client';
import type { Me, Organization } from './api/types';
import { beginLogin, completeLogin, isCallback } from './auth/oidc';
import { tokenStore } from './auth/token';
import { Layout } from './components/Layout';
import { Alert, Loading } from './components/ui';
import type { AppConfig } from './config';
import { useRoute, type Route } from './lib/router';
import { AuditLogsPage } from './pages/admin/AuditLogs';
import { CredentialsPage } from './pages/admin/Credentials';
import { IamPolicyPage } from './pages/admin/IamPolicy';
import { LiveAccessPage } from './pages/admin/LiveAccess';
import { OrganizationPage } from './pages/admin/Organization';
import { ResourcesPage } from './pages/admin/Resources';
import { RolesPage } from './pages/admin/Roles';
import { UsersPage } from './pages/admin/Users';
import { WebhooksPage } from './pages/admin/Webhooks';
import { SessionsPage } from './pages/Sessions';
import { TokensPage } from './pages/Tokens';
import { DevSignIn, NewcomerSignUp, OidcSignIn } from './pages/SignIn';

const EXPIRED_NOTICE = 'Your sign-in has expired. Please sign in again.';

export function App({ config }: { config: AppConfig }) {
  const [token, setToken] = useState<string | null>(() => tokenStore.get());
  const [notice, setNotice] = useState<string | null>(null);
  const [callbackError, setCallbackError] = useState<string | null>(null);
  const [completing, setCompleting] = useState(
    () => config.auth.mode === 'oidc' && isCallback(window.location.href),
  );
  // A sign-in the identity provider verified but no organization knows yet.
  const [newcomer, setNewcomer] = useState<string | null>(null);

  const signOut = useCallback((message: string | null = null) => {
    tokenStore.clear();
    setToken(null);
    setNotice(message);
  }, []);

  const api = useMemo(
    () =>
      new Api({
        baseUrl: config.apiBaseUrl,
        getToken: () => tokenStore.get(),
        onUnauthorized: () => {
          if (tokenStore.get()) signOut(EXPIRED_NOTICE);
        },
      }),
    [config.apiBaseUrl, signOut],
  );

  const acceptToken = useCallback((t: string) => {
    tokenStore.set(t);
    setNotice(null);
    setToken(t);
  }, []);

  // OIDC: finish the authorization-code flow on the redirect URI (once, even under StrictMode).
  const completionStarted = useRef(false);
  useEffect(() => {
    if (!completing || config.auth.mode !== 'oidc' || completionStarted.current) return;
    completionStarted.current = true;
    const auth = config.auth;
    completeLogin(auth, window.location.href)
      .then(async (t) => {
        try {
          await new Api({ baseUrl: config.apiBaseUrl, getToken: () => t }).me();
          acceptToken(t);
        } catch (e) {
          if (e instanceof ApiError && e.status === 401) setNewcomer(t);
          else throw e;
        }
      })
      .catch((e) => setCallbackError(errorMessage(e)))
      .finally(() => {
        const u = new URL(window.location.href);
        window.history.replaceState(null, '', u.pathname + u.hash);
        setCompleting(false);
      });
  }, [completing, config.auth, config.apiBaseUrl, acceptToken]);

  if (completing) return <FullPageLoading label="Completing sign-in…" />;

  if (newcomer) {
    const token = newcomer;
    return (
      <NewcomerSignUp
        api={new Api({ baseUrl: config.apiBaseUrl, getToken: () => token })}
        onCreated={() => {
          setNewcomer(null);
          acceptToken(token);
        }}
        onCancel={() => setNewcomer(null)}
      />
    );
  }

  if (!token) {
    if (config.auth.mode === 'oidc') {
      const auth = config.auth;
      return (
        <OidcSignIn
          notice={notice}
          error={callbackError}
          onSignIn={async () => {
            window.location.assign(await beginLogin(auth));
          }}
        />
      );
    }
    return <DevSignIn api={api} onToken={acceptToken} notice={notice} />;
  }

  return <Shell key={token} api={api} onSignOut={() => signOut(null)} />;
}

function FullPageLoading({ label }: { label: string }) {
  return (
    <div className="fullpage">
      <Loading label={label} />
    </div>
  );
}

function Shell({ api, onSignOut }: { api: Api; onSignOut: () => void }) {
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [route] = useRoute();

  useEffect(() => {
    api
      .me()
      .then(setMe)
      .catch((e) => {
        if (!(e instanceof ApiError && e.status === 401)) setError(errorMessage(e));
      });
  }, [api]);

  useEffect(() => {
    document.title = `${TITLES[route]} · EntryGuard`;
  }, [route]);

  if (error) {
    return (
      <div className="fullpage">
        <div className="fullpage__box">
          <Alert kind="error">{error}</Alert>
          <button type="button" className="btn btn--secondary" onClick={onSignOut}>
            Back to sign-in
          </button>
        </div>
      </div>
    );
  }
  if (!me) return <FullPageLoading label="Loading EntryGuard…" />;

  const isAdminRoute = route.startsWith('admin/');
  return (
    <Layout me={me} route={route} onSignOut={onSignOut}>
      {isAdminRoute && !me.user.isAdmin ? (
        <Alert kind="error">This page is for administrators of your organization.</Alert>
      ) : (
        <Page route={route} api={api} onOrganizationChange={(organization) => setMe((m) => (m ? { ...m, organization } : m))} />
      )}
    </Layout>
  );
}

const TITLES: Record<Route, string> = {
  sessions: 'Sessions',
  tokens: 'API tokens',
  'admin/live-access': 'Live access',
  'admin/credentials': 'Credentials',
  'admin/resources': 'Resources',
  'admin/roles': 'Roles',
  'admin/users': 'Users',
  'admin/iam-policy': 'IAM Policy',
  'admin/audit-logs': 'Audit Logs',
  'admin/webhooks': 'Webhooks',
  'admin/organization': 'Organization',
};

function Page({ route, api, onOrganizationChange }: { route: Route; api: Api; onOrganizationChange: (o: Organization) => void }) {
  switch (route) {
    case 'sessions':
      return <SessionsPage api={api} />;
    case 'tokens':
      return <TokensPage api={api} />;
    case 'admin/live-access':
      return <LiveAccessPage api={api} />;
    case 'admin/credentials':
      return <CredentialsPage api={api} />;
    case 'admin/resources':
      return <ResourcesPage api={api} />;
    case 'admin/roles':
      return <RolesPage api={api} />;
    case 'admin/users':
      return <UsersPage api={api} />;
    case 'admin/iam-policy':
      return <IamPolicyPage api={api} />;
    case 'admin/audit-logs':
      return <AuditLogsPage api={api} />;
    case 'admin/webhooks':
      return <WebhooksPage api={api} />;
    case 'admin/organization':
      return <OrganizationPage api={api} onSaved={onOrganizationChange} />;
  }
}
