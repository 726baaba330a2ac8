/**
 * Just-in-time access: request with the dry run shown before submitting, my
 * requests with time left, the approver inbox (justification, dry-run diff,
 * quorum, comment, approve/reject) and revoke. Polls every 4 s, so a request
 * approved elsewhere changes state without a reload.
 */
import { useState, type ReactNode } from 'react';
import { api, seg, type Session } from '../api.js';
import { useDryRunGate } from '../dry-run-gate.js';
import { ColumnHeads, ErrorNote, useInterval, useLoad } from '../ui.js';

const POLL_MS = 4000;

interface AccessRequest {
  readonly id: string;
  readonly status: string;
  readonly requester: string;
  readonly scope: string;
  readonly permissionSet: string;
  readonly startAt: string;
  readonly endAt: string;
  readonly justification: string;
  readonly approvalsReceived: number;
  readonly approvalsRequired: number;
  readonly approvals?: readonly { approver: string; decision: string; comment?: string }[];
}

interface DryRunEntry {
  readonly resource: string;
  readonly addedPermissions?: readonly string[];
  readonly addedColumns?: readonly string[];
  readonly rowFilterBefore?: string | null;
  readonly rowFilterAfter?: string | null;
  readonly widenedColumns?: readonly string[];
}

interface DryRun {
  readonly addsNothing: boolean;
  readonly entries: readonly DryRunEntry[];
  readonly stillDeniedBy: readonly string[];
}

interface Preview extends DryRun {
  readonly scope: string;
  readonly startAt: string;
  readonly endAt: string;
  readonly approvalRequired: boolean;
  readonly minApprovals: number;
  readonly approverGroups: readonly string[];
}

const LIVE = new Set(['pending', 'approved', 'scheduled', 'active']);

export default function Access({ session }: { session: Session }): ReactNode {
  const mine = useLoad((signal) => api<{ requests: AccessRequest[] }>('GET', '/v1/access/requests?mine=true', undefined, signal), []);
  const visible = useLoad((signal) => api<{ requests: AccessRequest[] }>('GET', '/v1/access/requests?status=pending,active,scheduled', undefined, signal), []);
  useInterval(() => {
    mine.reload();
    visible.reload();
  }, POLL_MS);
  const reload = (): void => {
    mine.reload();
    visible.reload();
  };
  const others = (visible.data?.requests ?? []).filter((r) => r.requester !== session.principal);
  return (
    <div className="stack">
      <h1>Access</h1>
      <RequestForm onSubmitted={reload} />
      <section className="panel" aria-labelledby="mine-title">
        <h2 id="mine-title">My requests</h2>
        <ErrorNote error={mine.error} />
        <RequestTable requests={mine.data?.requests ?? []} label="My requests" actions={(r) => <OwnActions request={r} onDone={reload} />} />
      </section>
      <section className="panel" aria-labelledby="inbox-title">
        <h2 id="inbox-title">Inbox: requests you may approve or revoke</h2>
        <ErrorNote error={visible.error} />
        {others.length === 0 ? <p className="muted">Nothing waits for you.</p> : others.map((r) => <InboxItem key={r.id} request={r} onDone={reload} />)}
      </section>
    </div>
  );
}

function timeLeft(r: AccessRequest): string {
  if (r.status !== 'active') return '';
  const ms = Date.parse(r.endAt) - Date.now();
  if (ms <= 0) return 'ending';
  const m = Math.round(ms / 60000);
  return m >= 60 ? `${Math.floor(m / 60)} h ${m % 60} min left` : `${m} min left`;
}

