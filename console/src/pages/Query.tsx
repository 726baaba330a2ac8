/**
 * The query editor: a schema tree of what the user may DESCRIBE (columns a
 * guardrail hides are listed as hidden, naming the guardrail), SQL in
 * CodeMirror, run and cancel, a virtualised results grid, CSV download, the
 * explained refusal beside the SQL, and the user's history.
 */
import { useCallback, useMemo, useRef, useState, type ReactNode } from 'react';
import { api, ApiError, errorMessage, request, type Session } from '../api.js';
import { ErrorNote, useLoad } from '../ui.js';
import type { CatalogTable, Decision } from '../types.js';
import { SqlEditor } from './SqlEditor.js';
import { ResultsGrid, type ResultSet } from './ResultsGrid.js';
import { SavedQueries, type SavedQuery } from './SavedQueries.js';
import { streamQuery } from './query-stream.js';

/** A result as it streams in: `done` once the server's summary (or error) line arrived, or the run was cancelled. */
interface QueryResult extends ResultSet {
  readonly rowCount: number;
  readonly truncated: boolean;
  readonly durationMs: number;
  readonly tables: readonly string[];
  readonly done: boolean;
  readonly cancelled?: boolean;
}

interface HistoryEntry {
  readonly id: number;
  readonly at: string;
  readonly sql: string;
  readonly outcome: string;
  readonly rowCount: number;
  readonly durationMs: number;
  readonly message?: string;
}

interface SchemaTable {
  readonly name: string;
  readonly columns: readonly { name: string; type: string; hiddenBy: string | null }[];
  readonly select: boolean;
}

/** Why a refusal happened: the server's message, and the decision for the refused column or table. */
interface Refusal {
  readonly message: string;
  readonly resource: string | null;
  readonly decision: Decision | null;
}

