/**
 * Just-in-time access: requests, approvals, activation and expiry, the
 * durable scheduler tick, the reconciliation sweep and notification delivery.
 *
 * Atomicity. A transition (request row, its timers, its decision-log entry,
 * its outbox rows) and the policy change it implies (the `jit-<id>` grant,
 * which carries the request's guardrail lifts and its `notAfter`) commit in ONE transaction: the state service's
 * `change()` opens its own transaction and cannot join ours, so this service
 * uses the same two steps it does — apply the changes to the snapshot world
 * and `assertValidWorld` it, then `StateStore.applyChanges` with the snapshot
 * version — on the transaction it already holds (`Db.transaction` reuses an
 * open one). The next `state.snapshot()` anywhere sees the new version and
 * rebuilds its engine, exactly as after `change()`. A version conflict rolls
 * everything back and the operation is retried on a fresh snapshot.
 *
 * Idempotence. Every transition re-reads the request under its row lock and
 * checks the state it starts from, so a timer that fires twice, a retry, or a
 * second process performs it once (keyed by request id + target state).
 */
import { withRetries } from '../store/retry.js';
import { randomBytes } from 'node:crypto';
import type { Db } from '../store/db.js';
import type { StateService, Snapshot } from '../workspace/state-service.js';
import { createStateStore } from '../store/state-store.js';
import { insertDecisions, type DecisionLogEntry } from '../store/decision-log.js';
import { applyChanges, stableJson, type Change } from '../policy/changes.js';
import { assertValidWorld } from '../policy/validate.js';
import type { Grant, PolicyWorld, PrincipalRef } from '../policy/model.js';
import { EMPTY_WORLD, resourceToString } from '../policy/model.js';
import { createEngine } from '../policy/engine.js';
import { membershipGraph, principalSet } from '../policy/principals.js';
import { StewardError } from '../errors.js';
import { endWithinRange } from '../time.js';
import type { AccessConfig, AccessRequest, RequestStatus } from './access-types.js';
import { grantIdFor, isTerminal, requestIdOfGrant, JIT_GRANT_PREFIX } from './access-types.js';
import { transition, type AccessEvent } from './state-machine.js';
import { canApprove, evaluateRequest, grantFor } from './policies.js';
import { formatDuration } from '../time.js';
import { dryRun, type DryRunResult } from './dry-run.js';
import { mergeAccessDocuments, toAccessConfig, toAccessDocument } from './access-config.js';
import * as store from './access-store.js';
import { createDeliverer, messagesFor, retryDelayMs, type Deliverer, type TransitionNote } from './notify.js';

/** Who is acting, after `x-steward-as` resolution. */
export interface AccessActor {
  readonly principal: PrincipalRef;
  /** An admin token (or the embedded CLI) acting as itself. */
  readonly admin: boolean;
  /** Set when an admin acts as `principal` through `x-steward-as`. */
  readonly impersonatedBy?: string;
}

export interface Personas {
  readonly principal: PrincipalRef;
  readonly requester: boolean;
  readonly approver: boolean;
  readonly auditor: boolean;
  readonly admin: boolean;
}

export interface NewRequest {
  readonly scope: string;
  readonly permissionSet: string;
  /** Epoch ms; now when absent. */
  readonly startAt?: number;
  readonly durationSeconds: number;
  readonly ticket?: string;
  readonly justification: string;
}

export interface AccessPreview extends DryRunResult {
  readonly scope: string;
  readonly startAt: string;
  readonly endAt: string;
  readonly approvalRequired: boolean;
  readonly minApprovals: number;
  readonly approverGroups: readonly string[];
}

export interface AccessRequestView extends AccessRequest {
  readonly timers: readonly { kind: string; dueAt: string }[];
  readonly grantId: string;
  /** Distinct approvals in the current round and how many are needed. */
  readonly approvalsReceived: number;
  readonly approvalsRequired: number;
}

export interface ActivityEntry {
  readonly id: number;
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly resource: string;
  readonly result: string;
  readonly reason: string;
  /** True when the request's own grant allowed this action (the gateway logs the grants each query used). */
  readonly elevated: boolean;
}

export interface AccessService {
  personas(actor: AccessActor): Promise<Personas>;
  request(actor: AccessActor, input: NewRequest): Promise<AccessRequestView>;
  approve(actor: AccessActor, id: string, comment?: string): Promise<AccessRequestView>;
  reject(actor: AccessActor, id: string, comment?: string): Promise<AccessRequestView>;
  cancel(actor: AccessActor, id: string, reason?: string): Promise<AccessRequestView>;
  revoke(actor: AccessActor, id: string, reason?: string): Promise<AccessRequestView>;
  /** Proposes (requester) or proposes and approves (approver) a longer window. */
  extend(actor: AccessActor, id: string, seconds: number, justification?: string): Promise<AccessRequestView>;
  get(actor: AccessActor, id: string): Promise<AccessRequestView>;
  list(actor: AccessActor, filter?: { statuses?: readonly RequestStatus[]; mine?: boolean }): Promise<AccessRequestView[]>;
  dryRun(actor: AccessActor, id: string): Promise<DryRunResult>;
  /** What a request would add, and who must approve it, before it is submitted; stores nothing. Refuses what `request` would refuse. */
  preview(actor: AccessActor, input: NewRequest): Promise<AccessPreview>;
  activity(actor: AccessActor, id: string): Promise<ActivityEntry[]>;
  notifications(actor: AccessActor, id: string): Promise<Awaited<ReturnType<typeof store.outboxOf>>>;
  /** Requests of `principal` active at `now`: the gateway links queries to them. */
  getConfig(actor: AccessActor): Promise<Record<string, unknown>>;
  putConfig(actor: AccessActor, document: unknown): Promise<Record<string, unknown>>;
  /** Adds the named entries of `document` that are missing; returns true when anything changed. */
  mergeConfig(actor: AccessActor, document: unknown): Promise<boolean>;
  /** Runs every due timer (in batches); returns how many timers fired. */
  runDue(now?: number): Promise<number>;
  /** Removes `jit-*` grants no active request backs, restores missing ones; returns what it fixed. */
  sweep(now?: number): Promise<{ removed: string[]; restored: string[] }>;
  /** Delivers due outbox rows; returns how many were delivered. */
  deliverOutbox(now?: number): Promise<number>;
  nextDue(): Promise<number | null>;
  close(): void;
}

