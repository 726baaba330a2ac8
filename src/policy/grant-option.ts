/**
 * The grant option: may a (non-administrator) principal create a grant?
 *
 * Only when one unexpired grant held through its principal set carries every
 * permission of the new grant with the grant option, on a resource containing
 * the new grant's resource, and the new grant expires no later than that one.
 * Permissions are never pooled across several held grants: each re-grant
 * derives from exactly one, which is what `via` names.
 */
import type { Engine } from './engine.js';
import type { Grant, GrantResource, PolicyWorld, PrincipalRef, Table } from './model.js';
import { compareText, membershipGraph, principalExists, principalSet } from './principals.js';
import { carries, expiryOf, selectColumns } from './reference-evaluator.js';
import { formatTagExpression, isAtLeastAsNarrow } from './tag-expression.js';

export type GrantOptionResult = { readonly ok: true; readonly via: string } | { readonly ok: false; readonly reason: string };

/** A grant's resource for people: `lake.claims.members (id, region)`, `tag lake: pii=false`. */
export function describeGrantResource(r: GrantResource): string {
  switch (r.kind) {
    case 'catalog':
      return r.catalog;
    case 'database':
      return `${r.catalog}.${r.database}`;
    case 'table':
      return `${r.catalog}.${r.database}.${r.table}`;
    case 'columns':
      return r.columns !== undefined
        ? `${r.catalog}.${r.database}.${r.table} (${r.columns.join(', ')})`
        : `${r.catalog}.${r.database}.${r.table} (all but ${(r.excludedColumns ?? []).join(', ')})`;
    case 'filter':
      return `${r.catalog}.${r.database}.${r.table}/${r.filter}`;
    case 'tag':
      return `tag ${r.catalog}: ${formatTagExpression(r.expression)}`;
    default: {
      const never: never = r;
      return never;
    }
  }
}

function sameTable(a: { catalog: string; database: string; table: string }, b: { catalog: string; database: string; table: string }): boolean {
  return a.catalog === b.catalog && a.database === b.database && a.table === b.table;
}

/**
 * Whether a grant on `holder` contains a grant on `target`:
 * catalog ⊇ database ⊇ table ⊇ columns or filter of that table; columns ⊇
 * columns showing a subset; filter ⊇ the same filter; tag ⊇ a tag grant of the
 * same catalog at least as narrow. A catalog also contains every tag grant of
 * that catalog, since a tag grant only ever reaches resources inside it.
 */
export function containsGrantResource(world: PolicyWorld, holder: GrantResource, target: GrantResource): boolean {
  switch (holder.kind) {
    case 'catalog':
      return target.catalog === holder.catalog;
    case 'database':
      return target.kind !== 'catalog' && target.kind !== 'tag' && target.catalog === holder.catalog && target.database === holder.database;
    case 'table':
      return (target.kind === 'table' || target.kind === 'columns' || target.kind === 'filter') && sameTable(holder, target);
    case 'columns': {
      if (target.kind !== 'columns' || !sameTable(holder, target)) return false;
      const table = world.tables.find((t) => sameTable({ catalog: t.catalog, database: t.database, table: t.name }, holder));
      if (table === undefined) return false;
      const held = new Set(visibleColumns(table, holder));
      return visibleColumns(table, target).every((c) => held.has(c));
    }
    case 'filter':
      return target.kind === 'filter' && sameTable(holder, target) && target.filter === holder.filter;
    case 'tag':
      return target.kind === 'tag' && target.catalog === holder.catalog && isAtLeastAsNarrow(target.expression, holder.expression);
    default: {
      const never: never = holder;
      return never;
    }
  }
}

function visibleColumns(table: Table, r: Extract<GrantResource, { kind: 'columns' }>): string[] {
  return selectColumns(table, r.columns, r.excludedColumns, 'none').map((c) => c.name);
}

function isEngine(source: PolicyWorld | Engine): source is Engine {
  return 'authorize' in source;
}

/**
 * Checks whether `grantor` may create `grant`. Callers exempt administrators
 * before calling; everyone else goes through here.
 *
 * @example checkGrantOption(engine, 'user:alice', { id: 'g9', principal: 'user:bob', resource: { kind: 'table', catalog: 'lake', database: 'claims', table: 'members' }, permissions: ['SELECT'], grantable: [] }, Date.now())
 */
export function checkGrantOption(source: PolicyWorld | Engine, grantor: PrincipalRef, grant: Grant, now: number = Date.now()): GrantOptionResult {
  const world = isEngine(source) ? source.world : source;
  if (!principalExists(world, grantor)) return { ok: false, reason: `unknown principal \`${grantor}\`` };
  if (grant.permissions.length === 0) return { ok: false, reason: 'the new grant carries no permission' };
  const set = (isEngine(source) ? source.principalSetOf(grantor) : null) ?? principalSet(membershipGraph(world), grantor);
  const holders = world.grants
    .filter((h) => set.has(h.principal) && now < expiryOf(h))
    .filter((h) => grant.permissions.every((p) => h.grantable.includes(p) && carries(h, p)))
    .filter((h) => containsGrantResource(world, h.resource, grant.resource));
  // a re-grant may lift only guardrails its holder grant lifts itself
  const lifting = holders.filter((h) => (grant.liftsGuardrails ?? []).every((name) => (h.liftsGuardrails ?? []).includes(name)));
  const first = [...holders].sort((a, b) => compareText(a.id, b.id))[0];
  if (lifting.length === 0 && first !== undefined) {
    const missing = (grant.liftsGuardrails ?? []).find((name) => !(first.liftsGuardrails ?? []).includes(name)) ?? '';
    return { ok: false, reason: `the new grant lifts guardrail \`${missing}\`, which grant \`${first.id}\` does not lift` };
  }
  return fromHolders(grant, grantor, lifting);
}

function fromHolders(grant: Grant, grantor: PrincipalRef, holders: readonly Grant[]): GrantOptionResult {
  const newExpiry = expiryOf(grant);
  const lasting = holders.filter((h) => newExpiry <= expiryOf(h)).sort((a, b) => compareText(a.id, b.id));
  const via = lasting[0];
  if (via !== undefined) return { ok: true, via: via.id };
  const longest = [...holders].sort((a, b) => expiryOf(b) - expiryOf(a))[0];
  if (longest !== undefined) {
    return { ok: false, reason: `the new grant must expire no later than \`${longest.notAfter ?? ''}\`, when grant \`${longest.id}\` does` };
  }
  return {
    ok: false,
    reason: `\`${grantor}\` holds no unexpired grant with the grant option for ${grant.permissions.join(', ')} on a resource containing \`${describeGrantResource(grant.resource)}\``,
  };
}
