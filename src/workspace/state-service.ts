/**
 * The one door to the policy world. Readers get an immutable snapshot with its
 * indexed engine; writers describe a change as a list of entity changes, which
 * is validated against the world it would produce and persisted in one
 * transaction together with its decision-log entry.
 *
 * Several server processes may share one PostgreSQL store: every snapshot()
 * compares the store's version with the one in memory (one indexed row read)
 * and rebuilds when another process committed, so a change is visible to the
 * next decision after it commits, wherever it was made. With a change feed
 * (store/change-feed.ts: LISTEN/NOTIFY, polling while disconnected) the
 * snapshot and its engine are rebuilt as soon as another server commits,
 * before any request asks, so the first decision after a change does not pay
 * for the rebuild (docs/scale-out.md lists what each server caches).
 *
 * On the embedded store the feed is synchronous (one process, every commit
 * heard before it returns to its writer), so the version is not read again
 * until a notification arrives: a decision costs no store round trip.
 */
import { applyChanges, changeKey, type Change } from '../policy/changes.js';
import type { PolicyWorld } from '../policy/model.js';
import { evaluatorFor } from '../experiments/experiment-evaluator.js';
import { assertValidWorld } from '../policy/validate.js';
import type { Evaluator } from '../policy/decision.js';
import type { StateStore } from '../store/state-store.js';
import type { Db } from '../store/db.js';
import type { DecisionLogEntry } from '../store/decision-log.js';
import { StewardError } from '../errors.js';
import type { ChangeFeed } from '../store/change-feed.js';

export interface Snapshot {
  readonly version: number;
  readonly world: PolicyWorld;
  /** Built on first use: many requests never decide anything. */
  readonly engine: Evaluator;
}

export interface ChangeRequest {
  readonly actor: string;
  /** Verb for the decision log, e.g. `grant.create`. */
  readonly action: string;
  readonly resource: string;
  /** Builds the changes from the current world; may throw StewardError to refuse. */
  readonly build: (world: PolicyWorld, snapshot: Snapshot) => Change[] | Promise<Change[]>;
  readonly details?: Record<string, unknown>;
  /**
   * Rows outside the world written with the change, in its transaction (see
   * `ApplyOptions.also`), given the world being committed. Throwing
   * STEWARD_E_CONFLICT retries the whole change from `build`.
   */
  readonly alongside?: (tx: Db, after: PolicyWorld) => Promise<readonly DecisionLogEntry[]>;
}

export interface ChangeResult {
  readonly version: number;
  readonly changes: readonly Change[];
}

export interface StateService {
  snapshot(): Promise<Snapshot>;
  change(req: ChangeRequest): Promise<ChangeResult>;
  /** Appends entries outside a change (decisions, refusals). */
  log(entries: DecisionLogEntry[]): Promise<void>;
  /** The version of the snapshot held in memory, without asking the store (undefined before the first load). */
  cachedVersion(): number | undefined;
}

const MAX_CONFLICT_RETRIES = 3;

export interface AdmitContext {
  readonly before: PolicyWorld;
  readonly after: PolicyWorld;
  readonly actor: string;
  /** The change's verb (`table.register`), for what the rule logs. */
  readonly action: string;
}

export interface StateServiceOptions {
  /**
   * Deployment rules a change must also pass, beyond the world's own validity
   * (which does not depend on where Steward runs): e.g. lake locations must
   * lie under the configured roots. Sees only the changes, so tightening a
   * rule never blocks edits to entities that were accepted before. A rule
   * that compares worlds (residency) gets both; what it returns is logged
   * with the change, in its transaction (violations it only reports). Also
   * told the request's action (replicated catalogs admit only replication's
   * own, src/sharing/admit.ts), and may read the store.
   */
  readonly admit?: (changes: readonly Change[], context: AdmitContext) => void | readonly DecisionLogEntry[] | Promise<void | readonly DecisionLogEntry[]>;
  /** Told when another process may have changed the policy: the snapshot and engine are then rebuilt in the background. */
  readonly feed?: Pick<ChangeFeed, 'on' | 'synchronous'>;
  /** Called after this process committed a change (e.g. to wake the warehouse sync at once instead of at its next tick). */
  readonly committed?: (version: number) => void;
}