export default function Query({ session }: { session: Session }): ReactNode {
  const schema = useLoad((signal) => loadSchema(session, signal), [session.principal]);
  const [sql, setSql] = useState('SELECT * FROM lake.claims.patient_claims LIMIT 100');
  const [result, setResult] = useState<QueryResult | null>(null);
  const [refusal, setRefusal] = useState<Refusal | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [running, setRunning] = useState(false);
  const [csv, setCsv] = useState<{ url: string; name: string } | null>(null);
  const abort = useRef<AbortController | null>(null);
  const history = useLoad((signal) => api<{ entries: HistoryEntry[] }>('GET', `/v1/query/history?limit=20&principal=${encodeURIComponent(session.principal)}`, undefined, signal), [session.principal]);

  const execute = useCallback(async (path: string, body: Record<string, unknown>) => {
    abort.current?.abort();
    const ctl = new AbortController();
    abort.current = ctl;
    setRunning(true);
    setError(null);
    setRefusal(null);
    setResult(null);
    try {
      // NDJSON: rows reach the grid while the query runs; aborting the request stops the query on the server.
      await streamQuery(path, body, ctl.signal, {
        onColumns: (columns, tables) => setResult({ columns, tables, rows: [], rowCount: 0, truncated: false, durationMs: 0, done: false }),
        onRows: (rows, count) => setResult((r) => (r === null ? r : { ...r, rows, rowCount: count })),
        onEnd: (end) => {
          if ('summary' in end) setResult((r) => (r === null ? r : { ...r, ...end.summary, done: true }));
          else {
            setResult((r) => (r === null ? r : { ...r, done: true }));
            setError(new Error(end.error.message));
          }
        },
      });
    } catch (e) {
      if (ctl.signal.aborted) {
        setResult((r) => (r === null ? r : { ...r, done: true, cancelled: true }));
        setError(new Error('cancelled: the query was stopped on the server'));
      } else if (e instanceof ApiError && e.status === 403) {
        setResult(null);
        setRefusal(await explain(session, e));
      } else {
        setResult(null);
        setError(e);
      }
    } finally {
      setRunning(false);
      history.reload();
    }
  }, [session, history]);
  const run = useCallback(() => execute('/v1/query', { sql }), [execute, sql]);
  const runSaved = (q: SavedQuery, params: Record<string, string>): void => {
    void execute(`/v1/saved-queries/${encodeURIComponent(q.id)}/run`, { params });
  };

  const downloadCsv = async (): Promise<void> => {
    setError(null);
    try {
      const res = await request('POST', '/v1/query', { body: { sql, format: 'csv' }, accept: 'text/csv' });
      const blob = await res.blob();
      if (csv !== null) URL.revokeObjectURL(csv.url);
      setCsv({ url: URL.createObjectURL(blob), name: `steward-${new Date().toISOString().replace(/[:.]/g, '-')}.csv` });
    } catch (e) {
      setError(e);
    }
  };

  const completion = useMemo(() => {
    const out: Record<string, string[]> = {};
    for (const t of schema.data ?? []) out[t.name] = t.columns.filter((c) => c.hiddenBy === null).map((c) => c.name);
    return out;
  }, [schema.data]);

  return (
    <div className="query">
      <section className="sidebar" aria-labelledby="schema-title">
        <h1 id="schema-title">Schema</h1>
        <ErrorNote error={schema.error} />
        {schema.data !== undefined && <SchemaTree tables={schema.data} onPick={(t) => setSql(`SELECT * FROM ${t} LIMIT 100`)} />}
      </section>
      <section className="detail">
        <h2>Query</h2>
        <div className="editor-row">
          <div>
            <SqlEditor value={sql} onChange={setSql} onRun={() => void run()} schema={completion} />
            <div className="toolbar">
              <button type="button" onClick={() => void run()} disabled={running}>
                {running ? 'Running…' : 'Run'}
              </button>
              <button type="button" className="secondary" onClick={() => abort.current?.abort()} disabled={!running}>
                Cancel
              </button>
              <button type="button" className="secondary" onClick={() => void downloadCsv()}>
                Prepare CSV
              </button>
              {csv !== null && (
                <a href={csv.url} download={csv.name}>
                  Download CSV
                </a>
              )}
              <span className="muted">Ctrl+Enter runs</span>
            </div>
          </div>
          <aside aria-label="Explanation" aria-live="polite">
            {refusal !== null ? (
              <RefusalPanel refusal={refusal} />
            ) : result !== null ? (
              <div className="explain-ok" data-testid="result-status" aria-live={result.done ? undefined : 'off'}>
                {!result.done
                  ? `Allowed: streaming from ${result.tables.join(', ')}: ${result.rowCount} row(s) so far…`
                  : result.cancelled === true
                    ? `Cancelled after ${result.rowCount} row(s) from ${result.tables.join(', ')}.`
                    : `Allowed: ${result.rowCount} row(s) in ${result.durationMs} ms from ${result.tables.join(', ')}${result.truncated ? ' (truncated at the row limit)' : ''}.`}
              </div>
            ) : (
              <p className="muted">Run a query; a refusal is explained here.</p>
            )}
          </aside>
        </div>
        <ErrorNote error={error} />
        {result !== null && <ResultsGrid result={result} />}
        <SavedQueries sql={sql} onRun={runSaved} onLoad={setSql} />
        <h3>History</h3>
        <ErrorNote error={history.error} />
        <ul className="history" aria-label="Query history">
          {history.data?.entries.map((h) => (
            <li key={h.id}>
              <button type="button" className="secondary" onClick={() => setSql(h.sql)} aria-label={`Load query ${h.id}`}>
                Load
              </button>{' '}
              <span className={h.outcome === 'allowed' || h.outcome === 'ok' ? '' : 'refused'}>{h.outcome}</span> <code>{h.sql}</code>{' '}
              <span className="muted">
                {new Date(h.at).toLocaleString()} · {h.rowCount} rows
              </span>
              {h.message !== undefined && <div className="muted">{h.message}</div>}
            </li>
          ))}
        </ul>
      </section>
    </div>
  );
}

