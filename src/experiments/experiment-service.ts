/**
 * Access experiments: templates, the workspace policy, starting (with
 * approval unless self-service outside production), stopping, the durable
 * end, the reconciliation sweep, dry runs and reports.
 *
 * Atomicity, as in src/access/access-service.ts: a run's row and the policy
 * change it implies (its guardrail and tag marks) commit in ONE transaction,
 * with its decision-log entry: the changes are applied to the snapshot world
 * and validated, then written with `StateStore.applyChanges` on the
 * transaction this service holds. A start checks the snapshot's version (a
 * conflict retries on a fresh snapshot); an end only deletes, so it never
 * conflicts and always wins.
 *
 * The end is guaranteed three ways: decisions ignore a run's guardrail past
 * its end time by themselves (experiment-evaluator.ts); the access
 * scheduler's loop claims due runs (`FOR UPDATE SKIP LOCKED`, so a restarted
 * or second process neither loses nor repeats an end) and removes their
 * guardrail, which the warehouse sync then follows; and the sweep removes any
 * experiment guardrail no running experiment backs.
 */
import { withRetries } from '../store/retry.js';
import { randomBytes } from 'node:crypto';
import type { Db } from '../store/db.js';
import { createStateStore } from '../store/state-store.js';
import { insertDecisions, type DecisionLogEntry } from '../store/decision-log.js';
import type { StateService, Snapshot } from '../workspace/state-service.js';
import { applyChanges, type Change } from '../policy/changes.js';
import { assertValidWorld } from '../policy/validate.js';
import type { PrincipalRef } from '../policy/model.js';
import { StewardError, notFound } from '../errors.js';
import { canApprove } from '../access/policies.js';
import type { Experiment, ExperimentPolicy, ExperimentTemplate } from './experiment-types.js';
import { EXPERIMENT_GUARDRAIL_PREFIX, experimentIdOfGuardrail, guardrailNameOf } from './experiment-types.js';
import { approversOf, checkTemplate, excludedOf, toPolicy, toTemplate, type PolicyInput, type TemplateInput } from './experiment-config.js';
import { endChanges, startChanges } from './experiment-guardrail.js';
import { evaluatorFor } from './experiment-evaluator.js';
import { dryRun, type DryRunResult } from './experiment-dry-run.js';
import { buildReport, type ExperimentReport, type SecurityLakeReader } from './experiment-report.js';
import * as store from './experiment-store.js';

export interface ExperimentActor {
  readonly principal: PrincipalRef;
  readonly admin: boolean;
}

export interface ExperimentService {
  getPolicy(): Promise<ExperimentPolicy>;
  putPolicy(actor: ExperimentActor, input: PolicyInput): Promise<ExperimentPolicy>;
  createTemplate(actor: ExperimentActor, input: TemplateInput): Promise<ExperimentTemplate>;
  listTemplates(): Promise<ExperimentTemplate[]>;
  /** Decisions that would change if the template ran now (nothing is stored). */
  dryRun(template: string, durationSeconds?: number): Promise<DryRunResult & { template: string }>;
  start(actor: ExperimentActor, template: string, durationSeconds?: number): Promise<Experiment>;
  approve(actor: ExperimentActor, id: string): Promise<Experiment>;
  reject(actor: ExperimentActor, id: string): Promise<Experiment>;
  stop(actor: ExperimentActor, id: string, reason?: string): Promise<Experiment>;
  get(id: string): Promise<Experiment>;
  list(): Promise<Experiment[]>;
  /** The pending runs `principal` may approve or reject now (an approver's inbox). */
  awaiting(principal: PrincipalRef): Promise<Experiment[]>;
  report(id: string): Promise<ExperimentReport>;
  /** Ends due runs and runs whose stop condition fired; returns how many ended. */
  runDue(now?: number): Promise<number>;
  /** Removes experiment guardrails no running run backs, restores missing ones of running runs. */
  sweep(now?: number): Promise<{ removed: string[]; restored: string[] }>;
  nextDue(): Promise<number | null>;
}

export interface ExperimentServiceOptions {
  readonly db: Db;
  readonly state: StateService;
  readonly lake?: SecurityLakeReader;
  readonly now?: () => number;
  /** Called after a transaction that changed the policy committed (wakes the warehouse sync, as the state service's own commits do). */
  readonly committed?: () => void;
}

const ID = /^ex-[0-9a-f]{12}$/;

const iso = (ms: number): string => new Date(ms).toISOString();

export function newExperimentId(): string {
  return `ex-${randomBytes(6).toString('hex')}`;
}

interface Effects {
  readonly changes: Change[];
  readonly log: DecisionLogEntry[];
  /** Puts are validated against, and conditional on, the snapshot's version; deletes are not. */
  needsVersion: boolean;
}

