/**
 * Clean rooms (docs/cleanrooms.md) for the signed-in member: the
 * collaborations it belongs to, their members and configured tables, a query
 * run through the clean-room API as the signed-in user (the rules, output
 * constraints and privacy budget are the server's; nothing is decided here),
 * the refusal with the rule it names, and the query log every member reads.
 * Everything is rendered as text.
 */
import { useState, type ReactNode } from 'react';
import { api, ApiError, seg, type Session } from '../api.js';
import { navigate, useLocation } from '../router.js';
import { ColumnHeads, ErrorNote, useLoad } from '../ui.js';

interface Member {
  readonly name: string;
  readonly principal: string;
  readonly abilities: readonly string[];
  readonly status: string;
}

interface ConfiguredTable {
  readonly name: string;
  readonly member: string;
  readonly columns: readonly string[];
  readonly rule?: { readonly type: string };
}

interface Collaboration {
  readonly name: string;
  readonly description: string;
  readonly status: string;
  readonly creator: string;
  readonly members: readonly Member[];
  readonly tables: readonly ConfiguredTable[];
}

interface RoomResult {
  readonly columns: readonly { name: string; type: string }[];
  readonly rows: readonly unknown[][];
  readonly rowCount: number;
  readonly removed: number;
  readonly rules: readonly string[];
  readonly truncated: boolean;
  readonly privacy?: { readonly spent: number; readonly remaining: number; readonly budget: number };
}

interface LogEntry {
  readonly id: number;
  readonly at: string;
  readonly member: string;
  readonly runner: string;
  readonly sql: string;
  readonly template?: string;
  readonly outcome: string;
  readonly rules: readonly string[];
  readonly rows: number;
  readonly removed: number;
  readonly message: string;
}

