/**
 * Access experiments (docs/experiments.md): the templates, starting a run
 * with its dry run shown first, the runs with their state and time left,
 * approve / reject a pending run, stop a running one, and a run's report from
 * the security lake. Polls every 4 s, so a run that ends on its timer or on a
 * stop condition changes state without a reload. Everything from the API is
 * rendered as text: descriptions and stop reasons are free text.
 */
import { useState, type ReactNode } from 'react';
import { api, seg, type Session } from '../api.js';
import { useDryRunGate } from '../dry-run-gate.js';
import { ColumnHeads, ErrorNote, useInterval, useLoad } from '../ui.js';

const POLL_MS = 4000;

interface Template {
  readonly name: string;
  readonly description?: string;
  readonly targets: readonly string[];
  readonly actions: readonly string[];
  readonly scope: string;
  readonly columns?: readonly string[];
  readonly tags?: string;
  readonly share: number;
  readonly duration: string;
  readonly stopConditions: readonly string[];
  readonly excluded: readonly string[];
  readonly selfService: boolean;
  readonly approverGroups: readonly string[];
  readonly minApprovals: number;
}

interface Run {
  readonly id: string;
  readonly template: string;
  readonly status: 'pending' | 'running' | 'ended' | 'stopped' | 'rejected' | string;
  readonly duration: string;
  readonly startedBy: string;
  readonly createdAt: string;
  readonly startedAt?: string;
  readonly endsAt?: string;
  readonly endedAt?: string;
  readonly endReason?: string;
  readonly approvals: readonly { approver: string; decision: string; at: string }[];
  readonly approvalsRequired: number;
  readonly spec: Template;
}

interface DryRun {
  readonly entries: readonly { principal: string; action: string; resource: string; before: string; after: string; columnsLost?: readonly string[] }[];
  readonly principals: readonly string[];
  readonly excludedSpared: readonly string[];
  readonly truncated: boolean;
}

interface Report {
  readonly status: string;
  readonly startedAt: string | null;
  readonly endedAt: string | null;
  readonly endReason: string | null;
  readonly refusals: readonly { principal: string; resource: string; refused: number; first: string; last: string; recoveredAt?: string }[];
  readonly totalRefused: number;
  readonly monitorsFired: readonly { monitor: string; at: string; stopCondition: boolean }[];
  readonly timeToFirstRefusalMs: number | null;
  readonly timeToRecoveryMs: number | null;
  readonly notRecovered: readonly { principal: string; resource: string }[];
}

/** The status pills' colours (styles.css): a running experiment is live like active access. */
const PILL: Readonly<Record<string, string>> = { pending: 'pending', running: 'active', rejected: 'rejected', stopped: 'revoked' };

export default function Experiments({ session }: { session: Session }): ReactNode {
  if (session.role !== 'admin') return <ExperimentsInbox session={session} />;
  return <ExperimentsAdmin session={session} />;
}

/** Anyone else: the pending runs they may approve or reject (the API lists exactly those). */
function ExperimentsInbox({ session }: { session: Session }): ReactNode {
  const runs = useLoad((signal) => api<{ experiments: Run[] }>('GET', '/v1/experiments', undefined, signal), []);
  const [open, setOpen] = useState<string | null>(null);
  useInterval(() => runs.reload(), POLL_MS);
  const pending = runs.data?.experiments ?? [];
  const selected = pending.find((r) => r.id === open);
  return (
    <div className="stack">
      <h1>Experiments</h1>
      <p className="muted">Experiments are run by administrators. Runs that wait for your approval appear here.</p>
      <section className="panel" aria-labelledby="inbox-title">
        <h2 id="inbox-title">Awaiting your approval</h2>
        <ErrorNote error={runs.error} />
        {pending.length === 0 ? <p className="muted">Nothing waits for you.</p> : <RunTable runs={pending} onOpen={setOpen} />}
      </section>
      {selected !== undefined && <RunDetail key={selected.id} run={selected} session={session} onChanged={runs.reload} />}
    </div>
  );
}