function RefusalPanel({ refusal }: { refusal: Refusal }): ReactNode {
  return (
    <div className="refusal" role="alert" data-testid="refusal">
      <h3>Refused</h3>
      <p>{refusal.message}</p>
      {refusal.decision !== null && (
        <>
          <p>
            Why <code>{refusal.resource}</code>:
          </p>
          <ul className="reasons">
            {refusal.decision.reasons.map((r, i) => (
              <li key={i} className={`reason ${r.code.toLowerCase()}`}>
                {r.message}
              </li>
            ))}
          </ul>
          {refusal.decision.deniedBy.length > 0 && <p>Ask for an exception on the Access page (for example permission set read-with-pii), or leave the column out.</p>}
        </>
      )}
    </div>
  );
}

/** The refused resource named in the error's details, and the engine's reasons for it. */
async function explain(session: Session, e: ApiError): Promise<Refusal> {
  const resource = e.body.details?.find((d) => typeof d.path === 'string' && /^[^.]+\.[^.]+\.[^.]+/.test(d.path))?.path ?? null;
  if (resource === null) return { message: e.body.message, resource: null, decision: null };
  try {
    const decision = await api<Decision>('POST', '/v1/authorize', { principal: session.principal, action: 'SELECT', resource });
    return { message: e.body.message, resource, decision };
  } catch (err) {
    return { message: `${e.body.message} (${errorMessage(err)})`, resource, decision: null };
  }
}

/**
 * Tables the user may DESCRIBE, each column marked with the guardrail that
 * hides it from the user's SELECT (from one table-level decision; a column
 * decision only when several guardrails apply).
 */
async function loadSchema(session: Session, signal: AbortSignal): Promise<SchemaTable[]> {
  const { tables } = await api<{ tables: CatalogTable[] }>('GET', '/v1/tables', undefined, signal);
  return Promise.all(
    tables.map(async (t): Promise<SchemaTable> => {
      const name = `${t.catalog}.${t.database}.${t.name}`;
      const d = await api<Decision>('POST', '/v1/authorize', { principal: session.principal, action: 'SELECT', resource: name }, signal);
      const visible = new Set((d.columns ?? []).map((c) => c.name));
      const columns = await Promise.all(
        t.columns.map(async (c) => {
          if (d.decision !== 'allow' || visible.has(c.name) || d.deniedBy.length === 0) return { name: c.name, type: c.type, hiddenBy: null };
          if (d.deniedBy.length === 1) return { name: c.name, type: c.type, hiddenBy: d.deniedBy[0] ?? null };
          const cd = await api<Decision>('POST', '/v1/authorize', { principal: session.principal, action: 'SELECT', resource: `${name}.${c.name}` }, signal);
          return { name: c.name, type: c.type, hiddenBy: cd.deniedBy.join(', ') || null };
        }),
      );
      return { name, columns, select: d.decision === 'allow' };
    }),
  );
}

function SchemaTree({ tables, onPick }: { tables: readonly SchemaTable[]; onPick: (table: string) => void }): ReactNode {
  if (tables.length === 0) return <p className="muted">No tables you may describe.</p>;
  return (
    <ul className="tree" aria-label="Tables you may describe">
      {tables.map((t) => (
        <li key={t.name}>
          <button type="button" className="secondary" onClick={() => onPick(t.name)} aria-label={`Query ${t.name}`}>
            {t.name}
          </button>
          {!t.select && <span className="muted"> (describe only)</span>}
          <ul>
            {t.columns.map((c) => (
              <li key={c.name} className={c.hiddenBy === null ? '' : 'hidden-col'} data-testid={c.hiddenBy === null ? undefined : 'hidden-column'}>
                {c.name}{' '}
                <span className="muted" title={c.type}>
                  {c.type.length > 32 ? `${c.type.slice(0, 30).toLowerCase()}…` : c.type.toLowerCase()}
                </span>
                {c.hiddenBy !== null && <span> — hidden by guardrail {c.hiddenBy}</span>}
              </li>
            ))}
          </ul>
        </li>
      ))}
    </ul>
  );
}
