/**
 * Audit: search the security lake (a governed query over
 * steward.security.steward, so auditors see what their grants allow, with the
 * search terms bound as parameters, never spliced), and for admins the
 * sources' chain verification and the monitors with their last result and
 * delivery failures.
 */
import { useState, type FormEvent, type ReactNode } from 'react';
import { api, seg, type Session } from '../api.js';
import { ErrorNote, useLoad } from '../ui.js';
import { cellText } from './results-text.js';

interface Found {
  readonly columns: readonly { name: string }[];
  readonly rows: readonly Record<string, unknown>[];
  readonly rowCount: number;
}

const OUTCOMES = ['any', 'Success', 'Failure'];

export default function Audit({ session }: { session: Session }): ReactNode {
  return (
    <div className="stack">
      <h1>Audit</h1>
      <Search />
      {session.role === 'admin' ? (
        <>
          <Sources />
          <Monitors />
        </>
      ) : (
        <p className="muted">Source verification and monitors are shown to admins.</p>
      )}
    </div>
  );
}

function Search(): ReactNode {
  const [principal, setPrincipal] = useState('');
  const [action, setAction] = useState('');
  const [resource, setResource] = useState('');
  const [outcome, setOutcome] = useState('any');
  const [hours, setHours] = useState('24');
  const [found, setFound] = useState<Found | null>(null);
  const [error, setError] = useState<unknown>(null);
  const search = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setError(null);
    const where = ['time >= $since'];
    const params: Record<string, string | number> = { since: Date.now() - Math.max(0, Number(hours) || 24) * 3600_000 };
    if (principal.trim() !== '') {
      where.push('actor.user.uid = $principal');
      params['principal'] = principal.trim();
    }
    if (action.trim() !== '') {
      where.push('api.operation LIKE $action');
      params['action'] = `%${action.trim()}%`;
    }
    if (resource.trim() !== '') {
      where.push('message LIKE $resource');
      params['resource'] = `%${resource.trim()}%`;
    }
    if (outcome !== 'any') {
      where.push('status = $outcome');
      params['outcome'] = outcome;
    }
    const sql = `SELECT time, actor.user.uid AS principal, api.operation AS action, status, status_detail FROM steward.security.steward WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT 200`;
    try {
      setFound(await api<Found>('POST', '/v1/query', { sql, params }));
    } catch (err) {
      setFound(null);
      setError(err);
    }
  };
  return (
    <section className="panel" aria-labelledby="lake-title">
      <h2 id="lake-title">Security lake</h2>
      <form className="inline-form" onSubmit={(e) => void search(e)}>
        <label htmlFor="au-principal">Principal</label>
        <input id="au-principal" value={principal} onChange={(e) => setPrincipal(e.target.value)} placeholder="user:alice" size={14} />
        <label htmlFor="au-action">Action</label>
        <input id="au-action" value={action} onChange={(e) => setAction(e.target.value)} placeholder="query.run" size={12} />
        <label htmlFor="au-resource">Resource</label>
        <input id="au-resource" value={resource} onChange={(e) => setResource(e.target.value)} placeholder="patient_claims" size={16} />
        <label htmlFor="au-outcome">Outcome</label>
        <select id="au-outcome" value={outcome} onChange={(e) => setOutcome(e.target.value)}>
          {OUTCOMES.map((o) => (
            <option key={o}>{o}</option>
          ))}
        </select>
        <label htmlFor="au-hours">Last hours</label>
        <input id="au-hours" value={hours} onChange={(e) => setHours(e.target.value)} size={4} inputMode="numeric" />
        <button type="submit">Search</button>
      </form>
      <p className="muted">Events reach the lake when the server flushes them (every few seconds).</p>
      <ErrorNote error={error} />
      {found !== null && (
        <table className="grid" aria-label="Security events">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Principal</th>
              <th scope="col">Action</th>
              <th scope="col">Outcome</th>
              <th scope="col">Detail</th>
            </tr>
          </thead>
          <tbody>
            {found.rows.map((r, i) => (
              <tr key={i}>
                <td>{new Date(Number(r['time'])).toLocaleString()}</td>
                <td>{cellText(r['principal'])}</td>
                <td>{cellText(r['action'])}</td>
                <td className={r['status'] === 'Failure' ? 'reason guardrail' : ''}>{cellText(r['status'])}</td>
                <td>{cellText(r['status_detail'])}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {found?.rowCount === 0 && <p className="muted">No events match.</p>}
    </section>
  );
}

type Row = Record<string, unknown>;

function Sources(): ReactNode {
  const sources = useLoad((signal) => api<{ sources: Row[] }>('GET', '/v1/audit/sources', undefined, signal), []);
  const [verified, setVerified] = useState<Record<string, Row>>({});
  const [error, setError] = useState<unknown>(null);
  const verify = (name: string): void => {
    api<Row>('GET', `/v1/audit/sources/${seg(name)}/verify`)
      .then((r) => setVerified((v) => ({ ...v, [name]: r })))
      .catch(setError);
  };
  return (
    <section className="panel" aria-labelledby="sources-title">
      <h2 id="sources-title">Sources and chain verification</h2>
      <ErrorNote error={sources.error ?? error} />
      <table className="grid" aria-label="Security lake sources">
        <thead>
          <tr>
            <th scope="col">Source</th>
            <th scope="col">Verify</th>
            <th scope="col">Result</th>
          </tr>
        </thead>
        <tbody>
          {sources.data?.sources.map((s) => {
            const name = String(s['name'] ?? s['source']);
            const v = verified[name];
            return (
              <tr key={name}>
                <th scope="row">{name}</th>
                <td>
                  <button type="button" className="secondary" onClick={() => verify(name)} aria-label={`Verify ${name}`}>
                    Verify
                  </button>
                </td>
                <td data-testid={`verify-${name}`}>
                  {v === undefined ? '' : v['ok'] === true ? `intact: ${String(v['events'])} event(s)` : `${Array.isArray(v['problems']) ? v['problems'].length : '?'} problem(s): ${JSON.stringify(v['problems']).slice(0, 300)}`}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}

function Monitors(): ReactNode {
  const monitors = useLoad((signal) => api<{ monitors: Row[] }>('GET', '/v1/monitors', undefined, signal), []);
  const [error, setError] = useState<unknown>(null);
  const test = (name: string): void => {
    setError(null);
    api('POST', `/v1/monitors/${seg(name)}/test`, {})
      .then(() => monitors.reload())
      .catch(setError);
  };
  return (
    <section className="panel" aria-labelledby="monitors-title">
      <h2 id="monitors-title">Monitors</h2>
      <ErrorNote error={monitors.error ?? error} />
      {monitors.data?.monitors.length === 0 && <p className="muted">No monitors.</p>}
      {(monitors.data?.monitors.length ?? 0) > 0 && (
        <table className="grid" aria-label="Monitors">
          <thead>
            <tr>
              <th scope="col">Monitor</th>
              <th scope="col">Severity</th>
              <th scope="col">Last run</th>
              <th scope="col">Last result</th>
              <th scope="col">Test</th>
            </tr>
          </thead>
          <tbody>
            {monitors.data?.monitors.map((m) => {
              const name = String(m['name']);
              const last = (m['lastResult'] ?? null) as Row | null;
              const failed = last !== null && typeof last['error'] === 'string';
              return (
                <tr key={name}>
                  <th scope="row">{name}</th>
                  <td>{cellText(m['severity'])}</td>
                  <td>{typeof m['lastRunAt'] === 'string' ? new Date(m['lastRunAt']).toLocaleString() : 'never'}</td>
                  <td className={failed ? 'reason guardrail' : ''}>{last === null ? '—' : failed ? String(last['error']) : JSON.stringify(last).slice(0, 200)}</td>
                  <td>
                    <button type="button" className="secondary" onClick={() => test(name)} aria-label={`Test ${name}`}>
                      Test
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