export default function Cleanrooms(_props: { session: Session }): ReactNode {
  const { search } = useLocation();
  const list = useLoad((signal) => api<{ cleanrooms: Collaboration[] }>('GET', '/v1/cleanrooms', undefined, signal), []);
  const chosen = search.get('name') ?? list.data?.cleanrooms[0]?.name ?? null;
  const room = list.data?.cleanrooms.find((c) => c.name === chosen);
  return (
    <section aria-labelledby="cleanrooms-title">
      <h1 id="cleanrooms-title">Clean rooms</h1>
      <p className="muted">Collaborations you are a member of: joint queries under every member's analysis rules, and the log every member reads.</p>
      <ErrorNote error={list.error} />
      {list.data !== undefined && list.data.cleanrooms.length === 0 && <p data-testid="no-cleanrooms">You are a member of no collaboration.</p>}
      {list.data !== undefined && list.data.cleanrooms.length > 0 && (
        <label>
          Collaboration{' '}
          <select value={chosen ?? ''} onChange={(e) => navigate(`/cleanrooms?name=${encodeURIComponent(e.target.value)}`)}>
            {list.data.cleanrooms.map((c) => (
              <option key={c.name} value={c.name}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
      )}
      {room !== undefined && <Room key={room.name} room={room} />}
    </section>
  );
}

function Room({ room }: { room: Collaboration }): ReactNode {
  const log = useLoad((signal) => api<{ entries: LogEntry[] }>('GET', `/v1/cleanrooms/${seg(room.name)}/log?limit=50`, undefined, signal), [room.name]);
  return (
    <div data-testid="cleanroom" data-cleanroom={room.name}>
      <h2>
        {room.name} <span className="muted">({room.status})</span>
      </h2>
      {room.description !== '' && <p>{room.description}</p>}
      <h3>Members</h3>
      <Members room={room} />
      <h3>Configured tables</h3>
      <Tables room={room} />
      <RoomQuery room={room} onRan={log.reload} />
      <h3>Query log</h3>
      <p className="muted">Every query run in the collaboration, by any member, allowed or refused.</p>
      <ErrorNote error={log.error} />
      {log.data !== undefined && <QueryLog entries={log.data.entries} />}
    </div>
  );
}

function Members({ room }: { room: Collaboration }): ReactNode {
  return (
    <table className="grid" aria-label="Members">
      <ColumnHeads names={['member', 'principal', 'abilities', 'status']} />
      <tbody>
        {room.members.map((m) => (
          <tr key={m.name}>
            <td>
              {m.name}
              {m.name === room.creator ? ' (creator)' : ''}
            </td>
            <td>{m.principal}</td>
            <td>{m.abilities.join(', ') || 'none'}</td>
            <td>{m.status}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Tables({ room }: { room: Collaboration }): ReactNode {
  if (room.tables.length === 0) return <p className="muted">No member has shared a table yet.</p>;
  return (
    <table className="grid" aria-label="Configured tables">
      <ColumnHeads names={['table', 'owner', 'columns', 'rule']} />
      <tbody>
        {room.tables.map((t) => (
          <tr key={t.name}>
            <td>{t.name}</td>
            <td>{t.member}</td>
            <td>{t.columns.join(', ')}</td>
            <td>{t.rule?.type ?? 'none (cannot be queried)'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function RoomQuery({ room, onRan }: { room: Collaboration; onRan: () => void }): ReactNode {
  const [sql, setSql] = useState('');
  const [result, setResult] = useState<RoomResult | null>(null);
  const [refusal, setRefusal] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [running, setRunning] = useState(false);
  const run = async (): Promise<void> => {
    setRunning(true);
    setResult(null);
    setRefusal(null);
    setError(null);
    try {
      setResult(await api<RoomResult>('POST', `/v1/cleanrooms/${seg(room.name)}/query`, { sql }));
    } catch (e) {
      // A refusal (a rule, an ability, the budget) names its reason; show it as the answer, not as a failure of the page.
      if (e instanceof ApiError && e.status >= 400 && e.status < 500) setRefusal(e.body.message);
      else setError(e);
    } finally {
      setRunning(false);
      onRan();
    }
  };
  return (
    <>
      <h3>Query</h3>
      <label>
        SQL{' '}
        <textarea className="sql" data-testid="cleanroom-sql" rows={8} spellCheck={false} value={sql} placeholder={`SELECT … FROM ${room.tables.map((t) => t.name).join(' JOIN ') || 'table'} …`} onChange={(e) => setSql(e.target.value)} />
      </label>
      <div className="toolbar">
        <button type="button" onClick={() => void run()} disabled={running || sql.trim() === ''}>
          {running ? 'Running…' : 'Run'}
        </button>
      </div>
      <div aria-live="polite">
        {refusal !== null && (
          <div className="refusal" role="alert" data-testid="cleanroom-refusal">
            <h4>Refused</h4>
            <p>{refusal}</p>
          </div>
        )}
        {result !== null && <RoomResultView result={result} />}
      </div>
      <ErrorNote error={error} />
    </>
  );
}

function RoomResultView({ result }: { result: RoomResult }): ReactNode {
  const names = result.columns.map((c) => c.name);
  return (
    <div data-testid="cleanroom-result">
      <p className="explain-ok" data-testid="cleanroom-status">
        {result.rowCount} row(s){result.removed > 0 ? `; ${result.removed} removed by output constraints` : ''}
        {result.truncated ? ' (truncated)' : ''}; rules checked: {result.rules.join(', ')}
        {result.privacy !== undefined ? `; privacy budget: ${result.privacy.remaining} of ${result.privacy.budget} left` : ''}
      </p>
      <table className="grid" aria-label="Result">
        <ColumnHeads names={names} />
        <tbody>
          {result.rows.map((r, i) => (
            <tr key={i}>
              {r.map((v, j) => (
                <td key={j}>{v === null || v === undefined ? '' : String(v)}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function QueryLog({ entries }: { entries: readonly LogEntry[] }): ReactNode {
  if (entries.length === 0) return <p className="muted">No query has run yet.</p>;
  return (
    <ul className="history" aria-label="Query log" data-testid="cleanroom-log">
      {entries.map((e) => (
        <li key={e.id} data-outcome={e.outcome}>
          <span className={e.outcome === 'allowed' ? '' : 'refused'}>{e.outcome}</span> <code>{e.template === undefined ? e.sql : `template ${e.template}`}</code>{' '}
          <span className="muted">
            {new Date(e.at).toLocaleString()} · member {e.member} ({e.runner}) · {e.rows} row(s), {e.removed} removed
          </span>
          <div className="muted">{e.message}</div>
          {e.rules.length > 0 && <div className="muted">rules checked: {e.rules.join(', ')}</div>}
        </li>
      ))}
    </ul>
  );
}