export interface AccessServiceOptions {
  readonly db: Db;
  readonly state: StateService;
  readonly now?: () => number;
  /** Timers claimed per transaction. */
  readonly batchSize?: number;
  readonly deliverer?: Deliverer;
  /** Called after a transaction that changed the policy committed (wakes the warehouse sync, as the state service's own commits do). */
  readonly committed?: () => void;
}

interface Effects {
  readonly log: DecisionLogEntry[];
  readonly changes: Change[];
  readonly notes: TransitionNote[];
  needsVersion: boolean;
}

/** Stands in for the world when a transaction provably needs none (grant deletes, nobody to notify). */
const NO_WORLD: Snapshot = { version: -1, world: EMPTY_WORLD, engine: createEngine(EMPTY_WORLD) };

const iso = (ms: number): string => new Date(ms).toISOString();

export function newRequestId(): string {
  return `ar-${randomBytes(6).toString('hex')}`;
}

/** `user:alice` for the decision log; impersonation is recorded in the entry's details. */
function actorLabel(a: AccessActor): string {
  return a.principal;
}

/** A new request's rule, scope and window, under the same eligibility checks whether it is submitted or only previewed. */
function evaluateWindow(world: PolicyWorld, config: AccessConfig, actor: AccessActor, input: NewRequest, now: number) {
  const { rule, scope, startAt } = evaluateRequest(
    world,
    config,
    {
      requester: actor.principal,
      scope: input.scope,
      permissionSet: input.permissionSet,
      durationSeconds: input.durationSeconds,
      justification: input.justification,
      ...(input.startAt === undefined ? {} : { startAt: input.startAt }),
      ...(input.ticket === undefined ? {} : { ticket: input.ticket }),
    },
    now,
  );
  const start = Math.max(startAt, now);
  return { rule, scope, start, end: start + input.durationSeconds * 1000 };
}

