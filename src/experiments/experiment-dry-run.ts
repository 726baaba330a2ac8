/**
 * The dry run of an experiment: every decision that would change if it ran
 * now, asked of the same evaluator enforcement uses (the engine with
 * experiments applied, share included), before and after its changes. Pure.
 */
import type { Evaluator } from '../policy/decision.js';
import type { Permission, PolicyWorld, PrincipalRef, ResourceRef } from '../policy/model.js';
import { ACTIONS_AT, resourceToString } from '../policy/model.js';
import { membershipGraph, principalSet } from '../policy/principals.js';
import type { ExperimentScope } from './experiment-types.js';

export interface DryRunEntry {
  readonly principal: PrincipalRef;
  readonly action: Permission;
  readonly resource: string;
  readonly before: 'allow' | 'deny';
  readonly after: 'allow' | 'deny';
  /** SELECT still allowed, but these columns disappear. */
  readonly columnsLost?: readonly string[];
}

export interface DryRunResult {
  readonly entries: readonly DryRunEntry[];
  /** Principals the run would deny (targets, and users in target groups), minus the excluded. */
  readonly principals: readonly PrincipalRef[];
  readonly excludedSpared: readonly PrincipalRef[];
  readonly truncated: boolean;
}

const MAX_ENTRIES = 10_000;

/** The users and groups a run reaches: the targets, and every user whose groups include one. */
export function reachedPrincipals(world: PolicyWorld, targets: readonly PrincipalRef[], excluded: readonly PrincipalRef[]): { reached: PrincipalRef[]; spared: PrincipalRef[] } {
  const graph = membershipGraph(world);
  const t = new Set(targets);
  const ex = new Set(excluded);
  const reached: PrincipalRef[] = [];
  const spared: PrincipalRef[] = [];
  const candidates: PrincipalRef[] = [...targets.filter((p) => p.startsWith('group:')), ...world.users.map((u): PrincipalRef => `user:${u.name}`)];
  for (const p of candidates) {
    const set = principalSet(graph, p);
    if (![...set].some((x) => t.has(x))) continue;
    if ([...set].some((x) => ex.has(x))) spared.push(p);
    else reached.push(p);
  }
  return { reached: [...new Set(reached)].sort(), spared: [...new Set(spared)].sort() };
}

function resourcesIn(world: PolicyWorld, s: ExperimentScope): ResourceRef[] {
  const inScope = (catalog: string, database?: string, table?: string): boolean => {
    if (catalog !== s.catalog) return false;
    if ((s.kind === 'database' || s.kind === 'table' || s.kind === 'columns') && database !== undefined && database !== s.database) return false;
    if ((s.kind === 'table' || s.kind === 'columns') && table !== undefined && table !== s.table) return false;
    return true;
  };
  const out: ResourceRef[] = [];
  if (s.kind === 'catalog' || s.kind === 'tags') out.push({ level: 'catalog', catalog: s.catalog });
  for (const d of world.databases) if (inScope(d.catalog, d.name) && s.kind !== 'table' && s.kind !== 'columns') out.push({ level: 'database', catalog: d.catalog, database: d.name });
  for (const t of world.tables) if (inScope(t.catalog, t.database, t.name)) out.push({ level: 'table', catalog: t.catalog, database: t.database, table: t.name });
  return out;
}

export function dryRun(world: PolicyWorld, before: Evaluator, after: Evaluator, scope: ExperimentScope, actions: readonly Permission[], targets: readonly PrincipalRef[], excluded: readonly PrincipalRef[], now: number): DryRunResult {
  const { reached, spared } = reachedPrincipals(world, targets, excluded);
  const entries: DryRunEntry[] = [];
  let truncated = false;
  for (const resource of resourcesIn(world, scope)) {
    const applicable = actions.filter((a) => ACTIONS_AT[resource.level].includes(a));
    for (const principal of reached) {
      for (const action of applicable) {
        const b = before.authorize({ principal, action, resource, now });
        const a = after.authorize({ principal, action, resource, now });
        const lost = (b.columns ?? []).map((c) => c.name).filter((n) => a.decision === 'allow' && !(a.columns ?? []).some((c) => c.name === n));
        if (b.decision === a.decision && lost.length === 0) continue;
        if (entries.length >= MAX_ENTRIES) {
          truncated = true;
          continue;
        }
        entries.push({ principal, action, resource: resourceToString(resource), before: b.decision, after: a.decision, ...(lost.length === 0 ? {} : { columnsLost: lost }) });
      }
    }
  }
  return { entries, principals: reached, excludedSpared: spared, truncated };
}