export function createExperimentService(options: ExperimentServiceOptions): ExperimentService {
  const { db, state } = options;
  const clock = options.now ?? Date.now;

  function inTransaction<T>(fn: (tx: Db, snap: Snapshot, eff: Effects) => Promise<T>): Promise<T> {
    return withRetries(async () => {
      const snap = await state.snapshot();
      let changed = false;
      const result = await db.transaction(async (tx) => {
        const eff: Effects = { changes: [], log: [], needsVersion: false };
        const value = await fn(tx, snap, eff);
        if (eff.changes.length > 0) {
          if (eff.needsVersion) assertValidWorld(applyChanges(snap.world, eff.changes));
          await createStateStore(tx).applyChanges(eff.changes, { ...(eff.needsVersion ? { expectedVersion: snap.version } : {}), log: eff.log });
          changed = true;
        } else if (eff.log.length > 0) {
          await insertDecisions(eff.log, tx);
        }
        return value;
      });
      if (changed) options.committed?.();
      return result;
    });
  }

  const entry = (actor: string, action: string, x: Experiment, reason: string, details: Record<string, unknown> = {}): DecisionLogEntry => ({
    actor,
    action: `experiment.${action}`,
    resource: `experiment:${x.id}`,
    result: 'ok',
    reason,
    details: { experimentId: x.id, template: x.template, targets: x.spec.targets, guardrail: guardrailNameOf(x.id), ...details },
  });

  async function mustTemplate(name: string, tx: Db = db): Promise<ExperimentTemplate> {
    const t = await store.getTemplate(name.trim().toLowerCase(), tx);
    if (t === null) throw notFound('experiment template', name);
    return t;
  }

  async function mustExperiment(id: string, tx: Db, lock = false): Promise<Experiment> {
    const x = ID.test(id) ? await store.getExperiment(id, tx, { lock }) : null;
    if (x === null) throw notFound('experiment', id);
    return x;
  }

  /** Turns a pending (or new) run into a running one: its window starts now, its guardrail goes in. */
  function run(snap: Snapshot, eff: Effects, x: Experiment, actor: string, reason: string): Experiment {
    const now = clock();
    const running: Experiment & { endsAt: string } = { ...x, status: 'running', startedAt: iso(now), endsAt: iso(now + x.durationSeconds * 1000) };
    eff.changes.push(...startChanges(snap.world, running));
    eff.needsVersion = true;
    eff.log.push(entry(actor, 'start', running, `${reason}; ends at ${running.endsAt}`, { endsAt: running.endsAt, share: x.spec.share }));
    return running;
  }

  /** Ends a running run (or closes a pending one): its guardrail and marks go, whatever else is in the world. */
  function end(snap: Snapshot, eff: Effects, x: Experiment, status: 'ended' | 'stopped' | 'rejected', actor: string, reason: string): Experiment {
    const now = clock();
    const ended: Experiment = { ...x, status, endedAt: iso(now), endReason: reason };
    if (x.status === 'running') eff.changes.push(...endChanges(snap.world, x.id));
    eff.log.push(entry(actor, status === 'ended' ? 'end' : status === 'stopped' ? 'stop' : 'reject', ended, reason, x.endsAt === undefined ? {} : { endsAt: x.endsAt, lagMs: now - Date.parse(x.endsAt) }));
    return ended;
  }

  const service: ExperimentService = {
    getPolicy: () => store.loadPolicy(db),

    async putPolicy(actor, input) {
      const p = toPolicy(input);
      await db.transaction(async (tx) => {
        await store.savePolicy(p, actor.principal, tx);
        await insertDecisions([{ actor: actor.principal, action: 'experiment.policy.put', resource: 'experiment-policy', result: 'ok', reason: `max ${input.maxDuration}s, ${p.excluded.length} excluded, production ${p.production}` }], tx);
      });
      return p;
    },

    async createTemplate(actor, input) {
      const t = toTemplate(input);
      const snap = await state.snapshot();
      const policy = await store.loadPolicy(db);
      const monitors = await store.monitorNames(db);
      checkTemplate(snap.world, policy, t, t.durationSeconds, (m) => monitors.has(m));
      await db.transaction(async (tx) => {
        if (!(await store.insertTemplate(t, actor.principal, clock(), tx))) throw new StewardError('STEWARD_E_ALREADY_EXISTS', `experiment template \`${t.name}\` already exists`);
        await insertDecisions([{ actor: actor.principal, action: 'experiment.template.create', resource: `experiment-template:${t.name}`, result: 'ok', reason: `${t.actions.join(',')} denied to ${t.targets.join(', ')}` }], tx);
      });
      return t;
    },

    listTemplates: () => store.listTemplates(db),

    async dryRun(name, durationSeconds) {
      const t = await mustTemplate(name);
      const snap = await state.snapshot();
      const policy = await store.loadPolicy(db);
      const monitors = await store.monitorNames(db);
      const seconds = durationSeconds ?? t.durationSeconds;
      checkTemplate(snap.world, policy, t, seconds, (m) => monitors.has(m));
      const now = clock();
      const id = newExperimentId();
      const excluded = excludedOf(t, policy);
      const x = { id, template: t.name, spec: t, excluded, status: 'running', durationSeconds: seconds, startedBy: 'user:dry-run', createdAt: iso(now), approvals: [], endsAt: iso(now + seconds * 1000) } as const;
      const world = applyChanges(snap.world, startChanges(snap.world, x));
      const after = evaluatorFor(world);
      return { template: t.name, ...dryRun(snap.world, snap.engine, after, t.scope, t.actions, t.targets, excluded, now) };
    },

    async start(actor, name, durationSeconds) {
      return inTransaction(async (tx, snap, eff) => {
        const t = await mustTemplate(name, tx);
        const policy = await store.loadPolicy(tx);
        const monitors = await store.monitorNames(tx);
        const seconds = durationSeconds ?? t.durationSeconds;
        checkTemplate(snap.world, policy, t, seconds, (m) => monitors.has(m));
        const selfService = t.selfService && !policy.production;
        if (!selfService) {
          const approvers = approversOf(snap.world, t, actor.principal);
          if (approvers.length < t.minApprovals) {
            throw new StewardError(
              'STEWARD_E_FORBIDDEN',
              `template \`${t.name}\` needs ${t.minApprovals} distinct approver(s) but its groups (${t.approverGroups.join(', ') || 'none'}) have ${approvers.length} member(s) other than \`${actor.principal}\`, so nobody could approve it`,
            );
          }
        }
        const x: Experiment = { id: newExperimentId(), template: t.name, spec: t, excluded: excludedOf(t, policy), status: 'pending', durationSeconds: seconds, startedBy: actor.principal, createdAt: iso(clock()), approvals: [] };
        await store.insertExperiment(x, tx);
        if (!selfService) {
          eff.log.push(entry(actor.principal, 'request', x, `awaiting ${t.minApprovals} approval(s) from ${t.approverGroups.join(', ')}`));
          return x;
        }
        const running = run(snap, eff, x, actor.principal, policy.production ? 'started' : 'self-service on a non-production workspace');
        await store.updateExperiment(running, tx);
        return running;
      });
    },

    async approve(actor, id) {
      return inTransaction(async (tx, snap, eff) => {
        const x = await mustExperiment(id, tx, true);
        if (x.status !== 'pending') throw new StewardError('STEWARD_E_CONFLICT', `experiment \`${x.id}\` is ${x.status}; only a pending experiment can be approved`);
        if (!canApprove(snap.world, x.spec, x.startedBy, actor.principal)) {
          throw new StewardError('STEWARD_E_FORBIDDEN', `\`${actor.principal}\` may not approve experiment \`${x.id}\`: approvers are members of ${x.spec.approverGroups.map((g) => `\`${g}\``).join(', ')} other than the one who started it`);
        }
        const approvals = [...x.approvals.filter((a) => a.approver !== actor.principal), { approver: actor.principal, decision: 'approve' as const, at: iso(clock()) }];
        const next: Experiment = { ...x, approvals };
        const got = approvals.filter((a) => a.decision === 'approve').length;
        if (got < x.spec.minApprovals) {
          eff.log.push(entry(actor.principal, 'approve_partial', next, `${got} of ${x.spec.minApprovals} approval(s)`));
          await store.updateExperiment(next, tx);
          return next;
        }
        // The policy may have tightened, or the world changed, since the request: check again.
        const policy = await store.loadPolicy(tx);
        const monitors = await store.monitorNames(tx);
        checkTemplate(snap.world, policy, x.spec, x.durationSeconds, (m) => monitors.has(m));
        const running = run(snap, eff, { ...next, excluded: [...new Set([...x.excluded, ...policy.excluded])].sort() }, actor.principal, `approved by ${approvals.map((a) => a.approver).join(', ')}`);
        await store.updateExperiment(running, tx);
        return running;
      });
    },

    async reject(actor, id) {
      return inTransaction(async (tx, snap, eff) => {
        const x = await mustExperiment(id, tx, true);
        if (x.status !== 'pending') throw new StewardError('STEWARD_E_CONFLICT', `experiment \`${x.id}\` is ${x.status}; only a pending experiment can be rejected`);
        if (!canApprove(snap.world, x.spec, x.startedBy, actor.principal)) throw new StewardError('STEWARD_E_FORBIDDEN', `\`${actor.principal}\` may not reject experiment \`${x.id}\``);
        const next = end(snap, eff, { ...x, approvals: [...x.approvals, { approver: actor.principal, decision: 'reject', at: iso(clock()) }] }, 'rejected', actor.principal, `rejected by ${actor.principal}`);
        await store.updateExperiment(next, tx);
        return next;
      });
    },

    async stop(actor, id, reason) {
      return inTransaction(async (tx, snap, eff) => {
        const x = await mustExperiment(id, tx, true);
        if (x.status !== 'running' && x.status !== 'pending') throw new StewardError('STEWARD_E_CONFLICT', `experiment \`${x.id}\` is already ${x.status}`);
        const next = end(snap, eff, x, 'stopped', actor.principal, `stopped by ${actor.principal}${reason === undefined || reason === '' ? '' : `: ${reason}`}`);
        await store.updateExperiment(next, tx);
        return next;
      });
    },

    get: (id) => mustExperiment(id.trim().toLowerCase(), db),
    list: () => store.listExperiments(db),
    async awaiting(principal) {
      const [snap, all] = await Promise.all([state.snapshot(), store.listExperiments(db)]);
      // The same rule approve() and reject() apply, so the inbox never offers what they would refuse.
      return all.filter((x) => x.status === 'pending' && canApprove(snap.world, x.spec, x.startedBy, principal));
    },

    async report(id) {
      const x = await mustExperiment(id.trim().toLowerCase(), db);
      if (options.lake === undefined) throw new StewardError('STEWARD_E_INTERNAL', 'the security lake is not available in this process');
      const from = x.startedAt ?? x.createdAt;
      const to = iso(x.endedAt === undefined ? clock() : Date.parse(x.endedAt));
      return buildReport(x, options.lake, await store.firings(from, to, db), clock());
    },

    async runDue(nowArg) {
      const now = nowArg ?? clock();
      // Cheap check outside any transaction: most ticks have nothing to end.
      if (!(await store.anythingToEnd(now, db))) return 0;
      return inTransaction(async (tx, snap, eff) => {
        let n = 0;
        const done = new Set<string>();
        for (const { experiment, monitor, firedAt } of await store.claimStopped(tx)) {
          const next = end(snap, eff, experiment, 'stopped', 'system', `stop condition: monitor \`${monitor}\` fired at ${firedAt}`);
          await store.updateExperiment(next, tx);
          done.add(experiment.id);
          n++;
        }
        for (const x of await store.claimDue(now, 500, tx)) {
          if (done.has(x.id)) continue;
          const next = end(snap, eff, x, 'ended', 'system', `end time ${x.endsAt ?? ''} reached`);
          await store.updateExperiment(next, tx);
          n++;
        }
        return n;
      });
    },

    async sweep(nowArg) {
      const now = nowArg ?? clock();
      return inTransaction(async (tx, snap, eff) => {
        const running = new Map((await store.listExperiments(tx, ['running'])).map((x) => [x.id, x]));
        const removed: string[] = [];
        const restored: string[] = [];
        const present = new Set<string>();
        for (const g of snap.world.guardrails) {
          const id = experimentIdOfGuardrail(g.name);
          if (id === null) continue;
          present.add(id);
          if (running.has(id)) continue;
          eff.changes.push(...endChanges(snap.world, id));
          removed.push(g.name);
        }
        // Marks whose guardrail is already gone (a partial leftover).
        for (const k of snap.world.tagKeys) {
          const id = /^exp_([0-9a-f]{12})$/.exec(k.key)?.[1];
          if (id === undefined || running.has(`ex-${id}`) || present.has(`ex-${id}`)) continue;
          eff.changes.push(...endChanges(snap.world, `ex-${id}`));
          removed.push(k.key);
        }
        for (const x of running.values()) {
          if (present.has(x.id) || x.endsAt === undefined || Date.parse(x.endsAt) <= now) continue;
          eff.changes.push(...startChanges(snap.world, x as Experiment & { endsAt: string }));
          eff.needsVersion = true;
          restored.push(guardrailNameOf(x.id));
        }
        if (removed.length + restored.length > 0) {
          eff.log.push({ actor: 'system', action: 'experiment.sweep', resource: `${EXPERIMENT_GUARDRAIL_PREFIX}*`, result: 'ok', reason: `removed ${removed.length}, restored ${restored.length}`, details: { removed, restored } });
        }
        return { removed, restored };
      });
    },

    nextDue: () => store.nextDue(db),
  };
  return service;
}
