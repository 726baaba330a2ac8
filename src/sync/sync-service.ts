/**
 * The sync service: the thin shell around the pure compiler. It resolves a
 * target's credentials, connects (with retries), reads the actual state,
 * computes the desired state from the current policy snapshot, diffs, and
 * applies; it loads lake tables; and it watches the policy version to sync
 * the affected objects of every change (debounced) for targets with `auto`.
 *
 * Credentials are resolved per operation and never kept, logged, or put in an
 * error; errors name the target as `user@host:port/db`.
 */
import type pg from 'pg';
import type { StateService } from '../workspace/state-service.js';
import type { DuckDb } from '../lake/duckdb.js';
import type { PolicyWorld, Table } from '../policy/model.js';
import { StewardError, notFound } from '../errors.js';
import { desiredState, tablesOf, tagRows, type DesiredState } from './desired-state.js';
import { diffStates, EMPTY_ACTUAL } from './diff.js';
import { readActualState } from './actual-state.js';
import { applySteps, failedSummary, markInterruptedRuns, withSyncLock, type FailedStep } from './apply.js';
import { ensureConfigSchema, recordTags } from './ledger.js';
import { connectWarehouse, resolveCredentials, type RetryOptions, type WarehouseConnection } from './warehouse-connection.js';
import { loginRole, mapTable } from './names.js';
import { redshiftPlan } from './redshift.js';
import { affectedScope, type Scope } from './scope.js';
import { copyChunk, countRows, prepareTable } from './load.js';
import type { TargetDefinition, TargetRepo } from './target-repo.js';
import type { Plan } from './sync-types.js';
import { redshiftEmbedWarnings, type EmbedDataset } from './session-tag-rls.js';
import { residencyViolations } from '../policy/residency.js';
import { gate } from '../residency/residency-gate.js';

export interface SyncServiceDeps {
  readonly state: Pick<StateService, 'snapshot' | 'log'>;
  readonly duckdb: () => Promise<DuckDb>;
  readonly targets: TargetRepo;
  readonly env?: NodeJS.ProcessEnv;
  readonly retry?: RetryOptions;
  readonly now?: () => number;
  /** Background errors of the watcher (already scrubbed). */
  readonly onError?: (message: string) => void;
  /**
   * Runs a watcher's sync of one target unless another server is syncing it
   * now (store/run-once.ts); without it every watcher syncs on its own.
   */
  readonly once?: <T>(job: string, fn: () => Promise<T>) => Promise<{ ran: true; value: T } | { ran: false }>;
  /**
   * The stored dashboards' datasets, for targets with an `embedRole` (docs/embedding.md). Dashboards
   * live outside the policy world (and its version): the watcher compares them itself.
   */
  readonly embeds?: () => Promise<readonly EmbedDataset[]>;
}

export interface ApplyReport {
  readonly target: string;
  readonly version: number;
  readonly plan: Plan;
  readonly applied: number;
  readonly batches: number;
  /** Statements the warehouse refused: skipped this time, in the next plan again. */
  readonly failed: readonly FailedStep[];
}

/**
 * Consecutive failed syncs of one target (an error, or statements refused)
 * after which the watcher logs `sync.failing`, the security-lake event
 * monitors alert on (docs/warehouse-sync.md).
 */
export const FAILING_AFTER = 3;

export interface LoadTableInfo {
  readonly table: string;
  readonly schema: string;
  readonly name: string;
  readonly rows: number;
}

export interface WatchOptions {
  readonly intervalMs?: number;
  readonly debounceMs?: number;
  /**
   * Registers a listener the watcher wants called when the policy may have changed: it then looks at once, not at
   * its next tick. `urgent` (a time-bound grant or experiment starting or ending) also skips the debounce.
   */
  readonly wake?: (listener: (urgent: boolean) => void) => void;
}

export interface SyncService {
  readonly targets: TargetRepo;
  plan(target: string, options?: { dialect?: 'postgres' | 'redshift' }): Promise<Plan>;
  apply(target: string, options?: { scope?: Scope; actor?: string }): Promise<ApplyReport>;
  loadTables(target: string, tables?: readonly string[]): Promise<LoadTableInfo[]>;
  loadChunk(target: string, table: string, offset: number, limit: number): Promise<{ rows: number }>;
  /** Starts watching policy changes for `auto` targets; returns a stop function. */
  watch(options?: WatchOptions): () => Promise<void>;
}