function ExperimentsAdmin({ session }: { session: Session }): ReactNode {
  const templates = useLoad((signal) => api<{ templates: Template[] }>('GET', '/v1/experiments/templates', undefined, signal), []);
  const runs = useLoad((signal) => api<{ experiments: Run[] }>('GET', '/v1/experiments', undefined, signal), []);
  const [open, setOpen] = useState<string | null>(null);
  useInterval(() => runs.reload(), POLL_MS);
  const selected = runs.data?.experiments.find((r) => r.id === open);
  return (
    <div className="stack">
      <h1>Experiments</h1>
      <p className="muted">Take access away on purpose, for a bounded time, and see what breaks. Steward always gives it back.</p>
      <section className="panel" aria-labelledby="templates-title">
        <h2 id="templates-title">Templates</h2>
        <ErrorNote error={templates.error} />
        <TemplateTable templates={templates.data?.templates ?? []} />
      </section>
      <StartForm
        templates={templates.data?.templates ?? []}
        onStarted={(id) => {
          setOpen(id);
          runs.reload();
        }}
      />
      <section className="panel" aria-labelledby="runs-title">
        <h2 id="runs-title">Runs</h2>
        <ErrorNote error={runs.error} />
        <RunTable runs={runs.data?.experiments ?? []} onOpen={setOpen} />
      </section>
      {selected !== undefined && <RunDetail key={selected.id} run={selected} session={session} onChanged={runs.reload} />}
    </div>
  );
}

function scopeText(t: Template): string {
  if (t.columns !== undefined) return `${t.scope} (columns ${t.columns.join(', ')})`;
  if (t.tags !== undefined) return `${t.scope} where ${t.tags}`;
  return t.share < 100 ? `${t.scope} (${t.share}% of its tables)` : t.scope;
}

function approvalText(t: Template): string {
  return t.selfService ? 'self-service (non-production only)' : `${t.minApprovals} from ${t.approverGroups.join(', ')}`;
}

const list = (xs: readonly string[]): string => (xs.length === 0 ? '—' : xs.join(', '));

