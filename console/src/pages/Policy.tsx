/**
 * Policy: "why can't X do Y" (the engine's decision with each reason, linked
 * to the rule), and the grants and guardrails as tables.
 */
import { lazy, Suspense, useMemo, useState, type FormEvent, type ReactNode } from 'react';
import { api, ApiError, type Session } from '../api.js';
import type { Problem } from './CodeEditor.js';
import { ColumnHeads, ErrorNote, useLoad } from '../ui.js';
import type { Decision } from '../types.js';

type Row = Record<string, unknown>;

const PERMISSIONS = ['SELECT', 'DESCRIBE', 'INSERT', 'UPDATE', 'DELETE', 'ALTER', 'DROP'];

export default function Policy({ session }: { session: Session }): ReactNode {
  const admin = session.role === 'admin';
  return (
    <div className="stack">
      <h1>Policy</h1>
      <WhyForm session={session} />
      {admin ? (
        <>
          <Rules />
          <YamlEditor />
        </>
      ) : (
        <p className="muted">Grants, guardrails and the policy as YAML are shown to admins.</p>
      )}
    </div>
  );
}

function WhyForm({ session }: { session: Session }): ReactNode {
  const [principal, setPrincipal] = useState(session.principal);
  const [action, setAction] = useState('SELECT');
  const [resource, setResource] = useState('lake.claims.patient_claims.ssn');
  const [answer, setAnswer] = useState<Decision | null>(null);
  const [error, setError] = useState<unknown>(null);
  const ask = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setError(null);
    try {
      setAnswer(await api<Decision>('POST', '/v1/authorize', { principal: principal.trim(), action, resource: resource.trim() }));
    } catch (err) {
      setAnswer(null);
      setError(err);
    }
  };
  return (
    <section className="panel" aria-labelledby="why-title">
      <h2 id="why-title">Why can or can't someone do something?</h2>
      <form className="inline-form" onSubmit={(e) => void ask(e)}>
        <label htmlFor="why-principal">Principal</label>
        <input id="why-principal" value={principal} onChange={(e) => setPrincipal(e.target.value)} size={18} disabled={session.role !== 'admin'} />
        <label htmlFor="why-action">Action</label>
        <select id="why-action" value={action} onChange={(e) => setAction(e.target.value)}>
          {PERMISSIONS.map((p) => (
            <option key={p}>{p}</option>
          ))}
        </select>
        <label htmlFor="why-resource">Resource</label>
        <input id="why-resource" value={resource} onChange={(e) => setResource(e.target.value)} size={36} />
        <button type="submit">Explain</button>
      </form>
      <ErrorNote error={error} />
      {answer !== null && (
        <div className={answer.decision === 'allow' ? 'explain-ok' : 'refusal'} data-testid="why-answer">
          <h3>
            {answer.principal} {answer.decision === 'allow' ? 'may' : 'may not'} {answer.action} {answer.resource}
          </h3>
          <ul className="reasons">
            {answer.reasons.map((r, i) => (
              <li key={i} className={`reason ${r.code.toLowerCase()}`}>
                {r.message}
                {r.grantId !== undefined && (
                  <>
                    {' '}
                    (<a href={`#grant-${r.grantId}`}>grant {r.grantId}</a>)
                  </>
                )}
                {r.guardrail !== undefined && (
                  <>
                    {' '}
                    (<a href={`#guardrail-${r.guardrail}`}>guardrail {r.guardrail}</a>)
                  </>
                )}
              </li>
            ))}
          </ul>
          {answer.decision === 'allow' && answer.columns !== undefined && <p>Visible columns: {answer.columns.map((c) => c.name).join(', ') || 'none'}</p>}
          {answer.decision === 'allow' && answer.rowFilter !== undefined && answer.rowFilter !== null && (
            <p>
              Rows: <code>{answer.rowFilter}</code>
            </p>
          )}
        </div>
      )}
    </section>
  );
}

/** A tag expression as written in policy files: `k IN (a, b) AND …`, from text or from `{ key: [values] }`. */
function expressionText(e: unknown): string {
  if (typeof e === 'string') return e;
  if (e === null || typeof e !== 'object') return String(e);
  return Object.entries(e as Row)
    .map(([k, v]) => (Array.isArray(v) && v.length === 1 ? `${k}=${String(v[0])}` : `${k} IN (${Array.isArray(v) ? v.join(', ') : String(v)})`))
    .join(' AND ');
}

/** A grant's resource as in policy files: a dotted name, or `{ table, filter | columns | excludedColumns }`, or `{ catalog, tags }`. */
export function grantResourceText(r: unknown): string {
  if (typeof r === 'string') return r;
  if (r === null || typeof r !== 'object') return String(r);
  const g = r as Row;
  if (g['tags'] !== undefined) return `${String(g['catalog'] ?? 'any catalog')} where ${expressionText(g['tags'])}`;
  const table = String(g['table'] ?? '');
  if (g['filter'] !== undefined) return `${table} through filter ${String(g['filter'])}`;
  if (Array.isArray(g['columns'])) return `${table} columns ${g['columns'].join(', ')}`;
  if (Array.isArray(g['excludedColumns'])) return `${table} all columns except ${g['excludedColumns'].join(', ')}`;
  return JSON.stringify(r);
}

const list = (v: unknown): string => (Array.isArray(v) ? v.join(', ') : v === undefined ? '' : String(v));

/** A residency guardrail denies no action; it keeps matching tables in its regions (docs/residency.md). */
function residencyText(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const r = v as { regions?: unknown; mode?: unknown };
  return `nothing; keeps data in ${list(r.regions)} (residency, ${String(r.mode)})`;
}

