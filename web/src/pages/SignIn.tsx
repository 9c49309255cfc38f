import { useEffect, useState } from 'react';
import { errorMessage, type Api } from '../api/client';
import type { DevUser } from '../api/types';
import { ShieldIcon } from '../components/Icons';
import { Alert, Spinner } from '../components/ui';

function Brand() {
  return (
    <div className="signin__brand">
      <ShieldIcon size={36} className="brand-icon" />
      <span className="signin__name">EntryGuard</span>
    </div>
  );
}

/** The development login of the local runner: pick a seeded user or type an e-mail. No password. */
export function DevSignIn({ api, onToken, notice }: { api: Api; onToken: (token: string) => void; notice?: string | null }) {
  const [users, setUsers] = useState<DevUser[] | null>(null);
  const [usersError, setUsersError] = useState<string | null>(null);
  const [email, setEmail] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState<string | null>(null);
  const [signUp, setSignUp] = useState({ email: '', organizationName: '' });

  useEffect(() => {
    api
      .devUsers()
      .then(setUsers)
      .catch((e) => {
        setUsers([]);
        setUsersError(errorMessage(e));
      });
  }, [api]);

  async function login(address: string) {
    const value = address.trim();
    if (!value) {
      setError('Enter an e-mail address');
      return;
    }
    setError(null);
    setPending(value);
    try {
      const { token } = await api.devLogin(value);
      onToken(token);
    } catch (e) {
      setError(errorMessage(e));
      setPending(null);
    }
  }

  async function createOrganization() {
    const address = signUp.email.trim();
    const name = signUp.organizationName.trim();
    if (!address || !name) {
      setError('Enter your e-mail address and a name for the organization');
      return;
    }
    setError(null);
    setPending(address);
    try {
      const { token } = await api.devSignUp(address, name);
      onToken(token);
    } catch (e) {
      setError(errorMessage(e));
      setPending(null);
    }
  }

  return (
    <main className="signin">
      <div className="signin__card">
        <Brand />
        <h1 className="signin__title">Sign in</h1>
        <div className="dev-banner" role="note">
          <strong>Development login</strong>
          <span>No password is checked. This sign-in exists only on the local runner — never in a deployed EntryGuard.</span>
        </div>
        {notice && <Alert kind="info">{notice}</Alert>}
        {error && <Alert kind="error">{error}</Alert>}

        <h2 className="signin__subtitle">Choose a demo user</h2>
        {users === null ? (
          <p className="muted">
            <Spinner /> Loading users…
          </p>
        ) : users.length === 0 ? (
          <p className="muted">{usersError ? `Could not list users: ${usersError}` : 'No users are seeded.'}</p>
        ) : (
          <ul className="user-picker">
            {users.map((u) => (
              <li key={u.email}>
                <button type="button" className="user-picker__btn" onClick={() => void login(u.email)} disabled={pending !== null}>
                  <span className="avatar" aria-hidden="true">
                    {u.email.charAt(0).toUpperCase()}
                  </span>
                  <span className="user-picker__text">
                    <span className="user-picker__email">{u.email}</span>
                    <span className="user-picker__org">{u.organizationName}</span>
                  </span>
                  <span className={`tag ${u.isAdmin ? 'tag--admin' : ''}`}>{u.isAdmin ? 'Admin' : 'Member'}</span>
                  {pending === u.email && <Spinner />}
                </button>
              </li>
            ))}
          </ul>
        )}

        <div className="divider">
          <span>or</span>
        </div>
        <form
          className="signin__form"
          onSubmit={(e) => {
            e.preventDefault();
            void login(email);
          }}
        >
          <label htmlFor="dev-email" className="field__label">
            E-mail address
          </label>
          <div className="inline-form">
            <input
              id="dev-email"
              className="input"
              type="email"
              autoComplete="email"
              placeholder="you@example.com"
              value={email}
              onChange={(e) => setEmail(e.target.value)}
            />
            <button type="submit" className="btn btn--primary" disabled={pending !== null}>
              Sign in
            </button>
          </div>
        </form>

        <div className="divider">
          <span>new here?</span>
        </div>
        <form
          className="signin__form"
          aria-label="Create an organization"
          onSubmit={(e) => {
            e.preventDefault();
            void createOrganization();
          }}
        >
          <h2 className="signin__subtitle">Create an organization</h2>
          <p className="muted">On the Free plan, with you as its administrator.</p>
          <label htmlFor="signup-email" className="field__label">
            Your e-mail address
          </label>
          <input
            id="signup-email"
            className="input"
            type="email"
            autoComplete="email"
            value={signUp.email}
            onChange={(e) => setSignUp((v) => ({ ...v, email: e.target.value }))}
          />
          <label htmlFor="signup-org" className="field__label">
            Organization name
          </label>
          <div className="inline-form">
            <input
              id="signup-org"
              className="input"
              value={signUp.organizationName}
              onChange={(e) => setSignUp((v) => ({ ...v, organizationName: e.target.value }))}
            />
            <button type="submit" className="btn btn--secondary" disabled={pending !== null}>
              Create
            </button>
          </div>
        </form>
      </div>
      <p className="signin__foot">Just-in-time network access for AWS</p>
    </main>
  );
}