export function createAccessService(options: AccessServiceOptions): AccessService {
  const { db, state, committed } = options;
  const clock = options.now ?? Date.now;
  const batchSize = options.batchSize ?? 500;
  let cachedSettings = toAccessConfig({}).settings.notifications;
  let lastSnapshot: Snapshot | undefined;
  const deliverer = options.deliverer ?? createDeliverer(() => cachedSettings);

  const loadConfig = async (tx: Db = db): Promise<AccessConfig> => {
    const { config } = await store.loadAccessConfig(tx);
    cachedSettings = config.settings.notifications;
    return config;
  };

  // ------------------------------------------------------------ transactions

  /**
   * Runs `fn` in a transaction with a fresh snapshot, then commits its
   * effects (policy changes validated against the snapshot, decision-log
   * entries, outbox rows) in the same transaction. Retries on version
   * conflicts, deadlocks and serialization failures.
   */
  async function inTransaction<T>(fn: (tx: Db, snap: Snapshot, eff: Effects, config: AccessConfig) => Promise<T>, options: { staleWorldOk?: boolean } = {}): Promise<T> {
    return withRetries(async (attempt) => {
      // Ends without guardrail lifts only delete grants (always valid, no version check) and
      // use the world for notification recipients only, so a slightly stale snapshot is fine
      // there and saves rebuilding a large world on every expiry tick.
      const stale = options.staleWorldOk === true && attempt === 0;
      const quiet = cachedSettings.smtp === undefined && (cachedSettings.webhooks ?? []).length === 0;
      const snap = stale && lastSnapshot !== undefined ? lastSnapshot : stale && quiet ? NO_WORLD : await state.snapshot();
      if (snap !== NO_WORLD) lastSnapshot = snap;
      const config = await loadConfig();
      let changed = false;
      const result = await db.transaction(async (tx) => {
        const eff: Effects = { log: [], changes: [], notes: [], needsVersion: false };
        const value = await fn(tx, snap, eff, config);
        await commitEffects(tx, snap, eff, config);
        changed = eff.changes.length > 0;
        return value;
      });
      if (changed) committed?.();
      return result;
    });
  }

  async function commitEffects(tx: Db, snap: Snapshot, eff: Effects, config: AccessConfig): Promise<void> {
    if (eff.changes.length > 0) {
      const next = applyChanges(snap.world, eff.changes);
      if (eff.needsVersion) assertValidWorld(next);
      await createStateStore(tx).applyChanges(eff.changes, { ...(eff.needsVersion ? { expectedVersion: snap.version } : {}), log: eff.log });
    } else {
      await insertDecisions(eff.log, tx);
    }
    const world = eff.changes.length > 0 ? applyChanges(snap.world, eff.changes) : snap.world;
    const rows = eff.notes.flatMap((n) => messagesFor(n, world, config.settings.notifications));
    await store.insertOutbox(rows, clock(), tx);
  }

  /** Applies one event to `req` (refusing invalid ones), logs it, and records the notification. */
  function step(req: AccessRequest, event: AccessEvent, actor: string, reason: string, eff: Effects, details: Record<string, unknown> = {}): AccessRequest {
    const t = transition(req.status, event);
    if (!t.ok) throw new StewardError('STEWARD_E_CONFLICT', `request \`${req.id}\`: ${t.reason}`);
    const next: AccessRequest = { ...req, status: t.to, updatedAt: iso(clock()) };
    eff.log.push({
      actor,
      action: `access.${event}`,
      resource: `access-request:${req.id}`,
      result: 'ok',
      reason: reason === '' ? `${req.status} → ${t.to}` : reason,
      details: { requestId: req.id, from: req.status, to: t.to, requester: req.requester, scope: req.scope, permissionSet: req.permissionSet, ...details },
    });
    eff.notes.push({ request: next, event, from: req.status, to: t.to, actor, reason });
    return next;
  }

  const workingWorld = (snap: Snapshot, eff: Effects): PolicyWorld => (eff.changes.length === 0 ? snap.world : applyChanges(snap.world, eff.changes));

  /** The request's grant, lifting the permission set's guardrails that `world` marks liftable. */
  const jitGrant = (req: Parameters<typeof grantFor>[0], world: PolicyWorld): Grant =>
    grantFor(req, (name) => world.guardrails.some((g) => g.name === name && g.liftable === true));

  // ------------------------------------------------------------ side effects

  async function activate(tx: Db, snap: Snapshot, eff: Effects, req: AccessRequest, actor: string, reason: string): Promise<AccessRequest> {
    const world = workingWorld(snap, eff);
    const grant = jitGrant(req, world);
    // A guardrail that is missing or not liftable stays in force: deny wins, and the log says so.
    const notLifted = (req.rule.permissionSet.liftGuardrails ?? []).filter((n) => !(grant.liftsGuardrails ?? []).includes(n));
    const next = step(req, 'activate', actor, reason, eff, {
      grant: grant.id,
      notAfter: grant.notAfter,
      ...(grant.liftsGuardrails === undefined ? {} : { liftsGuardrails: grant.liftsGuardrails }),
      ...(notLifted.length === 0 ? {} : { notLifted }),
    });
    eff.changes.push({ op: 'put', kind: 'grant', entity: grant });
    eff.needsVersion = true;
    await store.deleteTimer(req.id, 'activate', tx);
    await store.setTimer(req.id, 'end', req.endAt, tx);
    await store.updateRequest(next, tx);
    return next;
  }

  /**
   * Removes what an active request added: its grant (which carries its lifts).
   * Requests activated by an older version may still have `except` entries
   * recorded in `access_lifts`; those are unwound here as they were then. No
   * new row is ever written there.
   */
  async function withdraw(tx: Db, snap: Snapshot, eff: Effects, req: Pick<AccessRequest, 'id'>): Promise<void> {
    eff.changes.push({ op: 'delete', kind: 'grant', key: grantIdFor(req.id) });
    const removed = await store.deleteLifts(req.id, tx);
    for (const l of removed) {
      if (!l.added) continue;
      const still = (await store.liftsOn(l.guardrail, l.principal, tx)).some((o) => o.added);
      if (still) continue;
      const gr = workingWorld(snap, eff).guardrails.find((x) => x.name === l.guardrail);
      if (gr === undefined || !(gr.except ?? []).includes(l.principal as PrincipalRef)) continue;
      const except = (gr.except ?? []).filter((p) => p !== l.principal);
      const { except: _drop, ...rest } = gr;
      eff.changes.push({ op: 'put', kind: 'guardrail', entity: except.length === 0 ? rest : { ...rest, except } });
      eff.needsVersion = true;
    }
    await store.deleteTimers(req.id, tx);
  }

  /** `withdraw` for many requests with a constant number of statements (the expiry hot path). */
  async function withdrawMany(tx: Db, snap: Snapshot, eff: Effects, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    for (const id of ids) eff.changes.push({ op: 'delete', kind: 'grant', key: grantIdFor(id) });
    const lifted = new Set((await store.liftRequestsAmong(ids, tx)).map((l) => l.requestId));
    for (const id of lifted) await withdraw(tx, snap, eff, { id });
    await store.deleteTimersOf(ids, tx);
  }

  /** pending → approved → scheduled (→ active when the start time has come). */
  async function approveAndSchedule(tx: Db, snap: Snapshot, eff: Effects, req: AccessRequest, actor: string, reason: string, details: Record<string, unknown> = {}): Promise<AccessRequest> {
    let r = step(req, 'approve', actor, reason, eff, details);
    r = step(r, 'schedule', 'system', `activation at ${r.startAt}`, eff);
    await store.deleteTimer(r.id, 'expire', tx);
    await store.setTimer(r.id, 'activate', r.startAt, tx);
    await store.updateRequest(r, tx);
    if (Date.parse(r.startAt) <= clock()) r = await activate(tx, snap, eff, r, 'system', 'start time reached');
    return r;
  }

  // ------------------------------------------------------------------ views

  async function view(r: AccessRequest, tx: Db = db): Promise<AccessRequestView> {
    const round = r.extension?.round ?? 0;
    const approvalsReceived = new Set(r.approvals.filter((a) => a.round === round && a.decision === 'approve').map((a) => a.approver)).size;
    return {
      ...r,
      timers: await store.timersOf(r.id, tx),
      grantId: grantIdFor(r.id),
      approvalsReceived,
      approvalsRequired: r.rule.minApprovals,
    };
  }

  async function personasIn(world: PolicyWorld, config: AccessConfig, actor: AccessActor): Promise<Personas> {
    const set = principalSet(membershipGraph(world), actor.principal);
    const inAny = (groups: readonly string[]): boolean => groups.some((g) => set.has(`group:${g}`));
    return {
      principal: actor.principal,
      requester: config.eligibility.some((e) => set.has(e.principal)),
      approver: inAny(config.approval.flatMap((a) => a.approverGroups)),
      auditor: inAny(config.settings.auditorGroups),
      admin: actor.admin || inAny(config.settings.adminGroups),
    };
  }

  function canSee(world: PolicyWorld, p: Personas, r: AccessRequest): boolean {
    return p.admin || p.auditor || r.requester === p.principal || canApprove(world, r.rule, r.requester, p.principal);
  }

  async function visible(actor: AccessActor, id: string): Promise<{ req: AccessRequest; world: PolicyWorld; personas: Personas; snap: Snapshot }> {
    const snap = await state.snapshot();
    const config = await loadConfig();
    const personas = await personasIn(snap.world, config, actor);
    const req = await store.getRequest(id, db);
    // A request the caller may not see answers not-found, like one that does not exist.
    if (req === null || !canSee(snap.world, personas, req)) throw new StewardError('STEWARD_E_NOT_FOUND', `access request \`${id}\` not found`);
    return { req, world: snap.world, personas, snap };
  }

  const auditDetails = (actor: AccessActor): Record<string, unknown> => (actor.impersonatedBy === undefined ? {} : { impersonatedBy: actor.impersonatedBy });

  /** Records a refused action in the decision log (after the rollback), then rethrows. */
  async function refused<T>(actor: AccessActor, action: string, id: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (e) {
      if (e instanceof StewardError && e.status < 500) {
        await state
          .log([{ actor: actorLabel(actor), action: `access.${action}`, resource: `access-request:${id}`, result: 'deny', reason: e.message, details: auditDetails(actor) }])
          .catch(() => undefined);
      }
      throw e;
    }
  }

  /** Locks the request, checks the caller may act on it, runs `fn`. */
  function act(
    actor: AccessActor,
    action: string,
    id: string,
    fn: (tx: Db, snap: Snapshot, eff: Effects, req: AccessRequest, personas: Personas) => Promise<AccessRequest>,
  ): Promise<AccessRequestView> {
    // Approvals check their own rule and name the approval policy when they refuse;
    // every other action hides requests the caller may not see (request ids are random).
    const hideUnseen = action !== 'approve' && action !== 'reject';
    return refused(actor, action, id, () =>
      inTransaction(async (tx, snap, eff, config) => {
        const personas = await personasIn(snap.world, config, actor);
        const req = await store.getRequest(id, tx, { lock: true });
        if (req === null || (hideUnseen && !canSee(snap.world, personas, req))) throw new StewardError('STEWARD_E_NOT_FOUND', `access request \`${id}\` not found`);
        const next = await fn(tx, snap, eff, req, personas);
        return view(next, tx);
      }),
    );
  }

  // ------------------------------------------------------------------- API

  const service: AccessService = {
    async personas(actor) {
      const snap = await state.snapshot();
      return personasIn(snap.world, await loadConfig(), actor);
    },

    request(actor, input) {
      return refused(actor, 'request', 'new', () =>
        inTransaction(async (tx, snap, eff, config) => {
          const now = clock();
          const { rule, scope, start, end } = evaluateWindow(snap.world, config, actor, input, now);
          const id = newRequestId();
          let req: AccessRequest = {
            id,
            requester: actor.principal,
            scope: resourceToString(scope),
            permissionSet: input.permissionSet,
            status: 'pending',
            startAt: iso(start),
            endAt: iso(end),
            durationSeconds: input.durationSeconds,
            ...(input.ticket === undefined || input.ticket.trim() === '' ? {} : { ticket: input.ticket.trim() }),
            justification: input.justification,
            rule,
            approvals: [],
            createdAt: iso(now),
            updatedAt: iso(now),
            pendingUntil: iso(Math.min(now + config.settings.pendingTimeoutSeconds * 1000, end)),
          };
          await store.insertRequest(req, tx);
          eff.log.push({
            actor: actorLabel(actor),
            action: 'access.request',
            resource: `access-request:${id}`,
            result: 'ok',
            reason: input.justification.slice(0, 500),
            details: { requestId: id, to: 'pending', scope: req.scope, permissionSet: req.permissionSet, startAt: req.startAt, endAt: req.endAt, ticket: req.ticket, eligibility: rule.eligibility, approvalPolicies: rule.approvalPolicies, ...auditDetails(actor) },
          });
          eff.notes.push({ request: req, event: 'request', from: null, to: 'pending', actor: actorLabel(actor), reason: input.justification });
          if (!rule.approvalRequired) {
            req = await approveAndSchedule(tx, snap, eff, req, 'system', `no approval required by eligibility policy ${rule.eligibility.join(', ')}`);
          } else {
            await store.setTimer(id, 'expire', req.pendingUntil, tx);
          }
          return view(req, tx);
        }),
      );
    },

    approve(actor, id, comment) {
      return act(actor, 'approve', id, async (tx, snap, eff, req) => {
        const pendingRequest = req.status === 'pending';
        const pendingExtension = (req.status === 'active' || req.status === 'scheduled') && req.extension !== undefined;
        if (!pendingRequest && !pendingExtension) {
          const t = transition(req.status, 'approve');
          throw new StewardError('STEWARD_E_CONFLICT', `request \`${req.id}\`: ${t.ok ? 'nothing to approve' : t.reason}`);
        }
        if (!canApprove(snap.world, req.rule, req.requester, actor.principal)) {
          throw new StewardError(
            'STEWARD_E_FORBIDDEN',
            actor.principal === req.requester
              ? `\`${actor.principal}\` cannot approve their own request`
              : `\`${actor.principal}\` is not an approver for request \`${req.id}\`: approval policy ${req.rule.approvalPolicies.map((p) => `\`${p}\``).join(', ') || '(none)'} names group(s) ${req.rule.approverGroups.join(', ') || '(none)'}`,
          );
        }
        const round = req.extension?.round ?? 0;
        await store.insertApproval(req.id, { approver: actor.principal, decision: 'approve', round, ...(comment === undefined ? {} : { comment }), at: iso(clock()) }, tx);
        const fresh = await store.mustGetRequest(req.id, tx);
        const got = new Set(fresh.approvals.filter((a) => a.round === round && a.decision === 'approve').map((a) => a.approver)).size;
        const reason = `${got} of ${req.rule.minApprovals} approval(s)${comment === undefined ? '' : `: ${comment}`}`;
        if (pendingExtension) return applyExtensionIfApproved(tx, snap, eff, fresh, actorLabel(actor), got, reason, auditDetails(actor));
        if (got < req.rule.minApprovals) {
          const next = step(fresh, 'approve_partial', actorLabel(actor), reason, eff, auditDetails(actor));
          await store.updateRequest(next, tx);
          return next;
        }
        return approveAndSchedule(tx, snap, eff, fresh, actorLabel(actor), reason, auditDetails(actor));
      });
    },

    reject(actor, id, comment) {
      return act(actor, 'reject', id, async (tx, snap, eff, req) => {
        if (!canApprove(snap.world, req.rule, req.requester, actor.principal)) {
          throw new StewardError('STEWARD_E_FORBIDDEN', `\`${actor.principal}\` is not an approver for request \`${req.id}\`${actor.principal === req.requester ? ' (use cancel for your own request)' : ''}`);
        }
        if (req.extension !== undefined && (req.status === 'active' || req.status === 'scheduled')) {
          // Rejecting a pending extension keeps the request as it is.
          await store.insertApproval(req.id, { approver: actor.principal, decision: 'reject', round: req.extension.round, ...(comment === undefined ? {} : { comment }), at: iso(clock()) }, tx);
          const { extension: _e, ...rest } = req;
          const next: AccessRequest = { ...rest, updatedAt: iso(clock()) };
          eff.log.push({ actor: actorLabel(actor), action: 'access.extend.reject', resource: `access-request:${req.id}`, result: 'ok', reason: comment ?? 'extension rejected', details: { requestId: req.id, ...auditDetails(actor) } });
          await store.updateRequest(next, tx);
          return next;
        }
        const t = transition(req.status, 'reject');
        if (!t.ok) throw new StewardError('STEWARD_E_CONFLICT', `request \`${req.id}\`: ${t.reason}`);
        await store.insertApproval(req.id, { approver: actor.principal, decision: 'reject', round: 0, ...(comment === undefined ? {} : { comment }), at: iso(clock()) }, tx);
        const next = step(req, 'reject', actorLabel(actor), comment ?? '', eff, auditDetails(actor));
        await store.deleteTimers(req.id, tx);
        await store.updateRequest(next, tx);
        return next;
      });
    },

    cancel(actor, id, reason) {
      return act(actor, 'cancel', id, async (tx, _snap, eff, req, personas) => {
        if (req.requester !== actor.principal && !personas.admin) {
          throw new StewardError('STEWARD_E_FORBIDDEN', `only the requester or an admin may cancel request \`${req.id}\`${req.status === 'active' ? '; approvers revoke active access' : ''}`);
        }
        const next = step(req, 'cancel', actorLabel(actor), reason ?? '', eff, auditDetails(actor));
        await store.deleteTimers(req.id, tx);
        await store.updateRequest(next, tx);
        return next;
      });
    },

    revoke(actor, id, reason) {
      return act(actor, 'revoke', id, async (tx, snap, eff, req, personas) => {
        const allowed = personas.admin || req.requester === actor.principal || canApprove(snap.world, req.rule, req.requester, actor.principal);
        if (!allowed) throw new StewardError('STEWARD_E_FORBIDDEN', `only the requester, an approver of request \`${req.id}\` or an admin may revoke it`);
        const next = step(req, 'revoke', actorLabel(actor), reason ?? '', eff, auditDetails(actor));
        await withdraw(tx, snap, eff, req);
        await store.updateRequest(next, tx);
        return next;
      });
    },

    extend(actor, id, seconds, justification) {
      return act(actor, 'extend', id, async (tx, snap, eff, req, personas) => {
        const t = transition(req.status, 'extend');
        if (!t.ok) throw new StewardError('STEWARD_E_CONFLICT', `request \`${req.id}\`: ${t.reason}`);
        const isApprover = canApprove(snap.world, req.rule, req.requester, actor.principal);
        if (req.requester !== actor.principal && !isApprover && !personas.admin) {
          throw new StewardError('STEWARD_E_FORBIDDEN', `only the requester, an approver or an admin may extend request \`${req.id}\``);
        }
        const total = req.durationSeconds + seconds;
        if (total > req.rule.maxDurationSeconds) {
          throw new StewardError(
            'STEWARD_E_VALIDATION',
            `extending by ${formatDuration(seconds)} makes ${formatDuration(total)}, over the maximum of ${formatDuration(req.rule.maxDurationSeconds)} set by eligibility policy ${req.rule.eligibility.map((e) => `\`${e}\``).join(', ')}`,
          );
        }
        endWithinRange(Date.parse(req.endAt), seconds, 'duration');
        const round = (req.extension?.round ?? Math.max(0, ...req.approvals.map((a) => a.round))) + (req.extension === undefined ? 1 : 0);
        const proposed: AccessRequest = {
          ...req,
          extension: { round, seconds, requestedBy: actor.principal, ...(justification === undefined ? {} : { justification }) },
          updatedAt: iso(clock()),
        };
        eff.log.push({
          actor: actorLabel(actor),
          action: 'access.extend.request',
          resource: `access-request:${req.id}`,
          result: 'ok',
          reason: justification ?? `extend by ${formatDuration(seconds)}`,
          details: { requestId: req.id, seconds, round, ...auditDetails(actor) },
        });
        await store.updateRequest(proposed, tx);
        if (!req.rule.approvalRequired) return applyExtensionIfApproved(tx, snap, eff, proposed, actorLabel(actor), 0, 'no approval required', auditDetails(actor));
        if (isApprover) {
          await store.insertApproval(req.id, { approver: actor.principal, decision: 'approve', round, comment: 'extension proposed by an approver', at: iso(clock()) }, tx);
          const fresh = await store.mustGetRequest(req.id, tx);
          const got = new Set(fresh.approvals.filter((a) => a.round === round && a.decision === 'approve').map((a) => a.approver)).size;
          return applyExtensionIfApproved(tx, snap, eff, fresh, actorLabel(actor), got, `${got} of ${req.rule.minApprovals} approval(s)`, auditDetails(actor));
        }
        eff.notes.push({ request: proposed, event: 'extend', from: req.status, to: req.status, actor: actorLabel(actor), reason: `extension by ${formatDuration(seconds)} awaits approval` });
        return proposed;
      });
    },

    async get(actor, id) {
      const { req } = await visible(actor, id);
      return view(req);
    },

    async list(actor, filter = {}) {
      const snap = await state.snapshot();
      const personas = await personasIn(snap.world, await loadConfig(), actor);
      const all = await store.listRequests(
        {
          ...(filter.statuses === undefined ? {} : { statuses: filter.statuses }),
          ...(filter.mine === true || (!personas.admin && !personas.auditor && !personas.approver) ? { requester: actor.principal } : {}),
        },
        db,
      );
      return Promise.all(all.filter((r) => canSee(snap.world, personas, r)).map((r) => view(r)));
    },

    async preview(actor, input) {
      const snap = await state.snapshot();
      const config = await loadConfig();
      const now = clock();
      // The same eligibility checks as a real request: a preview never shows what could not be requested.
      const { rule, scope, start, end } = evaluateWindow(snap.world, config, actor, input, now);
      const req = { id: 'preview', requester: actor.principal, scope: resourceToString(scope), endAt: iso(end), rule };
      const grant: Grant = { ...jitGrant(req, snap.world), notAfter: iso(end + 1) };
      const result = dryRun(snap.world, actor.principal, [{ op: 'put', kind: 'grant', entity: grant }], start);
      return {
        ...result,
        scope: req.scope,
        startAt: iso(start),
        endAt: iso(end),
        approvalRequired: rule.approvalRequired,
        minApprovals: rule.minApprovals,
        approverGroups: [...rule.approverGroups],
      };
    },

    async dryRun(actor, id) {
      const { req, snap } = await visible(actor, id);
      const now = Math.max(clock(), Date.parse(req.startAt));
      const grant: Grant = { ...jitGrant(req, snap.world), notAfter: iso(Date.parse(req.endAt) + 1) };
      const changes: Change[] = [{ op: 'put', kind: 'grant', entity: grant }];
      // "Current access" excludes this request's own grant, so the answer is the same before and during activation.
      const base = applyChanges(snap.world, [{ op: 'delete', kind: 'grant', key: grant.id }]);
      return dryRun(base, req.requester, changes, now);
    },

    async activity(actor, id) {
      const { req } = await visible(actor, id);
      const { rows: acts } = await db.query<{ id: number; action: string }>(
        `SELECT id, action FROM steward.decision_log WHERE resource = $1 AND action IN ('access.activate', 'access.end', 'access.revoke', 'access.fail') ORDER BY id`,
        [`access-request:${req.id}`],
      );
      const started = acts.find((a) => a.action === 'access.activate');
      if (started === undefined) return [];
      const stopped = acts.find((a) => a.action !== 'access.activate');
      // The window is bounded by the log's own order (activation .. end entry), so server clocks do not
      // matter; before the end entry exists, by the request's end time. An entry belongs to the request
      // when it is the requester's and either used the request's grant or touched a table in its scope:
      // the same user's other work during the window is not part of the elevated session.
      const { rows } = await db.query<{ id: number; at: Date; actor: string; action: string; resource: string; result: string; reason: string; elevated: boolean }>(
        `SELECT id, at, actor, action, resource, result, reason, coalesce(details->'grants' ? $5, false) AS elevated FROM steward.decision_log d
         WHERE action NOT LIKE 'access.%'
           AND (actor = $3 OR actor LIKE $4 OR details->>'principal' = $3)
           AND (coalesce(details->'grants' ? $5, false)
             OR (id > $1 AND ($2::bigint IS NULL OR id < $2::bigint) AND ($2::bigint IS NOT NULL OR at <= $6::timestamptz)
                 AND EXISTS (
                   SELECT 1 FROM unnest(string_to_array(d.resource, ',') || ARRAY(SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(d.details->'tables') = 'array' THEN d.details->'tables' ELSE '[]'::jsonb END))) AS t(name)
                   WHERE t.name = $7 OR starts_with(t.name, $7 || '.'))))
         ORDER BY id LIMIT 1000`,
        [started.id, stopped?.id ?? null, req.requester, `${req.requester} %`, grantIdFor(req.id), req.endAt, req.scope],
      );
      return rows.map((r) => ({ ...r, id: Number(r.id), at: r.at.toISOString() }));
    },

    async notifications(actor, id) {
      const { req } = await visible(actor, id);
      return store.outboxOf(req.id, db);
    },

    async getConfig(actor) {
      const personas = await service.personas(actor);
      if (!personas.admin && !personas.auditor) throw new StewardError('STEWARD_E_FORBIDDEN', 'only admins and auditors may read the access configuration');
      return toAccessDocument(await loadConfig());
    },

    async putConfig(actor, document) {
      const personas = await service.personas(actor);
      if (!personas.admin) throw new StewardError('STEWARD_E_FORBIDDEN', 'only admins may change the access configuration');
      const config = toAccessConfig(document);
      const doc = toAccessDocument(config);
      await db.transaction(async (tx) => {
        await store.saveAccessConfig(doc, actorLabel(actor), tx);
        await insertDecisions(
          [
            {
              actor: actorLabel(actor),
              action: 'access.config',
              resource: 'access-config',
              result: 'ok',
              reason: `${config.permissionSets.length} permission set(s), ${config.eligibility.length} eligibility and ${config.approval.length} approval polic(ies)`,
              details: auditDetails(actor),
            },
          ],
          tx,
        );
      });
      cachedSettings = config.settings.notifications;
      return doc;
    },

    async mergeConfig(actor, document) {
      const extra = toAccessDocument(toAccessConfig(document));
      const { document: current } = await store.loadAccessConfig(db);
      const merged = toAccessDocument(toAccessConfig(mergeAccessDocuments(current, extra)));
      if (current !== null && stableJson(current) === stableJson(merged)) return false;
      await service.putConfig(actor, merged);
      return true;
    },

    async runDue(nowArg) {
      let fired = 0;
      for (;;) {
        const now = nowArg ?? clock();
        // Cheap checks outside any transaction: is anything due, and does it need the current world?
        const { rows: due } = await db.query<{ due: number; world: number }>(
          `SELECT count(*) AS due,
                  count(*) FILTER (WHERE t.kind = 'activate' OR EXISTS (SELECT 1 FROM steward.access_lifts l WHERE l.request_id = t.request_id)) AS world
           FROM (SELECT request_id, kind FROM steward.access_timers WHERE due_at <= $1 ORDER BY due_at LIMIT $2) t`,
          [iso(now), batchSize],
        );
        if ((due[0]?.due ?? 0) === 0) return fired;
        const staleWorldOk = (due[0]?.world ?? 0) === 0;
        const n = await inTransaction(async (tx, snap, eff) => {
          // One statement claims due timers and locks their requests; rows another process
          // (or an API call) holds are skipped and stay for the next tick.
          const claimed = await store.claimDue(now, batchSize, tx);
          await store.deleteTimerPairs(claimed.map((c) => ({ requestId: c.request.id, kind: c.kind })), tx);
          const current = new Map<string, AccessRequest>();
          const changed = new Map<string, AccessRequest>();
          const withdrawn: string[] = [];
          const cleared: string[] = [];
          for (const c of claimed) {
            const req = current.get(c.request.id) ?? c.request;
            const ended = Date.parse(req.endAt) <= now;
            let next: AccessRequest | undefined;
            switch (c.kind) {
              case 'activate':
                if (req.status !== 'scheduled') break;
                if (ended) {
                  next = step(req, 'end', 'system', 'its window passed before it could be activated', eff);
                  withdrawn.push(req.id);
                } else {
                  current.set(req.id, await activate(tx, snap, eff, req, 'system', 'start time reached'));
                  changed.delete(req.id);
                }
                break;
              case 'end':
                if (req.status !== 'active' && req.status !== 'scheduled') break;
                if (!ended) {
                  await store.setTimer(req.id, 'end', req.endAt, tx); // extended since the timer was set
                  break;
                }
                next = step(req, 'end', 'system', `end time ${req.endAt} reached`, eff, { lagMs: now - Date.parse(req.endAt) });
                withdrawn.push(req.id);
                break;
              case 'expire':
                if (req.status !== 'pending') break;
                if (Date.parse(req.pendingUntil) > now) {
                  await store.setTimer(req.id, 'expire', req.pendingUntil, tx);
                  break;
                }
                next = step(req, 'expire', 'system', `no decision before ${req.pendingUntil}`, eff);
                cleared.push(req.id);
                break;
              default: {
                const never: never = c.kind;
                throw new StewardError('STEWARD_E_INTERNAL', `unknown timer kind \`${String(never)}\``);
              }
            }
            if (next !== undefined) {
              current.set(req.id, next);
              changed.set(req.id, next);
            }
          }
          await withdrawMany(tx, snap, eff, withdrawn);
          await store.deleteTimersOf(cleared, tx);
          await store.updateRequests([...changed.values()], tx);
          return { claimed: claimed.length, done: claimed.length };
        }, { staleWorldOk });
        fired += n.done;
        if (n.claimed < batchSize || n.done === 0) return fired;
      }
    },

    async sweep(nowArg) {
      const now = nowArg ?? clock();
      return inTransaction(async (tx, snap, eff) => {
        const jit = snap.world.grants.filter((g) => g.id.startsWith(JIT_GRANT_PREFIX));
        const active = await store.listRequests({ statuses: ['active'], limit: 1_000_000 }, tx);
        const activeIds = new Set(active.map((r) => r.id));
        const removed: string[] = [];
        const restored: string[] = [];
        for (const g of jit) {
          const rid = requestIdOfGrant(g.id);
          if (rid !== null && activeIds.has(rid)) continue;
          eff.changes.push({ op: 'delete', kind: 'grant', key: g.id });
          removed.push(g.id);
        }
        const present = new Set(jit.map((g) => g.id));
        for (const r of active) {
          if (present.has(grantIdFor(r.id)) || Date.parse(r.endAt) <= now) continue;
          eff.changes.push({ op: 'put', kind: 'grant', entity: jitGrant(r, snap.world) });
          eff.needsVersion = true;
          restored.push(grantIdFor(r.id));
        }
        // Legacy `except` lifts (older versions) whose request is no longer active.
        for (const l of await store.allLifts(tx)) {
          if (activeIds.has(l.requestId)) continue;
          const req = await store.getRequest(l.requestId, tx);
          if (req === null || isTerminal(req.status)) {
            await withdraw(tx, snap, eff, { id: l.requestId });
            removed.push(`lift ${l.guardrail} for ${l.principal}`);
          }
        }
        // Active requests past their end whose timer vanished: end them now.
        for (const r of active) {
          if (Date.parse(r.endAt) > now) continue;
          await store.setTimer(r.id, 'end', r.endAt, tx);
        }
        if (removed.length + restored.length > 0) {
          eff.log.push({ actor: 'system', action: 'access.sweep', resource: 'access-grants', result: 'ok', reason: `removed ${removed.length}, restored ${restored.length}`, details: { removed, restored } });
        }
        return { removed, restored };
      });
    },

    async deliverOutbox(nowArg) {
      let delivered = 0;
      for (;;) {
        const now = nowArg ?? clock();
        const rows = await store.leaseOutbox(now, 20, 60_000, db);
        if (rows.length === 0) return delivered;
        // The SMTP settings as stored now, not as this server last read them: another server may have changed the relay.
        await loadConfig();
        // Network I/O happens here, outside any transaction.
        for (const row of rows) {
          try {
            await deliverer.deliver(row);
            await store.markDelivered(row.id, clock(), db);
            delivered++;
          } catch (e) {
            const delay = retryDelayMs(row.attempts);
            await store.markFailed(row.id, (e as Error).message ?? String(e), delay === null ? null : clock() + delay, db);
          }
        }
        if (rows.length < 20) return delivered;
      }
    },

    nextDue: () => store.nextTimerDue(db),

    close() {
      deliverer.close();
    },
  };

  async function applyExtensionIfApproved(
    tx: Db,
    snap: Snapshot,
    eff: Effects,
    req: AccessRequest,
    actor: string,
    got: number,
    reason: string,
    details: Record<string, unknown>,
  ): Promise<AccessRequest> {
    const ext = req.extension;
    if (ext === undefined) return req;
    if (req.rule.approvalRequired && got < req.rule.minApprovals) {
      eff.log.push({ actor, action: 'access.extend.approve_partial', resource: `access-request:${req.id}`, result: 'ok', reason, details: { requestId: req.id, round: ext.round, ...details } });
      eff.notes.push({ request: req, event: 'approve_partial', from: req.status, to: req.status, actor, reason: `extension: ${reason}` });
      return req;
    }
    const { extension: _e, ...rest } = req;
    const endAt = iso(Date.parse(req.endAt) + ext.seconds * 1000);
    const extended: AccessRequest = { ...rest, endAt, durationSeconds: req.durationSeconds + ext.seconds };
    const next = step(extended, 'extend', actor, `${reason}; new end ${endAt}`, eff, { seconds: ext.seconds, endAt, ...details });
    if (req.status === 'active') {
      // The same grant with a later notAfter: no revoke and re-grant, so access never blinks.
      eff.changes.push({ op: 'put', kind: 'grant', entity: jitGrant(next, workingWorld(snap, eff)) });
      eff.needsVersion = true;
      await store.setTimer(req.id, 'end', endAt, tx);
    }
    await store.updateRequest(next, tx);
    return next;
  }

  return service;
}
