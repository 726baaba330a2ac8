/**
 * Trino file-based access control (`rules.json`) from the policy. Pure.
 *
 * Trino takes the FIRST table rule whose user, group, catalog, schema and
 * table patterns all match, and denies when none does. Grants in Steward
 * combine as a union instead, so the rules are built to make the first match
 * the right answer:
 *
 * - for each table, one rule per group with access (the group's projection:
 *   privileges, denied columns, row filter), in group-name order;
 * - before them, one rule per user whose own decision differs from what the
 *   first group rule matching them would give (a grant to the user, a
 *   guardrail, two groups whose access combines) — including an empty-privilege
 *   rule when that group rule would give too much;
 * - a final rule per catalog that denies everything else explicitly.
 *
 * Trino groups must be Steward groups, each user in every group of its
 * principal set (nested groups flattened), e.g. through the file group provider.
 * Cell-level access narrows as for the warehouse (projection.ts).
 */
import type { Evaluator } from '../policy/decision.js';
import type { PolicyWorld, PrincipalRef, Table } from '../policy/model.js';
import { toSql } from '../policy/predicate.js';
import { membershipGraph, principalSet } from '../policy/principals.js';
import { hasAccess, NO_ACCESS, project, sameProjection, type Projection } from './projection.js';

export interface TrinoColumnRule {
  readonly name: string;
  readonly allow: boolean;
}

export interface TrinoTableRule {
  readonly user?: string;
  readonly group?: string;
  readonly catalog: string;
  readonly schema: string;
  readonly table: string;
  readonly privileges: readonly ('SELECT' | 'INSERT' | 'DELETE')[];
  readonly columns?: readonly TrinoColumnRule[];
  readonly filter?: string;
}

export interface TrinoRules {
  readonly tables: readonly TrinoTableRule[];
}

export interface TrinoOptions {
  readonly catalog: string;
  /** The catalog name in Trino (default: the Steward catalog name). */
  readonly trinoCatalog?: string;
  readonly now: number;
}

/** A Java regular expression matching exactly `name`. */
export function exactPattern(name: string): string {
  return name.replace(/[^A-Za-z0-9_]/g, (c) => `\\${c}`);
}

export function projectionFor(engine: Pick<Evaluator, 'authorize'>, principal: PrincipalRef, t: Table, now: number): Projection {
  const resource = { level: 'table', catalog: t.catalog, database: t.database, table: t.name } as const;
  const select = engine.authorize({ principal, action: 'SELECT', resource, now });
  const ins = engine.authorize({ principal, action: 'INSERT', resource, now }).decision === 'allow';
  const del = engine.authorize({ principal, action: 'DELETE', resource, now }).decision === 'allow';
  return project(t, select, ins, del);
}

export function trinoRules(world: PolicyWorld, engine: Pick<Evaluator, 'authorize'>, options: TrinoOptions): TrinoRules {
  const catalog = options.trinoCatalog ?? options.catalog;
  const graph = membershipGraph(world);
  const groups = [...world.groups].map((g) => g.name).sort();
  const userGroups = new Map<string, Set<string>>();
  for (const u of world.users) {
    const set = new Set<string>();
    for (const p of principalSet(graph, `user:${u.name}`)) if (p.startsWith('group:')) set.add(p.slice(6));
    userGroups.set(u.name, set);
  }
  const users = [...world.users].map((u) => u.name).sort();
  const rules: TrinoTableRule[] = [];
  const tables = world.tables.filter((t) => t.catalog === options.catalog).sort((a, b) => (`${a.database}.${a.name}` < `${b.database}.${b.name}` ? -1 : 1));
  for (const t of tables) {
    const base = { catalog: exactPattern(catalog), schema: exactPattern(t.database), table: exactPattern(t.name) };
    const rule = (who: { user: string } | { group: string }, p: Projection): TrinoTableRule => {
      const privileges = [...(p.columns.length > 0 ? (['SELECT'] as const) : []), ...(p.insert ? (['INSERT'] as const) : []), ...(p.delete ? (['DELETE'] as const) : [])];
      const visible = new Set(p.columns);
      const denied = t.columns.filter((c) => !visible.has(c.name)).map((c) => ({ name: c.name, allow: false }));
      return {
        ...('user' in who ? { user: exactPattern(who.user) } : { group: exactPattern(who.group) }),
        ...base,
        privileges,
        ...(p.columns.length > 0 && denied.length > 0 ? { columns: denied } : {}),
        ...(p.columns.length > 0 && p.rowFilter !== null ? { filter: toSql(p.rowFilter, 'trino') } : {}),
      };
    };
    const groupProj = new Map<string, Projection>();
    for (const g of groups) {
      const p = projectionFor(engine, `group:${g}`, t, options.now);
      if (hasAccess(p)) groupProj.set(g, p);
    }
    const userRules: TrinoTableRule[] = [];
    for (const u of users) {
      const mine = projectionFor(engine, `user:${u}`, t, options.now);
      const first = groups.find((g) => groupProj.has(g) && (userGroups.get(u) as Set<string>).has(g));
      const viaGroup = first === undefined ? NO_ACCESS : (groupProj.get(first) as Projection);
      if (!sameProjection(viaGroup, mine)) userRules.push(rule({ user: u }, mine));
    }
    rules.push(...userRules);
    for (const [g, p] of groupProj) rules.push(rule({ group: g }, p));
  }
  rules.push({ catalog: exactPattern(catalog), schema: '.*', table: '.*', privileges: [] });
  return { tables: rules };
}
