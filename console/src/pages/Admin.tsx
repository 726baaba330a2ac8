/** Admin: users, groups with members, and API tokens (a new token's secret is shown once). */
import { useState, type FormEvent, type ReactNode } from 'react';
import { api, seg, type Session } from '../api.js';
import { ErrorNote, useLoad } from '../ui.js';

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
        <thead>
          <tr>
            <th scope="col">Id</th>
            <th scope="col">Name</th>
            <th scope="col">Principal</th>
            <th scope="col">Role</th>
            <th scope="col">Last used</th>
            <th scope="col">State</th>
          </tr>
        </thead>
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

function Principals(): ReactNode {
  const users = useLoad((signal) => api<{ users: Row[] }>('GET', '/v1/users', undefined, signal), []);
  const groups = useLoad((signal) => api<{ groups: Row[] }>('GET', '/v1/groups', undefined, signal), []);
  return (
    <div className="columns-2">
      <section className="panel" aria-labelledby="users-title">
        <h2 id="users-title">Users</h2>
        <ErrorNote error={users.error} />
        <table className="grid" aria-label="Users">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Display name</th>
              <th scope="col">Groups</th>
            </tr>
          </thead>
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
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Members</th>
            </tr>
          </thead>
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
