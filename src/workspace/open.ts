/**
 * Wiring: the one place where stores, engines and services are built and
 * connected. The server and the embedded CLI both start here.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import { openDb, type Db } from '../store/db.js';
import { createStateStore } from '../store/state-store.js';
import { createTokenStore } from '../store/token-store.js';
import { createSessionStore } from '../identity/session-store.js';
import { oidcFromConfig } from '../identity/oidc-setup.js';
import { createDecisionLog } from '../store/decision-log.js';
import { createAuditBuffer } from '../audit/audit-buffer.js';
import { acquireWorkspaceLock, secureWorkspaceHome, tightenModes } from '../store/workspace.js';
import { createLakeShell } from '../lake/lake-shell.js';
import { admitLakeLocations, type LakeRoots } from '../catalog/lake-roots.js';
import { createStateService } from './state-service.js';
import { admitResidency } from '../residency/residency-gate.js';
import { lakeRegionsOf } from '../residency/residency-config.js';
import { embeddedFeed, inProcessFeed, startChangeFeed, type ChangeFeed } from '../store/change-feed.js';
import { runOnce } from '../store/run-once.js';
import { createSyncService } from '../sync/sync-service.js';
import { embedDatasets } from '../sync/session-tag-rls.js';
import { createTargetRepo } from '../sync/target-repo.js';
import { createAccessService } from '../access/access-service.js';
import { startAccessRuntime } from '../access/scheduler.js';
import { createExperimentService } from '../experiments/experiment-service.js';
import { openSecuritySql } from '../audit/security-sql.js';
import { startAuditRuntime } from '../audit/runtime.js';
import { createGatewayService } from '../gateway/gateway-service.js';
import { createEmbedService } from '../embed/embed-service.js';
import { createSharingService, replicaGuard } from '../sharing/sharing-service.js';
import { createCleanroomService } from '../cleanroom/cleanroom-service.js';
import { createApp } from '../server/app.js';
import { dropWorldCache, writeWorldCache, type WorldCache } from './world-cache.js';
import { ingestSpool, type IngestResult } from '../store/decision-spool.js';
import type { StateService } from './state-service.js';
import type { AccessService } from '../access/access-service.js';
import type { ExperimentService } from '../experiments/experiment-service.js';
import { createAuthFailureGuard } from '../server/auth-failures.js';
import { allRoutes } from '../server/routes.js';
import type { Services } from '../server/services.js';
import type { Hono } from 'hono';
import type { AppOptions, LocalBindings } from '../server/app.js';

export interface Workspace {
  readonly services: Services;
  readonly app: Hono<{ Bindings: LocalBindings }>;
  readonly db: Db;
  /** How this process hears of other servers' changes (docs/scale-out.md). */
  readonly feed: ChangeFeed;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Who holds the embedded store: a server, or one CLI command. */
  readonly purpose: 'server' | 'cli';
  readonly app?: AppOptions;
}

