/**
 * Notifications: which messages a transition produces (pure), and how an
 * outbox row is delivered (email over SMTP with nodemailer, or a webhook POST
 * with a Slack-compatible `text` body).
 *
 * Messages are recorded in `steward.access_outbox` inside the transaction
 * that makes the transition and delivered after it commits, with retries: no
 * network I/O ever happens inside a transaction, and a crash between commit
 * and delivery only delays the message (delivery is at least once).
 */
import type nodemailer from 'nodemailer';
import type { PolicyWorld } from '../policy/model.js';
import { membershipGraph, usersInGroup } from '../policy/principals.js';
import type { AccessRequest, NotificationSettings, RequestStatus } from './access-types.js';
import type { AccessEvent } from './state-machine.js';
import type { OutboxRow } from './access-store.js';
import { formatDuration } from '../time.js';

export interface TransitionNote {
  readonly request: AccessRequest;
  readonly event: AccessEvent | 'request';
  readonly from: RequestStatus | null;
  readonly to: RequestStatus;
  /** Who caused it: `user:carol`, or `system` for timers. */
  readonly actor: string;
  readonly reason: string;
}

const VERB: Readonly<Record<TransitionNote['event'], string>> = {
  request: 'was requested',
  approve_partial: 'received an approval',
  approve: 'was approved',
  reject: 'was rejected',
  cancel: 'was cancelled',
  expire: 'expired without a decision',
  schedule: 'is scheduled',
  activate: 'is now active',
  extend: 'was extended',
  end: 'has ended',
  revoke: 'was revoked',
  fail: 'failed',
};

function summary(r: AccessRequest): string {
  return `${r.requester} · ${r.permissionSet} on ${r.scope} · ${formatDuration(r.durationSeconds)} from ${r.startAt}`;
}

/** The email address of a user, or null when none is known. */
export function emailOf(settings: NotificationSettings, user: string): string | null {
  const contacts = settings.contacts;
  const direct = contacts !== undefined && Object.hasOwn(contacts, user) ? contacts[user] : undefined;
  if (direct !== undefined) return direct;
  return settings.emailDomain === undefined ? null : `${user}@${settings.emailDomain}`;
}

/** Users who may approve the request (the requester never counts). */
export function approversOf(world: PolicyWorld, r: Pick<AccessRequest, 'rule' | 'requester'>): string[] {
  const graph = membershipGraph(world);
  const self = r.requester.slice('user:'.length);
  return [...new Set(r.rule.approverGroups.flatMap((g) => usersInGroup(graph, g)))].filter((u) => u !== self).sort();
}

/**
 * The outbox rows for one transition: an email to the requester and to every
 * approver with an address, and one message per webhook. Approvers other than
 * the one who acted are told the request is handled.
 */
export function messagesFor(note: TransitionNote, world: PolicyWorld, settings: NotificationSettings): OutboxRow[] {
  const r = note.request;
  const rows: OutboxRow[] = [];
  const headline = `Access request ${r.id} ${VERB[note.event]}${note.actor === 'system' ? '' : ` by ${note.actor}`}`;
  const body = [`${headline}.`, summary(r), `Status: ${note.to}.`, note.reason === '' ? '' : `Reason: ${note.reason}`, `Justification: ${r.justification}`]
    .filter((l) => l !== '')
    .join('\n');
  const decided = note.event === 'approve' || note.event === 'reject' || note.event === 'approve_partial';
  const base = { event: note.event, requestId: r.id, status: note.to, from: note.from, actor: note.actor };
  if (settings.smtp !== undefined) {
    const requester = r.requester.slice('user:'.length);
    const to = emailOf(settings, requester);
    if (to !== null) rows.push({ requestId: r.id, channel: 'email', target: to, payload: { ...base, role: 'requester', subject: `[Steward] ${headline}`, text: body } });
    for (const u of approversOf(world, r)) {
      const addr = emailOf(settings, u);
      if (addr === null) continue;
      const actedHere = note.actor === `user:${u}` || note.actor.startsWith(`user:${u} `);
      const handled = decided && !actedHere && note.event !== 'approve_partial';
      const text = handled ? `${body}\n\nThis request has been handled by ${note.actor}; no action is needed from you.` : body;
      const subject = handled ? `[Steward] Handled: ${headline}` : note.event === 'request' ? `[Steward] Approval needed: ${headline}` : `[Steward] ${headline}`;
      rows.push({ requestId: r.id, channel: 'email', target: addr, payload: { ...base, role: 'approver', handled, subject, text } });
    }
  }
  for (const hook of settings.webhooks ?? []) {
    rows.push({
      requestId: r.id,
      channel: 'webhook',
      target: hook.url,
      payload: {
        ...base,
        text: `${headline}: ${summary(r)}${note.reason === '' ? '' : ` (${note.reason})`}`,
        request: { id: r.id, requester: r.requester, scope: r.scope, permissionSet: r.permissionSet, startAt: r.startAt, endAt: r.endAt, status: note.to },
      },
    });
  }
  return rows;
}

// ------------------------------------------------------------------ delivery

export interface Deliverer {
  deliver(row: OutboxRow): Promise<void>;
  close(): void;
}

/** Delivers through SMTP and HTTP. `settings` are read per call so configuration edits apply at once. */
export function createDeliverer(settings: () => NotificationSettings, env: NodeJS.ProcessEnv = process.env): Deliverer {
  let transport: { key: string; t: nodemailer.Transporter } | undefined;
  const mailer = async (): Promise<nodemailer.Transporter> => {
    // Loaded with the first email (most workspaces never send one), before the
    // check below so that no other delivery can interleave with it.
    const { default: smtpClient } = await import('nodemailer');
    const smtp = settings().smtp;
    if (smtp === undefined) throw new Error('smtp is not configured');
    const key = JSON.stringify(smtp);
    if (transport?.key !== key) {
      transport?.t.close();
      const pass = smtp.passwordEnv === undefined ? undefined : env[smtp.passwordEnv];
      transport = {
        key,
        t: smtpClient.createTransport({
          host: smtp.host,
          port: smtp.port,
          secure: smtp.secure ?? false,
          ...(smtp.user === undefined ? {} : { auth: { user: smtp.user, pass: pass ?? '' } }),
          ...(smtp.insecureTls === true ? { tls: { rejectUnauthorized: false } } : {}),
          connectionTimeout: 5000,
          greetingTimeout: 5000,
          socketTimeout: 10000,
        }),
      };
    }
    return transport.t;
  };
  return {
    async deliver(row) {
      if (row.channel === 'email') {
        const smtp = settings().smtp;
        await (await mailer()).sendMail({
          from: smtp?.from,
          to: row.target,
          subject: String(row.payload['subject'] ?? '[Steward] access request'),
          text: String(row.payload['text'] ?? ''),
          headers: { 'X-Steward-Request': row.requestId, 'X-Steward-Event': String(row.payload['event'] ?? '') },
        });
        return;
      }
      const res = await fetch(row.target, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'steward-access' },
        body: JSON.stringify(row.payload),
        signal: AbortSignal.timeout(10_000),
      });
      await res.body?.cancel().catch(() => undefined);
      if (!res.ok) throw new Error(`webhook answered ${res.status}`);
    },
    close() {
      transport?.t.close();
      transport = undefined;
    },
  };
}

/** Backoff between attempts: 1 s, 2 s, 4 s … capped at 5 min; null after the last attempt. */
export function retryDelayMs(attempts: number, maxAttempts = 10): number | null {
  if (attempts >= maxAttempts) return null;
  return Math.min(300_000, 1000 * 2 ** Math.max(0, attempts - 1));
}