function Rules(): ReactNode {
  const grants = useLoad((signal) => api<{ grants: Row[] }>('GET', '/v1/grants', undefined, signal), []);
  const guardrails = useLoad((signal) => api<{ guardrails: Row[] }>('GET', '/v1/guardrails', undefined, signal), []);
  return (
    <>
      <section className="panel" aria-labelledby="grants-title">
        <h2 id="grants-title">Grants</h2>
        <ErrorNote error={grants.error} />
        <table className="grid" aria-label="Grants">
          <ColumnHeads names={['Id', 'Principal', 'Resource', 'Permissions', 'Until']} />
          <tbody>
            {grants.data?.grants.map((g) => (
              <tr key={String(g['id'])} id={`grant-${String(g['id'])}`}>
                <th scope="row">{String(g['id'])}</th>
                <td>{String(g['principal'])}</td>
                <td>{grantResourceText(g['resource'])}</td>
                <td>{list(g['permissions'])}</td>
                <td>{g['notAfter'] === undefined ? '—' : String(g['notAfter'])}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section className="panel" aria-labelledby="guardrails-title">
        <h2 id="guardrails-title">Guardrails</h2>
        <ErrorNote error={guardrails.error} />
        <table className="grid" aria-label="Guardrails">
          <ColumnHeads names={['Name', 'Denies', 'On', 'Except', 'Liftable']} />
          <tbody>
            {guardrails.data?.guardrails.map((g) => (
              <tr key={String(g['name'])} id={`guardrail-${String(g['name'])}`}>
                <th scope="row">
                  {String(g['name'])}
                  {typeof g['description'] === 'string' && <div className="muted">{g['description']}</div>}
                </th>
                <td>{residencyText(g['residency']) ?? list(g['actions'])}</td>
                <td>{grantResourceText({ catalog: g['catalog'] ?? 'any catalog', tags: g['resources'] })}</td>
                <td>{list(g['except']) || '—'}</td>
                <td>{g['liftable'] === true ? 'yes' : 'no'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </>
  );
}

interface Plan {
  readonly changes: number;
  readonly summary: Record<string, { added: number; changed: number; removed: number }>;
  readonly text: string;
  readonly version?: number;
}

const POLICY_FILE = 'policy.yaml';

// CodeMirror is shared with the query page's chunk; the policy page's own code stays small until an admin edits.
const YamlText = lazy(() => import('./YamlText.js'));

/** `policy.yaml:12:3` in an error's details → a problem the editor marks at line 12, column 3. */
function problemsOf(error: unknown): Problem[] {
  if (!(error instanceof ApiError)) return [];
  return (error.body.details ?? []).flatMap((d) => {
    const m = /^policy\.yaml:(\d+):(\d+)$/.exec(d.path ?? '');
    return m === null ? [] : [{ line: Number(m[1]), column: Number(m[2]), message: d.message ?? error.body.message }];
  });
}

/**
 * The whole policy as one YAML document: plan shows the diff against the
 * server (errors name line and column), and applying needs a confirmation of
 * that very plan; any edit after planning asks for a new plan.
 */
function YamlEditor(): ReactNode {
  const exported = useLoad((signal) => api<{ yaml: string }>('GET', '/v1/policy/export', undefined, signal), []);
  const [text, setText] = useState<string | null>(null);
  const [plan, setPlan] = useState<{ text: string; plan: Plan } | null>(null);
  const [applied, setApplied] = useState<Plan | null>(null);
  const [error, setError] = useState<unknown>(null);
  const current = text ?? exported.data?.yaml ?? '';
  const problems = useMemo(() => problemsOf(error), [error]);
  const planned = plan !== null && plan.text === current ? plan.plan : null;
  const files = [{ file: POLICY_FILE, text: current }];
  const doPlan = async (): Promise<void> => {
    setError(null);
    setApplied(null);
    try {
      setPlan({ text: current, plan: await api<Plan>('POST', '/v1/policy/plan', { files }) });
    } catch (err) {
      setPlan(null);
      setError(err);
    }
  };
  const apply = async (): Promise<void> => {
    setError(null);
    try {
      setApplied(await api<Plan>('POST', '/v1/policy/apply', { files }));
      setPlan(null);
      setText(null);
      exported.reload();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section className="panel" aria-labelledby="yaml-title">
      <h2 id="yaml-title">Edit as YAML</h2>
      <p className="muted">
        The whole policy as <code>{POLICY_FILE}</code>. Ctrl+Z undoes, Ctrl+Y redoes; Plan checks it and marks each problem at its line and column.
      </p>
      <Suspense fallback={<p className="muted">Loading the editor…</p>}>
        <YamlText
          value={current}
          onChange={(v) => {
            setText(v);
            setApplied(null);
          }}
          problems={problems}
        />
      </Suspense>
      <div className="toolbar">
        <button type="button" onClick={() => void doPlan()}>
          Plan
        </button>
        {planned !== null && planned.changes > 0 && (
          <button type="button" className="danger" onClick={() => void apply()}>
            Confirm: apply {planned.changes} change(s)
          </button>
        )}
      </div>
      <ErrorNote error={error} />
      {planned !== null && (
        <div data-testid="plan">
          <h3>Plan: {planned.changes === 0 ? 'no changes' : `${planned.changes} change(s)`}</h3>
          <pre className="diff">{planned.text}</pre>
        </div>
      )}
      {applied !== null && (
        <p role="status" className="explain-ok">
          Applied {applied.changes} change(s){applied.version === undefined ? '' : `; policy version ${applied.version}`}.
        </p>
      )}
    </section>
  );
}
