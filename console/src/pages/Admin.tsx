/**
 * Admin: API tokens (a new token's secret is shown once), console sessions
 * (revoke one), warehouse targets with their last sync and their plan, users,
 * and groups with members.
 */
import { useState, type FormEvent, type ReactNode } from 'react';
import { api, seg, type Session } from '../api.js';
import { ColumnHeads, ErrorNote, useLoad } from '../ui.js';

interface Token {
  readonly id: string;
  readonly name: string;
  readonly principal: string;
  readonly role: string;
  readonly createdAt: string;
  readonly lastUsedAt?: string;
  readonly expiresAt?: string;
  readonly revokedAt?: string;
}

type Row = Record<string, unknown>;
const list = (v: unknown): string => (Array.isArray(v) ? v.map(String).join(', ') : '');

export default function Admin({ session }: { session: Session }): ReactNode {
  if (session.role !== 'admin') return <p className="muted">The admin page is for admins.</p>;
  return (
    <div className="stack">
      <h1>Admin</h1>
      <Tokens />
      <Sessions />
      <Warehouses />
      <Principals />
    </div>
  );
}

function Tokens(): ReactNode {
  const tokens = useLoad((signal) => api<{ tokens: Token[] }>('GET', '/v1/tokens', undefined, signal), []);
  const [name, setName] = useState('');
  const [principal, setPrincipal] = useState('user:');
  const [role, setRole] = useState('user');
  const [secret, setSecret] = useState<{ id: string; token: string } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const create = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setError(null);
    try {
      const r = await api<{ id: string; token: string }>('POST', '/v1/tokens', { name: name.trim(), principal: principal.trim(), role });
      setSecret({ id: r.id, token: r.token });
      setName('');
      tokens.reload();
    } catch (err) {
      setError(err);
    }
  };
  const revoke = (id: string): void => {
    api('DELETE', `/v1/tokens/${seg(id)}`)
      .then(() => tokens.reload())
      .catch(setError);
  };
  return (
    <section className="panel" aria-labelledby="tokens-title">
      <h2 id="tokens-title">API tokens</h2>
      <form className="inline-form" onSubmit={(e) => void create(e)}>
        <label htmlFor="tok-name">Name</label>
        <input id="tok-name" value={name} onChange={(e) => setName(e.target.value)} required />
        <label htmlFor="tok-principal">Principal</label>
        <input id="tok-principal" value={principal} onChange={(e) => setPrincipal(e.target.value)} required />
        <label htmlFor="tok-role">Role</label>
        <select id="tok-role" value={role} onChange={(e) => setRole(e.target.value)}>
          <option>user</option>
          <option>admin</option>
        </select>
        <button type="submit">Create token</button>
      </form>
      <ErrorNote error={error} />
      {secret !== null && (
        <div className="notice" role="status" data-testid="token-secret">
          <p>
            Token <code>{secret.id}</code> created. Copy its secret now; it is never shown again:
          </p>
          <p>
            <code className="secret">{secret.token}</code>
          </p>
          <button type="button" className="secondary" onClick={() => setSecret(null)}>
            I have copied it
          </button>
        </div>
      )}
      <table className="grid" aria-label="API tokens">
        <ColumnHeads names={['Id', 'Name', 'Principal', 'Role', 'Last used', 'State']} />
        <tbody>
          {tokens.data?.tokens.map((t) => (
            <tr key={t.id}>
              <th scope="row">
                <code>{t.id}</code>
              </th>
              <td>{t.name}</td>
              <td>{t.principal}</td>
              <td>{t.role}</td>
              <td>{t.lastUsedAt === undefined ? 'never' : new Date(t.lastUsedAt).toLocaleString()}</td>
              <td>
                {t.revokedAt !== undefined ? (
                  'revoked'
                ) : (
                  <button type="button" className="danger" onClick={() => revoke(t.id)} aria-label={`Revoke token ${t.id}`}>
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

interface SessionRow {
  readonly id: string;
  readonly principal: string;
  readonly role: string;
  readonly via: string;
  readonly createdAt: string;
  readonly lastSeenAt: string;
  readonly idleExpiresAt: string;
  readonly expiresAt: string;
  readonly current: boolean;
}

const when = (iso: string): string => new Date(iso).toLocaleString();

function Sessions(): ReactNode {
  const sessions = useLoad((signal) => api<{ sessions: SessionRow[] }>('GET', '/v1/sessions', undefined, signal), []);
  const [error, setError] = useState<unknown>(null);
  const revoke = (id: string): void => {
    setError(null);
    api('DELETE', `/v1/sessions/${seg(id)}`)
      .then(() => sessions.reload())
      .catch(setError);
  };
  return (
    <section className="panel" aria-labelledby="sessions-title">
      <h2 id="sessions-title">Console sessions</h2>
      <p className="muted">Live sign-ins to this console. Revoking one ends it at its next request; the id is the one the decision log shows.</p>
      <ErrorNote error={sessions.error ?? error} />
      <table className="grid" aria-label="Console sessions">
        <ColumnHeads names={['Id', 'Principal', 'Signed in with', 'Since', 'Last used', 'Ends', 'Revoke']} />
        <tbody>
          {sessions.data?.sessions.map((x) => (
            <tr key={x.id}>
              <th scope="row">
                <code>{x.id}</code>
                {x.current && <span className="muted"> (this browser)</span>}
              </th>
              <td>
                {x.principal} <span className="muted">({x.role})</span>
              </td>
              <td>{x.via === 'oidc' ? 'OpenID Connect' : 'API token'}</td>
              <td>{when(x.createdAt)}</td>
              <td>{when(x.lastSeenAt)}</td>
              <td>{when(x.idleExpiresAt < x.expiresAt ? x.idleExpiresAt : x.expiresAt)}</td>
              <td>
                <button type="button" className="danger" onClick={() => revoke(x.id)} aria-label={`Revoke session ${x.id}`}>
                  Revoke
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

interface Target {
  readonly name: string;
  readonly catalog: string;
  readonly credentials: { kind: string; name?: string; path?: string };
  readonly status: { lastVersion: number | null; lastSyncedAt: string | null; lastStatus: string | null; lastStatements: number | null };
}

interface Plan {
  readonly target: string;
  readonly statements: readonly { op: string; kind: string; sql: string }[];
  readonly drift: readonly { action: string; message: string }[];
  readonly warnings: readonly { code: string; message: string }[];
  readonly summary: { statements: number; grants: number; revokes: number; drift: number; warnings: number };
}

function Warehouses(): ReactNode {
  const targets = useLoad((signal) => api<{ targets: Target[] }>('GET', '/v1/warehouse/targets', undefined, signal), []);
  const [plan, setPlan] = useState<Plan | null>(null);
  const [planning, setPlanning] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const showPlan = (name: string): void => {
    setError(null);
    setPlan(null);
    setPlanning(name);
    api<Plan>('POST', `/v1/sync/${seg(name)}/plan`, {})
      .then(setPlan)
      .catch(setError)
      .finally(() => setPlanning(null));
  };
  return (
    <section className="panel" aria-labelledby="warehouses-title">
      <h2 id="warehouses-title">Warehouse targets</h2>
      <ErrorNote error={targets.error ?? error} />
      {targets.data?.targets.length === 0 && <p className="muted">No warehouse targets. Add one with <code>steward warehouse add</code>.</p>}
      {(targets.data?.targets.length ?? 0) > 0 && (
        <table className="grid" aria-label="Warehouse targets">
          <ColumnHeads names={['Target', 'Catalog', 'Credentials', 'Last sync', 'Plan']} />
          <tbody>
            {targets.data?.targets.map((t) => (
              <tr key={t.name}>
                <th scope="row">{t.name}</th>
                <td>{t.catalog}</td>
                <td>{t.credentials.kind === 'env' ? `variable ${t.credentials.name ?? ''}` : `file ${t.credentials.path ?? ''}`}</td>
                <td data-testid={`sync-status-${t.name}`}>{syncStatus(t.status)}</td>
                <td>
                  <button type="button" className="secondary" onClick={() => showPlan(t.name)} disabled={planning !== null} aria-label={`Plan ${t.name}`}>
                    {planning === t.name ? 'Planning…' : 'Plan'}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {plan !== null && <PlanView plan={plan} />}
    </section>
  );
}

function syncStatus(s: Target['status']): string {
  if (s.lastSyncedAt === null) return 'never synced';
  return `${s.lastStatus ?? 'unknown'} at ${when(s.lastSyncedAt)}: version ${String(s.lastVersion)}, ${String(s.lastStatements)} statement(s)`;
}

/** The plan as the warehouse would receive it: statements as text, then drift and warnings. */
function PlanView({ plan }: { plan: Plan }): ReactNode {
  const sql = plan.statements.map((x) => `${x.sql};`).join('\n');
  return (
    <div className="stack" data-testid="warehouse-plan">
      <h3>
        Plan for {plan.target}: {plan.summary.grants} grant(s), {plan.summary.revokes} revoke(s)
      </h3>
      {plan.statements.length === 0 ? (
        <p className="muted">In sync: nothing to run.</p>
      ) : (
        <pre className="plan-sql" tabIndex={0} aria-label={`Statements of the plan for ${plan.target}`}>
          {sql}
        </pre>
      )}
      {plan.drift.length > 0 && (
        <ul aria-label="Drift">
          {plan.drift.map((d, i) => (
            <li key={i}>
              {d.action}: {d.message}
            </li>
          ))}
        </ul>
      )}
      {plan.warnings.length > 0 && (
        <ul aria-label="Warnings" className="muted">
          {plan.warnings.map((w, i) => (
            <li key={i}>
              <code>{w.code}</code> {w.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function Principals(): ReactNode {
  const users = useLoad((signal) => api<{ users: Row[] }>('GET', '/v1/users', undefined, signal), []);
  const groups = useLoad((signal) => api<{ groups: Row[] }>('GET', '/v1/groups', undefined, signal), []);
  return (
    <div className="columns-2">
      <section className="panel" aria-labelledby="users-title">
        <h2 id="users-title">Users</h2>
        <ErrorNote error={users.error} />
        <table className="grid" aria-label="Users">
          <ColumnHeads names={['Name', 'Display name', 'Groups']} />
          <tbody>
            {users.data?.users.map((u) => (
              <tr key={String(u['name'])}>
                <th scope="row">{String(u['name'])}</th>
                <td>{typeof u['displayName'] === 'string' ? u['displayName'] : ''}</td>
                <td>{list(u['groups'])}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section className="panel" aria-labelledby="groups-title">
        <h2 id="groups-title">Groups</h2>
        <ErrorNote error={groups.error} />
        <table className="grid" aria-label="Groups">
          <ColumnHeads names={['Name', 'Members']} />
          <tbody>
            {groups.data?.groups.map((g) => (
              <tr key={String(g['name'])}>
                <th scope="row">
                  {String(g['name'])}
                  {typeof g['description'] === 'string' && <div className="muted">{g['description']}</div>}
                </th>
                <td>{list(g['members'])}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </div>
  );
}