function TemplateTable({ templates }: { templates: readonly Template[] }): ReactNode {
  if (templates.length === 0) return <p className="muted">No templates yet: `steward experiment template create` or `POST /v1/experiments/templates`.</p>;
  return (
    <table className="grid" aria-label="Experiment templates">
      <ColumnHeads names={['Template', 'Targets', 'Denies', 'Scope', 'Duration', 'Stop conditions', 'Approval']} />
      <tbody>
        {templates.map((t) => (
          <tr key={t.name} data-testid={`template-${t.name}`}>
            <th scope="row">
              <code>{t.name}</code>
              {t.description !== undefined && (
                <div className="muted" data-testid="description">
                  {t.description}
                </div>
              )}
            </th>
            <td>{list(t.targets)}</td>
            <td>{list(t.actions)}</td>
            <td>{scopeText(t)}</td>
            <td>{t.duration}</td>
            <td>{list(t.stopConditions)}</td>
            <td>{approvalText(t)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function StartForm({ templates, onStarted }: { templates: readonly Template[]; onStarted: (id: string) => void }): ReactNode {
  const [template, setTemplate] = useState('');
  const [duration, setDuration] = useState('');
  const chosen = template === '' ? (templates[0]?.name ?? '') : template;
  const input = { template: chosen, ...(duration.trim() === '' ? {} : { duration: duration.trim() }) };
  // Start is offered only for the dry run of exactly what is in the form.
  const { current, error, done, dryRun, submit: start } = useDryRunGate<typeof input, DryRun, Run>({
    input,
    dryRunPath: '/v1/experiments/dry-run',
    submitPath: '/v1/experiments',
    onSubmitted: (run) => {
      onStarted(run.id);
      return run.status === 'pending' ? `Experiment ${run.id} waits for approval.` : `Experiment ${run.id} started.`;
    },
  });
  return (
    <section className="panel" aria-labelledby="start-title">
      <h2 id="start-title">Start an experiment</h2>
      <form className="form-grid" onSubmit={(e) => void dryRun(e)}>
        <label htmlFor="x-template">Template</label>
        <select id="x-template" value={chosen} onChange={(e) => setTemplate(e.target.value)}>
          {templates.map((t) => (
            <option key={t.name} value={t.name}>
              {t.name}
            </option>
          ))}
        </select>
        <label htmlFor="x-duration">Duration (optional)</label>
        <input id="x-duration" value={duration} onChange={(e) => setDuration(e.target.value)} placeholder="the template's" />
        <span />
        <span>
          <button type="submit" disabled={chosen === ''}>
            Dry run
          </button>
        </span>
      </form>
      <ErrorNote error={error} />
      {current !== null && (
        <div className="notice" data-testid="dry-run">
          <h3>If {chosen} ran now</h3>
          <DryRunView dry={current} />
          <button type="button" className="danger" onClick={() => void start()}>
            Start experiment
          </button>
        </div>
      )}
      {done !== null && (
        <p role="status" className="explain-ok">
          {done}
        </p>
      )}
    </section>
  );
}

function DryRunView({ dry }: { dry: DryRun }): ReactNode {
  return (
    <>
      <p>
        Denies: {list(dry.principals)}
        {dry.excludedSpared.length > 0 && <> · spared as excluded: {dry.excludedSpared.join(', ')}</>}
      </p>
      {dry.entries.length === 0 ? (
        <p className="muted">No decision would change.</p>
      ) : (
        <table className="grid" aria-label="Decisions that would change">
          <ColumnHeads names={['Principal', 'Action', 'Resource', 'Before → after']} />
          <tbody>
            {dry.entries.map((e) => (
              <tr key={`${e.principal} ${e.action} ${e.resource}`}>
                <th scope="row">{e.principal}</th>
                <td>{e.action}</td>
                <td>{e.resource}</td>
                <td>
                  {e.before} → {e.after}
                  {e.columnsLost !== undefined && e.columnsLost.length > 0 && <> (loses columns {e.columnsLost.join(', ')})</>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {dry.truncated && <p className="muted">Only the first entries are shown.</p>}
    </>
  );
}

function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  // Rounded once, to whole seconds, so 299.6 s reads 5 min 0 s, never 4 min 60 s.
  const total = Math.round(ms / 1000);
  const m = Math.floor(total / 60);
  return m >= 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${m} min ${total % 60} s`;
}

function timeLeft(run: Run): string {
  if (run.status !== 'running' || run.endsAt === undefined) return '';
  const ms = Date.parse(run.endsAt) - Date.now();
  return ms <= 0 ? 'ending' : `${formatMs(ms)} left`;
}

const when = (iso: string | null | undefined): string => (iso === null || iso === undefined ? '—' : new Date(iso).toLocaleString());

function StatusPill({ status }: { status: string }): ReactNode {
  return (
    <span className={`status-pill ${PILL[status] ?? ''}`} data-testid="status">
      {status}
    </span>
  );
}

function RunTable({ runs, onOpen }: { runs: readonly Run[]; onOpen: (id: string) => void }): ReactNode {
  if (runs.length === 0) return <p className="muted">None.</p>;
  return (
    <table className="grid" aria-label="Experiment runs">
      <ColumnHeads names={['Run', 'Status', 'Targets', 'Scope', 'Ends / ended at', 'Approvals', 'Details']} />
      <tbody>
        {runs.map((r) => (
          <tr key={r.id} data-testid={`run-${r.id}`}>
            <th scope="row">
              <code>{r.id}</code>
              <div className="muted">
                {r.template}, started by {r.startedBy}
              </div>
            </th>
            <td>
              <StatusPill status={r.status} /> <span className="muted">{timeLeft(r)}</span>
            </td>
            <td>{list(r.spec.targets)}</td>
            <td>
              {r.spec.actions.join(', ')} on {scopeText(r.spec)}
            </td>
            <td>{when(r.endedAt ?? r.endsAt)}</td>
            <td>{r.approvalsRequired === 0 ? 'none needed' : `${r.approvals.filter((a) => a.decision === 'approve').length} of ${r.approvalsRequired}`}</td>
            <td>
              <button type="button" className="secondary" onClick={() => onOpen(r.id)} aria-label={`Open ${r.id}`}>
                Open
              </button>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function RunDetail({ run, session, onChanged }: { run: Run; session: Session; onChanged: () => void }): ReactNode {
  const [reason, setReason] = useState('');
  const [error, setError] = useState<unknown>(null);
  const act = (what: 'stop' | 'approve' | 'reject'): void => {
    setError(null);
    const body = what === 'stop' && reason.trim() !== '' ? { reason: reason.trim() } : {};
    api('POST', `/v1/experiments/${seg(run.id)}/${what}`, body)
      .then(() => {
        setReason('');
        onChanged();
      })
      .catch(setError);
  };
  // The server decides who may approve (members of the approver groups, never the starter); the starter is never offered it.
  const mayDecide = run.status === 'pending' && run.startedBy !== session.principal && !run.approvals.some((a) => a.approver === session.principal);
  return (
    <section className="panel" aria-labelledby="run-title" data-testid="run-detail">
      <h2 id="run-title">
        Experiment <code>{run.id}</code> <StatusPill status={run.status} />
      </h2>
      <p>
        Template <code>{run.template}</code>, started by {run.startedBy} · {run.duration} · from {when(run.startedAt)} to {when(run.endedAt ?? run.endsAt)} {timeLeft(run)}
      </p>
      {run.spec.description !== undefined && <p data-testid="run-description">{run.spec.description}</p>}
      {run.endReason !== undefined && (
        <p>
          <strong>Ended:</strong> <span data-testid="end-reason">{run.endReason}</span>
        </p>
      )}
      {(run.status === 'running' || run.status === 'pending') && (
        <div className="inline-form">
          <label htmlFor="x-reason">Reason</label>
          <input id="x-reason" value={reason} onChange={(e) => setReason(e.target.value)} size={40} />
          {mayDecide && (
            <>
              <button type="button" onClick={() => act('approve')}>
                Approve
              </button>
              <button type="button" className="secondary" onClick={() => act('reject')}>
                Reject
              </button>
            </>
          )}
          {session.role === 'admin' && (
            <button type="button" className="danger" onClick={() => act('stop')}>
              Stop now
            </button>
          )}
        </div>
      )}
      <ErrorNote error={error} />
      {(run.status === 'running' || run.status === 'ended' || run.status === 'stopped') && <ReportView id={run.id} status={run.status} />}
    </section>
  );
}

function ReportView({ id, status }: { id: string; status: string }): ReactNode {
  // Reloaded when the run's status changes, so a stopped run shows its final report.
  const report = useLoad((signal) => api<Report>('GET', `/v1/experiments/${seg(id)}/report`, undefined, signal), [id, status]);
  const r = report.data;
  return (
    <div data-testid="report">
      <h3>
        Report{' '}
        <button type="button" className="secondary" onClick={report.reload} disabled={report.loading}>
          Refresh
        </button>
      </h3>
      <ErrorNote error={report.error} />
      {r !== undefined && (
        <>
          <p>
            Refused decisions: <strong data-testid="total-refused">{r.totalRefused}</strong> · time to the first refusal:{' '}
            <strong data-testid="first-refusal">{r.timeToFirstRefusalMs === null ? 'no refusal' : formatMs(r.timeToFirstRefusalMs)}</strong> · time to recovery after the end:{' '}
            <strong data-testid="recovery">{r.timeToRecoveryMs === null ? (r.endedAt === null ? 'still running' : 'not recovered yet') : formatMs(r.timeToRecoveryMs)}</strong>
          </p>
          {r.refusals.length === 0 ? (
            <p className="muted">No refused decisions in the window.</p>
          ) : (
            <table className="grid" aria-label="Refused decisions by principal and resource">
              <ColumnHeads names={['Principal', 'Resource', 'Refused', 'First', 'Last', 'Allowed again']} />
              <tbody>
                {r.refusals.map((x) => (
                  <tr key={`${x.principal} ${x.resource}`}>
                    <th scope="row">{x.principal}</th>
                    <td>{x.resource}</td>
                    <td>{x.refused}</td>
                    <td>{when(x.first)}</td>
                    <td>{when(x.last)}</td>
                    <td>{when(x.recoveredAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h4>Monitors that fired</h4>
          {r.monitorsFired.length === 0 ? (
            <p className="muted">None.</p>
          ) : (
            <ul data-testid="monitors-fired">
              {r.monitorsFired.map((m) => (
                <li key={`${m.monitor} ${m.at}`}>
                  {m.monitor} at {when(m.at)}
                  {m.stopCondition && ' (a stop condition of this run)'}
                </li>
              ))}
            </ul>
          )}
          {r.notRecovered.length > 0 && (
            <p>
              Not allowed again since the end: {r.notRecovered.map((n) => `${n.principal} on ${n.resource}`).join('; ')}
            </p>
          )}
        </>
      )}
    </div>
  );
}