export function createSyncService(deps: SyncServiceDeps): SyncService {
  const now = deps.now ?? Date.now;

  const connect = async (def: TargetDefinition): Promise<WarehouseConnection> => {
    const url = await resolveCredentials(def.credentials, deps.env ?? process.env);
    return connectWarehouse(def.name, url, deps.retry);
  };

  const requireCatalog = (world: PolicyWorld, def: TargetDefinition): void => {
    if (!world.catalogs.some((c) => c.name === def.catalog)) throw notFound('catalog', def.catalog);
  };

  /**
   * Residency guardrails (docs/residency.md): tables covered by one may reach
   * only a target in their regions. An enforced violation refuses before the
   * warehouse is even contacted; a report-only one is logged and the sync goes on.
   */
  const checkResidency = async (def: TargetDefinition, world: PolicyWorld, tables: readonly Table[], actor: string, action: string, report = true): Promise<void> => {
    const refs = tables.map((t) => ({ catalog: t.catalog, database: t.database, table: t.name }));
    const entries = gate(residencyViolations(world, refs, def.region ?? null, `warehouse target \`${def.name}\``), actor, action);
    if (report && entries.length > 0) await deps.state.log(entries);
  };
  const inScope = (world: PolicyWorld, def: TargetDefinition, scope: Scope): Table[] =>
    scope.kind === 'full' ? world.tables.filter((t) => t.catalog === def.catalog) : tablesOf(world, def.catalog, scope.tables);

  /** Reads actual, computes desired and diffs, for the whole catalog or some of its tables. */
  /** The dashboards' datasets when the target has an embed role (none otherwise: nothing to read). */
  const embedsFor = async (def: TargetDefinition): Promise<readonly EmbedDataset[]> => (def.embedRole === undefined || deps.embeds === undefined ? [] : deps.embeds());

  const compute = async (client: pg.Client, def: TargetDefinition, world: PolicyWorld, engine: Parameters<typeof desiredState>[0]['engine'], scope: Scope) => {
    const mapped = inScope(world, def, scope).map((t) => mapTable(def, def.catalog, t.database, t.name));
    const logins = world.users.map((u) => loginRole(def, u.name));
    // the embed role is asked about like a login role: the plan skips it, with a warning, when it does not exist
    const asked = def.embedRole === undefined ? logins : [...logins, def.embedRole];
    const actual = await readActualState(client, { targetName: def.name, rolePrefix: def.rolePrefix, tables: mapped, loginRoles: asked, scope: scope.kind === 'full' ? 'full' : 'tables' });
    const loginRoles = new Set(asked.filter((l) => actual.roles.has(l)));
    const embeds = await embedsFor(def);
    const personalPrefix = `${def.rolePrefix}user:`;
    let desired: DesiredState = desiredState({
      world,
      engine,
      target: def,
      now: now(),
      loginRoles,
      embeds,
      ...(scope.kind === 'tables'
        ? {
            tables: scope.tables,
            personalUsers: new Set([...actual.roles].filter((r) => r.startsWith(personalPrefix)).map((r) => r.slice(personalPrefix.length))),
          }
        : {}),
    });
    if (desired.needsFull) return compute(client, def, world, engine, { kind: 'full', reason: 'the role layout changed' });
    const plan = diffStates(desired, actual, { target: def });
    return { plan, desired, scope };
  };

  const service: SyncService = {
    targets: deps.targets,

    async plan(name, options = {}) {
      const def = await deps.targets.get(name);
      const snap = await deps.state.snapshot();
      requireCatalog(snap.world, def);
      await checkResidency(def, snap.world, inScope(snap.world, def, { kind: 'full', reason: 'plan' }), 'system', 'sync.plan');
      if (options.dialect === 'redshift') {
        // Redshift cannot read a per-connection setting: the embed role gets nothing there, and the plan says why
        const plan = redshiftPlan({ world: snap.world, engine: snap.engine, target: def, now: now() });
        const warnings = [...plan.warnings, ...redshiftEmbedWarnings(await embedsFor(def), def.catalog)];
        return { ...plan, warnings, summary: { ...plan.summary, warnings: warnings.length } };
      }
      const conn = await connect(def);
      try {
        return (await compute(conn.client, def, snap.world, snap.engine, { kind: 'full', reason: 'plan' })).plan;
      } catch (e) {
        throw rethrow(e, conn, def.name);
      } finally {
        await conn.close();
      }
    },

    async apply(name, options = {}) {
      const def = await deps.targets.get(name);
      const snap = await deps.state.snapshot();
      requireCatalog(snap.world, def);
      let conn: WarehouseConnection;
      try {
        await checkResidency(def, snap.world, inScope(snap.world, def, options.scope ?? { kind: 'full', reason: 'apply' }), options.actor ?? 'system', 'sync.apply');
        conn = await connect(def);
      } catch (e) {
        await deps.targets.recordSync(def.name, { version: snap.version, status: 'failed', statements: 0 }).catch(() => undefined);
        await deps.state
          .log([{ actor: options.actor ?? 'system', action: 'sync.apply', resource: def.name, result: 'error', reason: (e instanceof Error ? e.message : String(e)).slice(0, 2000), details: { version: snap.version } }])
          .catch(() => undefined);
        throw e;
      }
      try {
        await ensureConfigSchema(conn.client);
        const report = await withSyncLock(conn.client, def.name, async () => {
          await markInterruptedRuns(conn.client, def.name);
          const { plan, scope } = await compute(conn.client, def, snap.world, snap.engine, options.scope ?? { kind: 'full', reason: 'apply' });
          const r = await applySteps(conn.client, def.name, plan.steps, { batchSize: def.batchSize, explain: conn.explain });
          await recordTags(conn.client, def.name, plan.scope === 'full' ? snap.world.tables.filter((t) => t.catalog === def.catalog).map((t) => mapTable(def, def.catalog, t.database, t.name)) : [...(scope.kind === 'tables' ? scope.tables : [])].map((k) => {
            const [d, t] = k.split('.') as [string, string];
            return mapTable(def, def.catalog, d, t);
          }), tagRows(snap.world, def, plan.scope === 'full' ? undefined : scope.kind === 'tables' ? scope.tables : undefined));
          return { target: def.name, version: snap.version, plan, applied: r.applied, batches: r.batches, failed: r.failed };
        });
        const partial = report.failed.length > 0;
        await deps.targets.recordSync(def.name, { version: snap.version, status: partial ? 'partial' : 'ok', statements: report.applied });
        await deps.state.log([
          {
            actor: options.actor ?? 'system',
            action: 'sync.apply',
            resource: def.name,
            result: partial ? 'error' : 'ok',
            reason: partial ? `${report.applied} statement(s) applied, ${report.failed.length} refused: ${failedSummary(report.failed)}`.slice(0, 2000) : `${report.applied} statement(s)`,
            details: { version: snap.version, scope: report.plan.scope, summary: report.plan.summary, warehouse: conn.where, failed: report.failed.map((f) => ({ sql: f.sql.slice(0, 500), error: f.error })) },
          },
        ]);
        return report;
      } catch (e) {
        const err = rethrow(e, conn, def.name);
        await deps.targets.recordSync(def.name, { version: snap.version, status: 'failed', statements: 0 }).catch(() => undefined);
        await deps.state
          .log([{ actor: options.actor ?? 'system', action: 'sync.apply', resource: def.name, result: 'error', reason: err.message.slice(0, 2000), details: { version: snap.version, warehouse: conn.where } }])
          .catch(() => undefined);
        throw err;
      } finally {
        await conn.close();
      }
    },

    async loadTables(name, tables) {
      const def = await deps.targets.get(name);
      const { world } = await deps.state.snapshot();
      const chosen = pickTables(world, def, tables);
      await checkResidency(def, world, chosen, 'system', 'warehouse.load');
      const duck = await deps.duckdb();
      const out: LoadTableInfo[] = [];
      for (const t of chosen) {
        const m = mapTable(def, def.catalog, t.database, t.name);
        out.push({ table: `${t.catalog}.${t.database}.${t.name}`, schema: m.schema, name: m.name, rows: await countRows(duck, t) });
      }
      return out;
    },

    async loadChunk(name, table, offset, limit) {
      const def = await deps.targets.get(name);
      const { world } = await deps.state.snapshot();
      const [t] = pickTables(world, def, [table]);
      // every chunk is checked; a report-only violation is recorded once per load, at its first chunk
      await checkResidency(def, world, [t as Table], 'system', 'warehouse.load', offset === 0);
      const m = mapTable(def, def.catalog, (t as Table).database, (t as Table).name);
      const conn = await connect(def);
      try {
        if (offset === 0) await prepareTable(conn.client, t as Table, m);
        return { rows: await copyChunk(await deps.duckdb(), conn.client, t as Table, m, offset, limit) };
      } catch (e) {
        throw rethrow(e, conn, def.name);
      } finally {
        await conn.close();
      }
    },

    watch(options = {}) {
      const interval = options.intervalMs ?? 1000;
      const debounce = options.debounceMs ?? 500;
      let stopped = false;
      let running: Promise<void> = Promise.resolve();
      // `embeds`: the dashboards' datasets the sync saw (JSON), for targets with an embed role
      const synced = new Map<string, { version: number; world: PolicyWorld; at: number; embeds: string }>();
      const failures = new Map<string, { count: number; retryAt: number; since: number }>();
      let seen = -1;
      let changedAt = 0;
      let urgent = false;
      /** Counts a failed sync; the FAILING_AFTER-th in a row is logged as `sync.failing` (once per streak). */
      const failed = async (def: TargetDefinition, t: number, message: string): Promise<void> => {
        const prev = failures.get(def.name);
        const count = (prev?.count ?? 0) + 1;
        failures.set(def.name, { count, retryAt: t + Math.min(60_000, interval * 2 ** count), since: prev?.since ?? t });
        deps.onError?.(message);
        if (count !== FAILING_AFTER) return;
        await deps.state
          .log([
            {
              actor: 'system (auto sync)',
              action: 'sync.failing',
              resource: def.name,
              result: 'error',
              reason: `${count} syncs in a row failed since ${new Date(prev?.since ?? t).toISOString()}; the warehouse may grant access the policy no longer does: ${message}`.slice(0, 2000),
              details: { failures: count, since: new Date(prev?.since ?? t).toISOString() },
            },
          ])
          .catch(() => undefined);
      };
      const recovered = async (def: TargetDefinition): Promise<void> => {
        const prev = failures.get(def.name);
        failures.delete(def.name);
        if (prev === undefined || prev.count < FAILING_AFTER) return;
        await deps.state
          .log([{ actor: 'system (auto sync)', action: 'sync.recovered', resource: def.name, result: 'ok', reason: `synced after ${prev.count} failed attempt(s)`, details: { failures: prev.count } }])
          .catch(() => undefined);
      };
      const tick = async (): Promise<void> => {
        const snap = await deps.state.snapshot();
        if (snap.version !== seen) {
          // the first look (a server start, perhaps after a crash) and an urgent change sync at once: nothing to debounce
          changedAt = seen === -1 || urgent ? -Infinity : now();
          seen = snap.version;
        }
        urgent = false;
        if (now() - changedAt < debounce) return;
        const t = now();
        for (const def of (await deps.targets.list()).filter((x) => x.auto)) {
          if (stopped) return;
          const once = deps.once ?? (async <T>(_job: string, fn: () => Promise<T>) => ({ ran: true as const, value: await fn() }));
          // Another server syncing this target now skips it here; the next tick looks at what it recorded.
          await once(`sync:${def.name}`, () => syncTarget(def, snap, t));
        }
      };
      /** One target, under its cross-server lock: skipped when a server already synced this version. */
      const syncTarget = async (def: TargetDefinition, snap: Awaited<ReturnType<typeof deps.state.snapshot>>, t: number): Promise<void> => {
        // A dashboard change moves no policy version: compared here, it makes a full sync of the target. A
        // target with an embed role that this watcher has not synced yet is synced in full even when another
        // server (or `steward sync apply`) recorded this version: nobody records which dashboards that saw.
        const embeds = JSON.stringify(await embedsFor(def));
        const dashboardsChanged = def.embedRole !== undefined && synced.get(def.name)?.embeds !== embeds;
        const shared = (await deps.targets.list()).find((x) => x.name === def.name)?.status;
        const sharedAt = shared?.lastSyncedAt === null || shared?.lastSyncedAt === undefined ? undefined : Date.parse(shared.lastSyncedAt);
        const expiredSinceShared = sharedAt !== undefined && snap.world.grants.some((g) => g.notAfter !== undefined && Date.parse(g.notAfter) > sharedAt && Date.parse(g.notAfter) <= t);
        if (shared?.lastVersion === snap.version && shared.lastStatus === 'ok' && !expiredSinceShared && !dashboardsChanged && failures.get(def.name) === undefined) {
          // Synced by another server (or by `steward warehouse sync`): nothing to do, and the next incremental plan starts from here.
          const mine = synced.get(def.name);
          if (mine === undefined || mine.version !== snap.version) synced.set(def.name, { version: snap.version, world: snap.world, at: sharedAt ?? t, embeds });
          return;
        }
        const last = synced.get(def.name);
        const failing = failures.get(def.name);
        // a time-bound grant that ran out since the last sync changes decisions without a new version
        const expiry = last !== undefined && snap.world.grants.some((g) => g.notAfter !== undefined && Date.parse(g.notAfter) > last.at && Date.parse(g.notAfter) <= t);
        if (last !== undefined && last.version === snap.version && !expiry && !dashboardsChanged && failing === undefined) return;
        if (failing !== undefined && failing.retryAt > t) return;
        // after a failure only a full plan is sure to hold everything left over (role drops are full-plan only)
        const scope: Scope =
          last === undefined || expiry || dashboardsChanged || failing !== undefined
            ? { kind: 'full', reason: last === undefined ? 'first sync' : dashboardsChanged ? 'dashboards changed' : 'retry or expiry' }
            : affectedScope(last.world, snap.world, def.catalog);
        try {
          if (scope.kind === 'full' || scope.tables.size > 0) {
            const r = await service.apply(def.name, { scope, actor: 'system (auto sync)' });
            synced.set(def.name, { version: snap.version, world: snap.world, at: t, embeds });
            if (r.failed.length > 0) {
              await failed(def, t, `${r.failed.length} statement(s) refused: ${failedSummary(r.failed)}`);
              return;
            }
          } else {
            synced.set(def.name, { version: snap.version, world: snap.world, at: t, embeds });
          }
          await recovered(def);
        } catch (e) {
          await failed(def, t, e instanceof Error ? e.message : String(e));
        }
      };
      // At most one tick waits behind the running one: a burst of wakes costs one more look, not one each.
      let queued = false;
      const schedule = (): void => {
        if (queued) return;
        queued = true;
        running = running
          .then(() => {
            queued = false;
            return stopped ? undefined : tick();
          })
          .catch((e: unknown) => deps.onError?.(e instanceof Error ? e.message : String(e)));
      };
      schedule();
      // A wake while a tick runs queues one more tick on the chain: a change committed mid-sync is never missed.
      options.wake?.((isUrgent) => {
        if (stopped) return;
        if (isUrgent) urgent = true;
        schedule();
      });
      const timer = setInterval(schedule, interval);
      timer.unref();
      return async () => {
        stopped = true;
        clearInterval(timer);
        await running;
      };
    },
  };
  return service;
}

function pickTables(world: PolicyWorld, def: TargetDefinition, names: readonly string[] | undefined): Table[] {
  const all = world.tables.filter((t) => t.catalog === def.catalog);
  if (names === undefined || names.length === 0) return all;
  return names.map((n) => {
    const parts = n.trim().toLowerCase().split('.');
    const [d, t] = parts.length === 3 && parts[0] === def.catalog ? [parts[1], parts[2]] : parts.length === 2 ? [parts[0], parts[1]] : [undefined, undefined];
    const found = all.find((x) => x.database === d && x.name === t);
    if (found === undefined) throw notFound('table', n);
    return found;
  });
}

/** StewardErrors pass; anything else becomes a source error with the password scrubbed. */
function rethrow(e: unknown, conn: WarehouseConnection, target: string): StewardError {
  if (e instanceof StewardError) return e;
  return new StewardError('STEWARD_E_SOURCE', `warehouse \`${target}\` at \`${conn.where}\`: ${conn.explain(e)}`);
}

export { EMPTY_ACTUAL };
