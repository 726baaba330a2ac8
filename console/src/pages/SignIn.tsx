/**
 * Sign in with an API token (POST /v1/sessions) or, when the server says OIDC
 * is configured, through the identity provider (/auth/oidc/login).
 */
import { useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { api, type Session } from '../api.js';
import { ErrorNote } from '../ui.js';

interface AuthConfig {
  readonly oidc: { readonly enabled: boolean; readonly issuer?: string };
}

export function SignIn({ onSignedIn, error }: { onSignedIn: (s: Session) => void; error?: unknown }): ReactNode {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<unknown>(error ?? null);
  const [config, setConfig] = useState<AuthConfig | null>(null);

  useEffect(() => {
    api<AuthConfig>('GET', '/v1/auth/config')
      .then(setConfig)
      .catch(() => setConfig({ oidc: { enabled: false } }));
  }, []);

  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setFailure(null);
    try {
      const session = await api<Session>('POST', '/v1/sessions', { token: token.trim() });
      setToken('');
      onSignedIn(session);
    } catch (err) {
      setFailure(err);
    } finally {
      setBusy(false);
    }
  };

  const returnTo = location.pathname === '/' || location.pathname === '/signin' ? '/catalog' : location.pathname + location.search;
  return (
    <main id="main" className="signin">
      <h1>Sign in to Steward</h1>
      <form onSubmit={(e) => void submit(e)} aria-label="Token sign-in">
        <label htmlFor="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          spellCheck={false}
          required
          value={token}
          onChange={(e) => setToken(e.target.value)}
        />
        <button type="submit" disabled={busy || token.trim() === ''}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      {config?.oidc.enabled === true && (
        <p className="oidc">
          <a className="button" href={`/auth/oidc/login?returnTo=${encodeURIComponent(returnTo)}`}>
            Sign in with {config.oidc.issuer ?? 'your identity provider'}
          </a>
        </p>
      )}
      <ErrorNote error={failure} />
      <p className="hint">
        <code>npm start</code> prints an admin token; <code>steward token create</code> makes more.
      </p>
    </main>
  );
}
