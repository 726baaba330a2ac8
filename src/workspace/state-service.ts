/**
 * The one door to the policy world. Readers get an immutable snapshot with its
 * indexed engine; writers describe a change as a list of entity changes, which
 * is validated against the world it would produce and persisted in one
 * transaction together with its decision-log entry.
 *
 * Several server processes may share one PostgreSQL store: every snapshot()
 * compares the store's version with the one in memory (one indexed row read)
 * and rebuilds when another process committed, so a change is visible to the
 * next decision after it commits, wherever it was made.
 */
import { applyChanges, changeKey, type Change } from '../policy/changes.js';
import type { PolicyWorld } from '../policy/model.js';
import { createEngine } from '../policy/engine.js';
import { withExperiments } from '../experiments/experiment-evaluator.js';
import { assertValidWorld } from '../policy/validate.js';
import type { Evaluator } from '../policy/decision.js';
import type { StateStore } from '../store/state-store.js';
import type { DecisionLogEntry } from '../store/decision-log.js';
import { StewardError } from '../errors.js';

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
}

const MAX_CONFLICT_RETRIES = 3;

export interface StateServiceOptions {
  /**
   * Deployment rules a change must also pass, beyond the world's own validity
   * (which does not depend on where Steward runs): e.g. lake locations must
   * lie under the configured roots. Sees only the changes, so tightening a
   * rule never blocks edits to entities that were accepted before. Also told
   * the request's action (replicated catalogs admit only replication's own,
   * src/sharing/admit.ts), and may read the store.
   */
  readonly admit?: (changes: readonly Change[], req: Pick<ChangeRequest, 'action'>) => void | Promise<void>;
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
        engine ??= withExperiments(createEngine(world), world, createEngine);
        return engine;
      },
    };
  };

  const reload = (): Promise<Snapshot> => {
    loading ??= store
      .loadWorld()
      .then(({ world, version }) => {
        current = makeSnapshot(version, world);
        return current;
      })
      .finally(() => {
        loading = undefined;
      });
    return loading;
  };

  const snapshot = async (): Promise<Snapshot> => {
    const version = await store.version();
    if (current !== undefined && current.version === version) return current;
    return reload();
  };

  const change = async (req: ChangeRequest): Promise<ChangeResult> => {
    for (let attempt = 0; ; attempt++) {
      const base = await snapshot();
      const changes = await req.build(base.world, base);
      if (changes.length === 0) return { version: base.version, changes };
      await options.admit?.(changes, req);
      const next = applyChanges(base.world, changes);
      assertValidWorld(next);
      try {
        const version = await store.applyChanges(changes, {
          expectedVersion: base.version,
          log: [
            {
              actor: req.actor,
              action: req.action,
              resource: req.resource,
              result: 'ok',
              reason: `${changes.length} change(s)`,
              details: { ...req.details, changes: changes.map(describeChange) },
            },
          ],
        });
        current = makeSnapshot(version, next);
        return { version, changes };
      } catch (e) {
        if (e instanceof StewardError && e.code === 'STEWARD_E_CONFLICT' && attempt < MAX_CONFLICT_RETRIES) continue;
        throw e;
      }
    }
  };

  return { snapshot, change, log: (entries) => store.appendDecisions(entries) };
}

function describeChange(c: Change): string {
  return `${c.op} ${c.kind} ${changeKey(c)}`;
}
