/**
 * The shell: who is signed in, the navigation, sign out, and the current page.
 * Pages other than sign-in load on demand, so the first page stays small.
 */
import { lazy, Suspense, useCallback, useEffect, useState, type ReactNode } from 'react';
import { api, ApiError, setCsrfToken, setUnauthenticatedHandler, type Session } from './api.js';
import { navigate, useLocation } from './router.js';
import { SignIn } from './pages/SignIn.js';
import { ErrorNote } from './ui.js';

const Catalog = lazy(() => import('./pages/Catalog.js'));
const Query = lazy(() => import('./pages/Query.js'));
const Access = lazy(() => import('./pages/Access.js'));
const Policy = lazy(() => import('./pages/Policy.js'));
const Admin = lazy(() => import('./pages/Admin.js'));
const Audit = lazy(() => import('./pages/Audit.js'));
const Experiments = lazy(() => import('./pages/Experiments.js'));
const Dashboards = lazy(() => import('./pages/Dashboards.js'));
const Cleanrooms = lazy(() => import('./pages/Cleanrooms.js'));

interface Page {
  readonly path: string;
  readonly label: string;
  readonly render: (session: Session) => ReactNode;
}

const PAGES: readonly Page[] = [
  { path: '/catalog', label: 'Catalog', render: (s) => <Catalog session={s} /> },
  { path: '/query', label: 'Query', render: (s) => <Query session={s} /> },
  { path: '/access', label: 'Access', render: (s) => <Access session={s} /> },
  { path: '/policy', label: 'Policy', render: (s) => <Policy session={s} /> },
  { path: '/dashboards', label: 'Dashboards', render: (s) => <Dashboards session={s} /> },
  { path: '/cleanrooms', label: 'Clean rooms', render: (s) => <Cleanrooms session={s} /> },
  { path: '/audit', label: 'Audit', render: (s) => <Audit session={s} /> },
  { path: '/experiments', label: 'Experiments', render: (s) => <Experiments session={s} /> },
  { path: '/admin', label: 'Admin', render: (s) => <Admin session={s} /> },
];

type State = { kind: 'loading' } | { kind: 'signed-out'; error?: unknown } | { kind: 'signed-in'; session: Session };

export function App(): ReactNode {
  const [state, setState] = useState<State>({ kind: 'loading' });
  const { path } = useLocation();

  const signedIn = useCallback((session: Session) => {
    setCsrfToken(session.csrfToken);
    setState({ kind: 'signed-in', session });
  }, []);
  const signedOut = useCallback((error?: unknown) => {
    setCsrfToken(null);
    setState(error === undefined ? { kind: 'signed-out' } : { kind: 'signed-out', error });
  }, []);

  useEffect(() => {
    setUnauthenticatedHandler(() => signedOut(new Error('your session ended; sign in again')));
    api<Session>('GET', '/v1/session')
      .then(signedIn)
      .catch((e: unknown) => signedOut(e instanceof ApiError && e.status === 401 ? undefined : e));
  }, [signedIn, signedOut]);

  // Signed in at `/` or `/signin`: the catalog is the home page.
  const atRoot = path === '/' || path === '/signin';
  useEffect(() => {
    if (state.kind === 'signed-in' && atRoot) navigate('/catalog');
  }, [state.kind, atRoot]);

  if (state.kind === 'loading') return <p className="loading">Loading…</p>;
  if (state.kind === 'signed-out') {
    return (
      <SignIn
        error={state.error}
        onSignedIn={signedIn}
      />
    );
  }
  const page = PAGES.find((p) => path === p.path || path.startsWith(`${p.path}/`));
  return (
    <div className="shell">
      <header className="top">
        <span className="brand">Steward</span>
        <nav aria-label="Main">
          <ul>
            {PAGES.map((p) => (
              <li key={p.path}>
                <a
                  href={p.path}
                  aria-current={page === p ? 'page' : undefined}
                  onClick={(e) => {
                    e.preventDefault();
                    navigate(p.path);
                  }}
                >
                  {p.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span className="who" data-testid="principal">
          {state.session.principal} <span className="role">({state.session.role})</span>
        </span>
        <button
          type="button"
          className="secondary"
          onClick={() => {
            api('DELETE', '/v1/session')
              .catch(() => undefined)
              .finally(() => {
                signedOut();
                navigate('/signin');
              });
          }}
        >
          Sign out
        </button>
      </header>
      <main id="main">
        <Suspense fallback={<p className="loading">Loading…</p>}>
          {page === undefined ? <NotFound path={path} /> : page.render(state.session)}
        </Suspense>
      </main>
    </div>
  );
}

function NotFound({ path }: { path: string }): ReactNode {
  if (path === '/' || path === '/signin') return <p className="loading">Loading…</p>;
  return (
    <>
      <h1>Not found</h1>
      <ErrorNote error={new Error(`no page at \`${path}\``)} />
    </>
  );
}