export function createStateService(
  store: Pick<StateStore, 'loadWorld' | 'version' | 'applyChanges'> & {
    appendDecisions(entries: DecisionLogEntry[]): Promise<void>;
  },
  options: StateServiceOptions = {},
): StateService {
  let current: Snapshot | undefined;
  let loading: Promise<Snapshot> | undefined;

  const makeSnapshot = (version: number, world: PolicyWorld): Snapshot => {
    let engine: Evaluator | undefined;
    return {
      version,
      world,
      get engine(): Evaluator {
        // Running access experiments (src/experiments) end, share and explain their denies here, for every enforcement point.
        engine ??= evaluatorFor(world);
        return engine;
      },
    };
  };

  // With a synchronous feed: `state` notifications heard, and how many had been heard when `current` was last
  // known to be the store's version. While the two are equal no commit has happened since: `current` is the latest.
  const synchronous = options.feed?.synchronous === true;
  let heard = 0;
  let currentAsOf = -1;
  if (synchronous) options.feed?.on('state', () => void heard++);

  const reload = (): Promise<Snapshot> => {
    const asOf = heard;
    loading ??= store
      .loadWorld()
      .then(({ world, version }) => {
        current = makeSnapshot(version, world);
        currentAsOf = asOf;
        return current;
      })
      .finally(() => {
        loading = undefined;
      });
    return loading;
  };

  const snapshot = async (): Promise<Snapshot> => {
    if (synchronous && current !== undefined && currentAsOf === heard) return current;
    const asOf = heard;
    const version = await store.version();
    if (current !== undefined && current.version === version) {
      currentAsOf = asOf;
      return current;
    }
    return reload();
  };

  const change = async (req: ChangeRequest): Promise<ChangeResult> => {
    for (let attempt = 0; ; attempt++) {
      const base = await snapshot();
      const changes = await req.build(base.world, base);
      if (changes.length === 0 && req.alongside === undefined) return { version: base.version, changes };
      const next = applyChanges(base.world, changes);
      const admitted = (await options.admit?.(changes, { before: base.world, after: next, actor: req.actor, action: req.action })) ?? [];
      assertValidWorld(next);
      try {
        const alongside = req.alongside;
        const version = await store.applyChanges(changes, {
          expectedVersion: base.version,
          log: [
            ...(changes.length === 0
              ? []
              : [
                  {
                    actor: req.actor,
                    action: req.action,
                    resource: req.resource,
                    result: 'ok' as const,
                    reason: `${changes.length} change(s)`,
                    details: { ...req.details, changes: changes.map(describeChange) },
                  },
                ]),
            ...admitted,
          ],
          ...(alongside === undefined ? {} : { also: (tx: Db) => alongside(tx, next) }),
        });
        if (version === base.version) return { version, changes };
        current = makeSnapshot(version, next);
        options.committed?.(version);
        return { version, changes };
      } catch (e) {
        if (e instanceof StewardError && e.code === 'STEWARD_E_CONFLICT' && attempt < MAX_CONFLICT_RETRIES) continue;
        throw e;
      }
    }
  };

  /** One background refresh at a time; a burst of notifications while one runs makes one more. */
  let refreshing: Promise<void> | undefined;
  let again = false;
  const refresh = (): void => {
    if (refreshing !== undefined) {
      again = true;
      return;
    }
    refreshing = (async () => {
      do {
        again = false;
        // Building the engine now is the point: the next decision finds it ready.
        void (await snapshot()).engine;
      } while (again);
    })()
      // A failed refresh changes nothing: the next request reads the version itself.
      .catch(() => undefined)
      .finally(() => {
        refreshing = undefined;
      });
  };
  options.feed?.on('state', refresh);

  return { snapshot, change, log: (entries) => store.appendDecisions(entries), cachedVersion: () => current?.version };
}

function describeChange(c: Change): string {
  return `${c.op} ${c.kind} ${changeKey(c)}`;
}