function RequestTable({ requests, label, actions }: { requests: readonly AccessRequest[]; label: string; actions: (r: AccessRequest) => ReactNode }): ReactNode {
  if (requests.length === 0) return <p className="muted">None.</p>;
  return (
    <table className="grid" aria-label={label}>
      <ColumnHeads names={['Request', 'Scope', 'Status', 'Approvals', 'Until', 'Actions']} />
      <tbody>
        {requests.map((r) => (
          <tr key={r.id} data-testid={`request-${r.id}`}>
            <th scope="row">
              <code>{r.id}</code>
              <div className="muted">{r.permissionSet}</div>
            </th>
            <td>{r.scope}</td>
            <td>
              <span className={`status-pill ${r.status}`} data-testid="status">
                {r.status}
              </span>{' '}
              <span className="muted">{timeLeft(r)}</span>
            </td>
            <td>
              {r.approvalsReceived} of {r.approvalsRequired}
            </td>
            <td>{new Date(r.endAt).toLocaleString()}</td>
            <td>{actions(r)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function OwnActions({ request, onDone }: { request: AccessRequest; onDone: () => void }): ReactNode {
  const [error, setError] = useState<unknown>(null);
  const act = (what: 'cancel' | 'revoke'): void => {
    api('POST', `/v1/access/requests/${seg(request.id)}/${what}`, {})
      .then(onDone)
      .catch(setError);
  };
  return (
    <>
      {(request.status === 'pending' || request.status === 'approved' || request.status === 'scheduled') && (
        <button type="button" className="secondary" onClick={() => act('cancel')}>
          Cancel
        </button>
      )}
      {request.status === 'active' && (
        <button type="button" className="danger" onClick={() => act('revoke')}>
          End now
        </button>
      )}
      <ErrorNote error={error} />
    </>
  );
}

function DryRunView({ dry }: { dry: DryRun }): ReactNode {
  if (dry.addsNothing) return <p className="muted">Adds nothing to the current access.</p>;
  return (
    <>
      <table className="grid" aria-label="What the request adds">
        <ColumnHeads names={['Resource', 'Adds permissions', 'Adds columns', 'Rows before → after']} />
        <tbody>
          {dry.entries.map((e) => (
            <tr key={e.resource}>
              <th scope="row">{e.resource}</th>
              <td>{(e.addedPermissions ?? []).join(', ') || '—'}</td>
              <td>{(e.addedColumns ?? []).join(', ') || '—'}</td>
              <td>
                {e.rowFilterBefore === undefined ? 'no SELECT' : (e.rowFilterBefore ?? 'all rows')} → {e.rowFilterAfter === undefined ? 'no SELECT' : (e.rowFilterAfter ?? 'all rows')}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {dry.stillDeniedBy.length > 0 && <p>Still denied by guardrail(s): {dry.stillDeniedBy.join(', ')}</p>}
    </>
  );
}

function RequestForm({ onSubmitted }: { onSubmitted: () => void }): ReactNode {
  const [scope, setScope] = useState('lake.claims.patient_claims');
  const [permissionSet, setPermissionSet] = useState('read-with-pii');
  const [duration, setDuration] = useState('2h');
  const [justification, setJustification] = useState('');
  const input = { scope: scope.trim(), permissionSet: permissionSet.trim(), duration: duration.trim(), justification: justification.trim() };
  const { current, error, done, dryRun: doPreview, submit } = useDryRunGate<typeof input, Preview, AccessRequest>({
    input,
    dryRunPath: '/v1/access/preview',
    submitPath: '/v1/access/requests',
    onSubmitted: (r) => {
      setJustification('');
      onSubmitted();
      return `Request ${r.id} is ${r.status}.`;
    },
  });
  return (
    <section className="panel" aria-labelledby="request-title">
      <h2 id="request-title">Request temporary access</h2>
      <form className="form-grid" onSubmit={(e) => void doPreview(e)}>
        <label htmlFor="req-scope">Scope</label>
        <input id="req-scope" value={scope} onChange={(e) => setScope(e.target.value)} />
        <label htmlFor="req-set">Permission set</label>
        <input id="req-set" value={permissionSet} onChange={(e) => setPermissionSet(e.target.value)} />
        <label htmlFor="req-duration">Duration</label>
        <input id="req-duration" value={duration} onChange={(e) => setDuration(e.target.value)} placeholder="2h" />
        <label htmlFor="req-justification">Justification</label>
        <textarea id="req-justification" value={justification} onChange={(e) => setJustification(e.target.value)} required />
        <span />
        <span>
          <button type="submit">Preview (dry run)</button>
        </span>
      </form>
      <ErrorNote error={error} />
      {current !== null && (
        <div className="notice" data-testid="preview">
          <h3>If approved, from {new Date(current.startAt).toLocaleString()} to {new Date(current.endAt).toLocaleString()}</h3>
          <DryRunView dry={current} />
          <p>{current.approvalRequired ? `Needs ${current.minApprovals} approval(s) from ${current.approverGroups.join(', ')}.` : 'No approval needed: it starts at once.'}</p>
          <button type="button" onClick={() => void submit()} disabled={input.justification === ''}>
            Submit request
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

function InboxItem({ request, onDone }: { request: AccessRequest; onDone: () => void }): ReactNode {
  const dry = useLoad((signal) => api<DryRun>('GET', `/v1/access/requests/${seg(request.id)}/dry-run`, undefined, signal), [request.id]);
  const [comment, setComment] = useState('');
  const [error, setError] = useState<unknown>(null);
  const act = (what: 'approve' | 'reject' | 'revoke'): void => {
    setError(null);
    const body = what === 'revoke' ? (comment.trim() === '' ? {} : { reason: comment.trim() }) : comment.trim() === '' ? {} : { comment: comment.trim() };
    api('POST', `/v1/access/requests/${seg(request.id)}/${what}`, body)
      .then(() => {
        setComment('');
        onDone();
      })
      .catch(setError);
  };
  const commentId = `comment-${request.id}`;
  return (
    <article className="inbox-item" aria-label={`Request ${request.id} from ${request.requester}`} data-testid={`inbox-${request.id}`}>
      <h3>
        {request.requester} asks for <code>{request.permissionSet}</code> on <code>{request.scope}</code>{' '}
        <span className={`status-pill ${request.status}`} data-testid="status">
          {request.status}
        </span>
      </h3>
      <p>
        <strong>Justification:</strong> <span data-testid="justification">{request.justification}</span>
      </p>
      <p>
        Quorum: {request.approvalsReceived} of {request.approvalsRequired} approval(s) · until {new Date(request.endAt).toLocaleString()} {timeLeft(request)}
      </p>
      <ErrorNote error={dry.error} />
      {dry.data !== undefined && <DryRunView dry={dry.data} />}
      {LIVE.has(request.status) && (
        <div className="inline-form">
          <label htmlFor={commentId}>Comment</label>
          <input id={commentId} value={comment} onChange={(e) => setComment(e.target.value)} size={40} />
          {request.status === 'pending' && (
            <>
              <button type="button" onClick={() => act('approve')}>
                Approve
              </button>
              <button type="button" className="secondary" onClick={() => act('reject')}>
                Reject
              </button>
            </>
          )}
          {request.status === 'active' && (
            <button type="button" className="danger" onClick={() => act('revoke')}>
              Revoke
            </button>
          )}
        </div>
      )}
      <ErrorNote error={error} />
    </article>
  );
}
