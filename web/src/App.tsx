import { Suspense, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { Api, ApiError, errorMessage } from './api/client';
import type { Me } from './api/types';
import { beginLogin, completeLogin, forget, isCallback, onRenewed, renewNow } from './auth/oidc';
import { tokenStore } from './auth/token';
import { Layout } from './components/Layout';
import { Alert, Loading } from './components/ui';
import type { AppConfig } from './config';
import { Queries } from './lib/queries';
import { useQueryClient, useQuery } from '@tanstack/react-query';
import { HashRouter, Navigate, Route, Routes } from 'react-router';
import { DevSignIn, NewcomerSignUp, OidcSignIn } from './pages/SignIn';
import { HOME_PATH, PAGES, type PageContext, type PageRoute } from './routes';

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

  const signOut = useCallback(
    (message: string | null = null) => {
      tokenStore.clear();
      if (config.auth.mode === 'oidc') void forget(config.auth);
      setToken(null);
      setNotice(message);
    },
    [config.auth],
  );

  // OIDC: the provider's tokens are renewed before they expire; requests use the newest one.
  useEffect(() => {
    if (config.auth.mode !== 'oidc') return;
    return onRenewed(config.auth, (t) => {
      if (tokenStore.get()) tokenStore.set(t);
    });
  }, [config.auth]);

  const auth = config.auth;
  const api = useMemo(
    () =>
      new Api({
        baseUrl: config.apiBaseUrl,
        addressProbes: config.addressProbes,
        getToken: () => tokenStore.get(),
        onUnauthorized: () => {
          if (tokenStore.get()) signOut(EXPIRED_NOTICE);
        },
        renew: auth.mode === 'oidc' ? async () => (await renewNow(auth)) !== null && tokenStore.get() !== null : undefined,
      }),
    [config.apiBaseUrl, config.addressProbes, auth, signOut],
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
  return (
    <Queries>
      <SignedIn api={api} onSignOut={onSignOut} />
    </Queries>
  );
}

function SignedIn({ api, onSignOut }: { api: Api; onSignOut: () => void }) {
  const client = useQueryClient();
  const meQuery = useQuery({ queryKey: ['me'], queryFn: () => api.me() });
  const me = meQuery.data ?? null;
  // A 401 already returned to the sign-in screen.
  const failure = meQuery.error;
  const error = failure && !(failure instanceof ApiError && failure.status === 401) ? errorMessage(failure) : null;

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

  const ctx: PageContext = {
    api,
    onOrganizationChange: (organization) => client.setQueryData<Me>(['me'], (m) => (m ? { ...m, organization } : m)),
  };
  return (
    <HashRouter>
      <Layout me={me} onSignOut={onSignOut}>
        <Suspense fallback={<Loading />}>
          <Routes>
            {PAGES.map((page) => (
              <Route key={page.path} path={`/${page.path}`} element={<Page page={page} me={me} ctx={ctx} />} />
            ))}
            <Route path="*" element={<Navigate to={`/${HOME_PATH}`} replace />} />
          </Routes>
        </Suspense>
      </Layout>
    </HashRouter>
  );
}

function Page({ page, me, ctx }: { page: PageRoute; me: Me; ctx: PageContext }) {
  useEffect(() => {
    document.title = `${page.title} · EntryGuard`;
  }, [page.title]);
  if (page.section === 'admin' && !me.user.isAdmin) {
    return <Alert kind="error">This page is for administrators of your organization.</Alert>;
  }
  return page.render(ctx);
}