export async function openWorkspace(config: Config, options: OpenOptions): Promise<Workspace> {
  // Private before anything is written: the store, tokens and the demo's PII live here.
  await secureWorkspaceHome(config.home);
  // A shared PostgreSQL store is multi-process by design; only the embedded one needs the lock.
  const lock = config.databaseUrl === undefined ? await acquireWorkspaceLock(config.home, { purpose: options.purpose }) : undefined;
  let started: ChangeFeed | undefined;
  try {
    // Before anything can change the store: from now on the world cache might be stale (world-cache.ts).
    if (lock !== undefined) await dropWorldCache(config.home);
    const created = config.databaseUrl === undefined && !existsSync(path.join(config.home, 'pgdata'));
    const db = await openDb({ home: config.home, ...(config.databaseUrl === undefined ? {} : { databaseUrl: config.databaseUrl }) });
    // Decisions answered from the world cache while the store was closed join the log before anything else.
    if (lock !== undefined) await reportSpool(await ingestSpool(db, config.home));
    // PGlite writes a new store's files with modes of its own (0666), past the umask; later files follow PostgreSQL's
    // 0600. So a new store is narrowed now, before a long-running server would leave it so, and every close narrows
    // again; an existing store is not walked twice per command (home is 0700 whatever its files say).
    if (created) await tightenModes(config.home, [config.lakeDir]);
    const stateStore = createStateStore(db);
    const decisionLog = createDecisionLog(db);
    // Group commit for state.log (decisions, refusals): concurrent entries share one INSERT; each call still resolves only once committed.
    const decisionBuffer = createAuditBuffer((entries) => decisionLog.appendDecisions(entries), { maxDelayMs: 0 });
    const tokens = createTokenStore(db);
    const roots: LakeRoots = { roots: config.lakeRoots, private: [config.home] };
    const lakeRegions = lakeRegionsOf(config);
    // Servers sharing PostgreSQL hear of each other's changes, and a one-shot command there has nobody to hear. The
    // embedded store hears its own commits, synchronously: its caches need not ask it again until one arrives.
    const feed = config.databaseUrl === undefined ? await embeddedFeed(db) : options.purpose === 'server' ? startChangeFeed({ databaseUrl: config.databaseUrl }) : inProcessFeed();
    started = feed;
    const replicas = replicaGuard(db);
    // Who wants to hear of this process's own commits (the warehouse sync); other servers' come through the feed.
    const wakers = new Set<(urgent: boolean) => void>();
    const wakeAll = (urgent: boolean): void => {
      for (const wake of wakers) wake(urgent);
    };
    const lake = await createLakeShell(roots);
    const state = createStateService(
      {
        loadWorld: () => stateStore.loadWorld(),
        version: () => stateStore.version(),
        applyChanges: (changes, opts) => stateStore.applyChanges(changes, opts),
        appendDecisions: (entries) => decisionBuffer.recordAll(entries),
      },
      {
        admit: async (changes, context) => {
          admitLakeLocations(changes, roots);
          // Replicated catalogs (src/sharing) change only by replication.
          await replicas(changes, context.action);
          return admitResidency(changes, context, lakeRegions);
        },
        feed,
        committed: () => wakeAll(false),
      },
    );
    // Replicas of shares are read through their producer (src/gateway/remote.ts); `sharing` exists before the first query.
    const gateway = await createGatewayService({ db, state, remote: { catalogs: () => sharing.consumer.remote.catalogs(), fetch: (read, signal) => sharing.consumer.remote.fetch(read, signal) } });
    // Time-bound grants and experiments starting or ending reach the warehouse without the edit debounce.
    const access = createAccessService({ db, state, committed: () => wakeAll(true) });
    const audit = await startAuditRuntime({ db, config, state, lake, purpose: options.purpose });
    const experiments = createExperimentService({
      db,
      state,
      committed: () => wakeAll(true),
      lake: {
        flush: async () => {
          await audit.service.flush();
        },
        query: async (sql) => {
          const sandbox = await openSecuritySql(config.lakeDir, await audit.service.sourceNames());
          try {
            return await sandbox.query(sql, 100_000);
          } finally {
            sandbox.close();
          }
        },
      },
    });
    // Each watcher's sync of a target runs on one server at a time (store/run-once.ts).
    const sync = createSyncService({
      state,
      duckdb: () => lake.duckdb(),
      targets: createTargetRepo(db),
      once: (job, fn) => runOnce(db, job, fn),
      // the embed service is made below; a sync asks for dashboards only once the workspace is open
      embeds: async () => embedDatasets(await embed.listDashboards()),
    });
    const sessions = createSessionStore(db, { idleSeconds: config.sessionIdle, maxSeconds: config.sessionMax });
    const oidc = oidcFromConfig(config, { db, state });
    const embed = createEmbedService({ db, state, gateway: gateway.gateway });
    feed.on('embed-keys', () => embed.keys.forget());
    feed.on('tokens', () => tokens.forget());
    const sharing = createSharingService({ db, state, parsePredicate: (sql) => lake.parsePredicate(sql) });
    const cleanrooms = createCleanroomService({ db, state, gateway: gateway.gateway });
    const services: Services = { config, state, tokens, decisionLog, lake, gateway, access, audit, sync, sessions, experiments, embed, sharing, cleanrooms, ...(oidc === undefined ? {} : { oidc }) };
    // Failed authentications become one row per source address and interval; closing writes the open interval's rows.
    const authFailures = options.app?.authFailures ?? createAuthFailureGuard({ log: (entries) => state.log(entries) });
    const app = createApp(services, allRoutes, { ...options.app, authFailures });
    // Only a server syncs in the background: a CLI command lives for one call.
    const stopSync =
      options.purpose === 'server'
        ? sync.watch({
            wake: (listener) => {
              wakers.add(listener);
              feed.on('state', () => listener(false));
            },
          })
        : undefined;
    // Experiments end, and shares are pulled, on the access scheduler's loop: the same durable-timer ticks and sweep.
    const accessRuntime = startAccessRuntime(access, options.purpose, { also: [experiments, ...(options.purpose === 'server' ? [sharing.consumer] : [])] });
    await accessRuntime.ready;
    return {
      services,
      app,
      db,
      feed,
      close: async () => {
        await feed.close();
        await stopSync?.();
        await authFailures.close();
        await accessRuntime.stop();
        await decisionBuffer.close();
        await audit.stop();
        await gateway.close();
        await lake.close();
        const cache = lock === undefined ? undefined : await cacheable(state, access, experiments);
        await db.close();
        await tightenModes(config.home, [config.lakeDir]);
        // Written only after a clean close, by the lock holder: the next command may then decide without the store.
        if (cache !== undefined) await writeWorldCache(config.home, cache).catch(() => false);
        await lock?.release();
      },
    };
  } catch (e) {
    await started?.close();
    await lock?.release();
    throw e;
  }
}

/** The world to cache at close, with the store's next due timer; undefined when it cannot be read (nothing is cached). */
async function cacheable(state: StateService, access: Pick<AccessService, 'nextDue'>, experiments: Pick<ExperimentService, 'nextDue'>): Promise<WorldCache | undefined> {
  try {
    const [snap, ...due] = await Promise.all([state.snapshot(), access.nextDue(), experiments.nextDue()]);
    const times = due.filter((d): d is number => d !== null);
    return { version: snap.version, world: snap.world, validUntil: times.length === 0 ? null : Math.min(...times) };
  } catch {
    return undefined;
  }
}

function reportSpool(r: IngestResult): void {
  for (const why of r.rejected) process.stderr.write(`warning: a decision-spool file was refused and kept as *.rejected: ${why}\n`);
}