export function OidcSignIn({ onSignIn, error, notice }: { onSignIn: () => Promise<void>; error?: string | null; notice?: string | null }) {
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<string | null>(null);
  return (
    <main className="signin">
      <div className="signin__card">
        <Brand />
        <h1 className="signin__title">Sign in</h1>
        <p className="muted">Use your organization's single sign-on to continue.</p>
        {notice && <Alert kind="info">{notice}</Alert>}
        {(err || error) && <Alert kind="error">{err || error}</Alert>}
        <button
          type="button"
          className="btn btn--primary btn--lg btn--block"
          disabled={busy}
          onClick={async () => {
            setBusy(true);
            setErr(null);
            try {
              await onSignIn();
            } catch (e) {
              setErr(errorMessage(e));
              setBusy(false);
            }
          }}
        >
          {busy && <Spinner />} Continue with single sign-on
        </button>
      </div>
      <p className="signin__foot">Just-in-time network access for AWS</p>
    </main>
  );
}

/** After a sign-in with the identity provider that no organization knows: create one (where
 * the operator opened sign-up) or go back and ask to be invited. */
export function NewcomerSignUp({ api, onCreated, onCancel }: { api: Api; onCreated: () => void; onCancel: () => void }) {
  const [name, setName] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState(false);

  async function create() {
    if (!name.trim()) {
      setError('Enter a name for the organization');
      return;
    }
    setError(null);
    setPending(true);
    try {
      await api.signUp(name.trim());
      onCreated();
    } catch (e) {
      setError(errorMessage(e));
      setPending(false);
    }
  }

  return (
    <main className="signin">
      <div className="signin__card">
        <Brand />
        <h1 className="signin__title">Welcome to EntryGuard</h1>
        <p className="muted">No organization knows your address yet. Ask an administrator of yours to invite you, or create an organization on the Free plan and become its administrator.</p>
        {error && <Alert kind="error">{error}</Alert>}
        <form
          className="signin__form"
          aria-label="Create an organization"
          onSubmit={(e) => {
            e.preventDefault();
            void create();
          }}
        >
          <label htmlFor="newcomer-org" className="field__label">
            Organization name
          </label>
          <div className="inline-form">
            <input id="newcomer-org" className="input" value={name} onChange={(e) => setName(e.target.value)} />
            <button type="submit" className="btn btn--primary" disabled={pending}>
              {pending && <Spinner />} Create
            </button>
          </div>
        </form>
        <button type="button" className="btn btn--ghost" onClick={onCancel}>
          Back to sign-in
        </button>
      </div>
    </main>
  );
}
