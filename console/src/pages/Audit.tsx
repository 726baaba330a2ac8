/**
 * Audit: search the security lake (a governed query over
 * steward.security.steward, so auditors see what their grants allow, with the
 * search terms bound as parameters, never spliced), and for admins the
 * sources' chain verification and the monitors with their last result and
 * delivery failures.
 */
import { lazy, Suspense, useState, type FormEvent, type ReactNode } from 'react';
import { api, seg, type Session } from '../api.js';
import { ColumnHeads, ErrorNote, useLoad } from '../ui.js';
import { cellText } from './results-text.js';
import { seriesOf, type TimelineBucket, type TimelineWindow } from './timeline-data.js';

// ECharts is a chunk of its own, fetched only when there is a timeline to draw.
const DecisionChart = lazy(() => import('./DecisionChart.js'));

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
      <Timeline />
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
          <ColumnHeads names={['When', 'Principal', 'Action', 'Outcome', 'Detail']} />
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

/** Window → bucket: about 12 to 30 bars whatever the window. */
const WINDOWS: readonly { label: string; hours: number; bucket: string }[] = [
  { label: 'last hour', hours: 1, bucket: '5m' },
  { label: 'last 24 hours', hours: 24, bucket: '1h' },
  { label: 'last 7 days', hours: 168, bucket: '6h' },
];
const DEFAULT_WINDOW = { label: 'last 24 hours', hours: 24, bucket: '1h' };

function Timeline(): ReactNode {
  const [choice, setChoice] = useState(1);
  const w = WINDOWS[choice] ?? DEFAULT_WINDOW;
  const timeline = useLoad(
    (signal) => {
      const from = new Date(Date.now() - w.hours * 3600_000).toISOString();
      return api<TimelineWindow & { buckets: TimelineBucket[] }>('GET', `/v1/audit/timeline?bucket=${w.bucket}&from=${encodeURIComponent(from)}`, undefined, signal);
    },
    [choice],
  );
  const totals = seriesOf(timeline.data?.buckets ?? []).sources.map((s) => ({ name: s.name, allowed: sum(s.allowed), denied: sum(s.denied) }));
  const label = `Decisions over the ${w.label} per ${w.bucket}, allowed above the axis and denied below, per source`;
  return (
    <section className="panel" aria-labelledby="timeline-title">
      <h2 id="timeline-title">Decisions over time</h2>
      <div className="inline-form">
        <label htmlFor="tl-window">Window</label>
        <select id="tl-window" value={choice} onChange={(e) => setChoice(Number(e.target.value))}>
          {WINDOWS.map((x, i) => (
            <option key={x.label} value={i}>
              {x.label}
            </option>
          ))}
        </select>
        <button type="button" className="secondary" onClick={() => timeline.reload()}>
          Refresh
        </button>
      </div>
      <ErrorNote error={timeline.error} />
      {timeline.data !== undefined && timeline.data.buckets.length === 0 && <p className="muted">No events in this window.</p>}
      {timeline.data !== undefined && timeline.data.buckets.length > 0 && (
        <div className="timeline">
          <Suspense fallback={<p className="muted">Loading the chart…</p>}>
            <DecisionChart buckets={timeline.data.buckets} window={timeline.data} label={label} />
          </Suspense>
          <table className="grid" aria-label="Decisions per source">
            <ColumnHeads names={['Source', 'Allowed', 'Denied']} />
            <tbody>
              {totals.map((t) => (
                <tr key={t.name}>
                  <th scope="row">{t.name}</th>
                  <td>{t.allowed}</td>
                  <td className={t.denied > 0 ? 'reason guardrail' : ''}>{t.denied}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

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
        <ColumnHeads names={['Source', 'Verify', 'Result']} />
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
          <ColumnHeads names={['Monitor', 'Severity', 'Last run', 'Last result', 'Test']} />
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
