/**
 * The desired warehouse state, computed by the policy engine. Pure: the world,
 * an evaluator and the target in; a set of privilege items out.
 *
 * Roles. Every Steward group gets a NOLOGIN role (`stw_<group>`) holding the
 * projection of the group's own decisions (projection.ts). A user's login role
 * becomes a member of the roles of its direct groups — unless that union would
 * differ from the user's own decisions (a grant to the user, a guardrail that
 * treats the user and its group differently, or row filters of two groups
 * meeting on one table). Then the user gets a personal role (`stw_user:<name>`)
 * holding exactly its own projection, and no group memberships: the warehouse
 * never shows a user more than Steward would.
 *
 * Cost. Decisions are asked only where a grant could reach: per role, the
 * tables covered by the grants its principal set holds, and only for the
 * actions those grants carry. A table-scoped run (incremental sync) asks every
 * role about the given tables only.
 */
import type { Evaluator } from '../policy/decision.js';
import type { Grant, Guardrail, Permission, PolicyWorld, PrincipalRef, Table, TagExpression } from '../policy/model.js';
import { toSql, TRUE, type Predicate } from '../policy/predicate.js';
import { membershipGraph, principalSet, type MembershipGraph } from '../policy/principals.js';
import { matchesTagExpression } from '../policy/tag-expression.js';
import { disjuncts, hasAccess, NO_ACCESS, project, sameProjection, unionOf, type Projection } from './projection.js';
import { groupRole, itemKey, loginRole, mapTable, personalRole, policyName, schemaOf } from './names.js';
import type { Item, MappedTable, SyncWarning, TargetSpec } from './sync-types.js';

export interface DesiredInput {
  readonly world: PolicyWorld;
  readonly engine: Pick<Evaluator, 'authorize'>;
  readonly target: TargetSpec;
  readonly now: number;
  /** Only these catalog tables (`database.table`): an incremental run. All tables of the catalog when omitted. */
  readonly tables?: ReadonlySet<string>;
  /** Login roles that exist in the warehouse. Users whose role is missing are skipped with a warning; all exist when omitted. */
  readonly loginRoles?: ReadonlySet<string>;
  /** Table-scoped runs: users that currently have a personal role. A different answer now means a full run is needed. */
  readonly personalUsers?: ReadonlySet<string>;
}

export interface DesiredState {
  /** By item key. Table-scoped runs hold only items of the scoped tables (and their schemas' USAGE). */
  readonly items: Map<string, Item>;
  /** The catalog tables in scope, mapped into the warehouse. */
  readonly tables: readonly MappedTable[];
  /** Schemas of the tables in scope. */
  readonly schemas: readonly string[];
  /** Every managed role (group roles and personal roles). */
  readonly roles: readonly string[];
  /** Users with a personal role, and why. */
  readonly personal: ReadonlyMap<string, string>;
  readonly warnings: readonly SyncWarning[];
  readonly scope: 'full' | 'tables';
  /** Table-scoped run that found the role layout changed: run a full plan instead. */
  readonly needsFull: boolean;
}

interface RoleSpec {
  readonly role: string;
  readonly principal: PrincipalRef;
  readonly pset: ReadonlySet<PrincipalRef>;
}

const TABLE_ACTIONS = ['SELECT', 'INSERT', 'DELETE'] as const;
type TableAction = (typeof TABLE_ACTIONS)[number];

/** Tags and tables of one catalog, indexed for "which tables can a tag grant reach". */
interface CatalogIndex {
  readonly tables: readonly Table[];
  readonly byKey: ReadonlyMap<string, number>;
  readonly byDb: ReadonlyMap<string, number[]>;
  /** Effective tags of each table, then of each column that has its own. */
  readonly tableTags: readonly ReadonlyMap<string, string>[];
  readonly columnTags: readonly (readonly ReadonlyMap<string, string>[])[];
  readonly dbTags: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /** `key=value` → tables whose own or column tags carry it. */
  readonly kvTables: ReadonlyMap<string, number[]>;
}

function indexCatalog(world: PolicyWorld, catalog: string, only?: ReadonlySet<string>): CatalogIndex {
  // a table-scoped run indexes only its tables: everything it computes is intersected with them anyway
  const tables = world.tables.filter((t) => t.catalog === catalog && (only === undefined || only.has(`${t.database}.${t.name}`)));
  const byKey = new Map<string, number>();
  const byDb = new Map<string, number[]>();
  tables.forEach((t, i) => {
    byKey.set(`${t.database}.${t.name}`, i);
    const l = byDb.get(t.database);
    if (l === undefined) byDb.set(t.database, [i]);
    else l.push(i);
  });
  const own = new Map<string, Map<string, string>>();
  for (const a of world.tagAssignments) {
    if (a.resource.catalog !== catalog) continue;
    const r = a.resource;
    const key = r.level === 'database' ? r.database : r.level === 'table' ? `${r.database}.${r.table}` : `${r.database}.${r.table}.${r.column}`;
    let m = own.get(`${r.level}:${key}`);
    if (m === undefined) own.set(`${r.level}:${key}`, (m = new Map()));
    if (!m.has(a.key)) m.set(a.key, a.value);
  }
  const dbTags = new Map<string, ReadonlyMap<string, string>>();
  for (const d of world.databases) if (d.catalog === catalog) dbTags.set(d.name, own.get(`database:${d.name}`) ?? new Map());
  const kvTables = new Map<string, number[]>();
  const note = (tags: ReadonlyMap<string, string>, t: number): void => {
    for (const [k, v] of tags) {
      const l = kvTables.get(`${k}=${v}`);
      if (l === undefined) kvTables.set(`${k}=${v}`, [t]);
      else if (l[l.length - 1] !== t) l.push(t);
    }
  };
  const tableTags: Map<string, string>[] = [];
  const columnTags: Map<string, string>[][] = [];
  tables.forEach((t, i) => {
    const base = new Map(dbTags.get(t.database) ?? []);
    for (const [k, v] of own.get(`table:${t.database}.${t.name}`) ?? []) base.set(k, v);
    tableTags.push(base);
    note(base, i);
    const cols: Map<string, string>[] = [];
    for (const c of t.columns) {
      const o = own.get(`column:${t.database}.${t.name}.${c.name}`);
      if (o === undefined) continue;
      const m = new Map(base);
      for (const [k, v] of o) m.set(k, v);
      cols.push(m);
      note(m, i);
    }
    columnTags.push(cols);
  });
  return { tables, byKey, byDb, tableTags, columnTags, dbTags, kvTables };
}

function tagMatches(ix: CatalogIndex, expr: TagExpression): number[] {
  const keys = Object.keys(expr);
  if (keys.length === 0) return ix.tables.map((_, i) => i);
  const first = keys[0] as string;
  const seen = new Set<number>();
  for (const v of expr[first] ?? []) for (const t of ix.kvTables.get(`${first}=${v}`) ?? []) seen.add(t);
  const out: number[] = [];
  for (const t of seen) {
    if (matchesTagExpression(expr, ix.tableTags[t] as ReadonlyMap<string, string>) || (ix.columnTags[t] ?? []).some((m) => matchesTagExpression(expr, m))) out.push(t);
  }
  return out.sort((a, b) => a - b);
}

/** Does a guardrail apply to a principal set? (docs/policy.md, Guardrails) */
function guardrailApplies(g: Guardrail, pset: ReadonlySet<PrincipalRef>): boolean {
  const meets = (list: readonly PrincipalRef[] | undefined): boolean => (list ?? []).some((p) => pset.has(p));
  const applies = g.principals === undefined || g.principals.length === 0 ? true : meets(g.principals);
  return applies && !meets(g.except);
}

const carries = (g: Grant, a: Permission): boolean => g.permissions.includes(a);

/** Computes the desired state. */
export function desiredState(input: DesiredInput): DesiredState {
  const { world, engine, target, now } = input;
  const catalog = target.catalog;
  const ix = indexCatalog(world, catalog, input.tables);
  const graph: MembershipGraph = membershipGraph(world);
  const warnings: SyncWarning[] = [];
  const scoped = input.tables !== undefined;
  const scopeIdx = scoped ? [...(input.tables as ReadonlySet<string>)].map((k) => ix.byKey.get(k)).filter((i): i is number => i !== undefined).sort((a, b) => a - b) : null;
  // databases whose DESCRIBE (schema USAGE) is in question
  const scopeDbs = scopeIdx === null ? null : new Set(scopeIdx.map((t) => (ix.tables[t] as Table).database));

  // grants of this catalog by principal
  const grantsOf = new Map<PrincipalRef, Grant[]>();
  for (const g of world.grants) {
    if (g.resource.catalog !== catalog) continue;
    const l = grantsOf.get(g.principal);
    if (l === undefined) grantsOf.set(g.principal, [g]);
    else l.push(g);
  }
  const guardrails = world.guardrails.filter((g) => g.catalog === undefined || g.catalog === catalog);

  // ---- who needs a personal role
  const directGroups = new Map<string, string[]>();
  for (const m of world.memberships) {
    if (!m.member.startsWith('user:')) continue;
    const u = m.member.slice(5);
    const l = directGroups.get(u);
    if (l === undefined) directGroups.set(u, [m.group]);
    else l.push(m.group);
  }
  const groupPset = new Map<string, ReadonlySet<PrincipalRef>>();
  for (const g of world.groups) groupPset.set(g.name, principalSet(graph, `group:${g.name}`));
  const users = world.users.filter((u) => {
    if (input.loginRoles === undefined) return true;
    const login = loginRole(target, u.name);
    if (input.loginRoles.has(login)) return true;
    if ((directGroups.get(u.name) ?? []).length > 0 || grantsOf.has(`user:${u.name}`)) {
      warnings.push({ code: 'LOGIN_ROLE_MISSING', message: `login role \`${login}\` of user \`${u.name}\` does not exist in the warehouse; the user is skipped` });
    }
    return false;
  });
  const personal = new Map<string, string>();
  for (const u of users) {
    const groups = directGroups.get(u.name) ?? [];
    if (grantsOf.has(`user:${u.name}`)) {
      personal.set(u.name, 'holds grants of its own');
      continue;
    }
    const uset = principalSet(graph, `user:${u.name}`);
    const g = guardrails.find((gr) => groups.some((grp) => guardrailApplies(gr, uset) !== guardrailApplies(gr, groupPset.get(grp) ?? new Set())));
    if (g !== undefined) personal.set(u.name, `guardrail \`${g.name}\` treats the user and its groups differently`);
  }

  // ---- roles
  const roles: RoleSpec[] = [];
  for (const g of world.groups) roles.push({ role: groupRole(target.rolePrefix, g.name), principal: `group:${g.name}`, pset: groupPset.get(g.name) as ReadonlySet<PrincipalRef> });

  // what each role's grants can reach
  const heldBy = (pset: ReadonlySet<PrincipalRef>): Grant[] => [...pset].flatMap((p) => grantsOf.get(p) ?? []);
  const tagCache = new Map<Grant, number[]>();
  const covered = (g: Grant): number[] => {
    const r = g.resource;
    switch (r.kind) {
      case 'catalog':
        return ix.tables.map((_, i) => i);
      case 'database':
        return ix.byDb.get(r.database) ?? [];
      case 'table':
      case 'columns':
      case 'filter': {
        const t = ix.byKey.get(`${r.database}.${r.table}`);
        return t === undefined ? [] : [t];
      }
      case 'tag': {
        let l = tagCache.get(g);
        if (l === undefined) tagCache.set(g, (l = tagMatches(ix, r.expression)));
        return l;
      }
      default: {
        const never: never = r;
        return never;
      }
    }
  };
  const describedDbs = (held: readonly Grant[]): Set<string> => {
    const out = new Set<string>();
    for (const g of held) {
      const r = g.resource;
      if (r.kind === 'catalog') for (const d of scopeDbs ?? ix.dbTags.keys()) out.add(d);
      else if (r.kind === 'database') out.add(r.database);
      else if (r.kind === 'tag') {
        for (const d of scopeDbs ?? ix.dbTags.keys()) if (matchesTagExpression(r.expression, ix.dbTags.get(d) ?? new Map())) out.add(d);
        for (const t of covered(g)) out.add((ix.tables[t] as Table).database);
      } else out.add(r.database);
    }
    return out;
  };

  const projectionOf = (principal: PrincipalRef, t: number, actions: ReadonlySet<TableAction>): Projection => {
    const table = ix.tables[t] as Table;
    if (actions.size === 0) return NO_ACCESS;
    const resource = { level: 'table', catalog, database: table.database, table: table.name } as const;
    const select = actions.has('SELECT') ? engine.authorize({ principal, action: 'SELECT', resource, now }) : null;
    const ins = actions.has('INSERT') && engine.authorize({ principal, action: 'INSERT', resource, now }).decision === 'allow';
    const del = actions.has('DELETE') && engine.authorize({ principal, action: 'DELETE', resource, now }).decision === 'allow';
    return project(table, select, ins, del);
  };

  /** Projections of one principal: over its reachable tables, or over the scoped tables. */
  const projectionsOf = (principal: PrincipalRef, pset: ReadonlySet<PrincipalRef>): { proj: Map<number, Projection>; dbs: Set<string> } => {
    const held = heldBy(pset);
    const proj = new Map<number, Projection>();
    const byAction = new Map<number, Set<TableAction>>();
    for (const g of held) {
      const actions = TABLE_ACTIONS.filter((a) => carries(g, a) && (a === 'SELECT' || (g.resource.kind !== 'columns' && g.resource.kind !== 'filter')));
      if (actions.length === 0) continue;
      if (scopeIdx !== null) {
        const cov = new Set(covered(g));
        for (const t of scopeIdx) if (cov.has(t)) addActions(byAction, t, actions);
      } else {
        for (const t of covered(g)) addActions(byAction, t, actions);
      }
    }
    for (const [t, actions] of byAction) {
      const p = projectionOf(principal, t, actions);
      if (hasAccess(p)) proj.set(t, p);
    }
    const dbs = new Set<string>();
    for (const d of describedDbs(held)) {
      if (scopeDbs !== null && !scopeDbs.has(d)) continue;
      if (engine.authorize({ principal, action: 'DESCRIBE', resource: { level: 'database', catalog, database: d }, now }).decision === 'allow') dbs.add(d);
    }
    return { proj, dbs };
  };

  const results = new Map<string, { spec: RoleSpec; proj: Map<number, Projection>; dbs: Set<string> }>();
  for (const spec of roles) results.set(spec.role, { spec, ...projectionsOf(spec.principal, spec.pset) });

  // row filters of two groups meeting on one table: compare the union with the user's own decisions
  for (const u of users) {
    if (personal.has(u.name)) continue;
    const groups = directGroups.get(u.name) ?? [];
    if (groups.length < 2) continue;
    const perTable = new Map<number, Projection[]>();
    for (const g of groups) {
      const r = results.get(groupRole(target.rolePrefix, g));
      for (const [t, p] of r?.proj ?? []) {
        const l = perTable.get(t);
        if (l === undefined) perTable.set(t, [p]);
        else l.push(p);
      }
    }
    for (const [t, list] of perTable) {
      if (list.length < 2 || !list.some((p) => p.rowFilter !== null)) continue;
      const mine = projectionOf(`user:${u.name}`, t, new Set(TABLE_ACTIONS));
      if (!sameProjection(unionOf(ix.tables[t] as Table, list), mine)) {
        personal.set(u.name, `row filters of its groups meet on \`${catalog}.${(ix.tables[t] as Table).database}.${(ix.tables[t] as Table).name}\``);
        break;
      }
    }
  }
  // A table-scoped run cannot see every table, so it keeps earlier personal roles (they are exact
  // either way) and asks for a full run only when a user newly needs one: memberships must change.
  let needsFull = false;
  if (scoped) {
    const before = input.personalUsers ?? new Set<string>();
    needsFull = [...personal.keys()].some((u) => !before.has(u));
    for (const u of before) if (!personal.has(u) && users.some((x) => x.name === u)) personal.set(u, 'kept from the last full sync');
  }
  // personal roles: computed after the group check, since it needs the group projections
  for (const [name, why] of [...personal].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const spec: RoleSpec = { role: personalRole(target.rolePrefix, name), principal: `user:${name}`, pset: principalSet(graph, `user:${name}`) };
    roles.push(spec);
    results.set(spec.role, { spec, ...projectionsOf(spec.principal, spec.pset) });
    warnings.push({ code: 'PERSONAL_ROLE', message: `user \`${name}\` gets personal role \`${spec.role}\`: ${why}` });
  }

  // ---- items
  const items = new Map<string, Item>();
  const add = (it: Item): void => {
    items.set(itemKey(it), it);
  };
  const mapped = ix.tables.map((t) => mapTable(target, catalog, t.database, t.name));
  if (!scoped) {
    for (const r of roles) add({ k: 'role', role: r.role });
    for (const u of users) {
      const login = loginRole(target, u.name);
      if (personal.has(u.name)) add({ k: 'member', role: personalRole(target.rolePrefix, u.name), member: login });
      else for (const g of directGroups.get(u.name) ?? []) add({ k: 'member', role: groupRole(target.rolePrefix, g), member: login });
    }
  }
  const rlsTables = new Set<number>();
  for (const r of results.values()) for (const [t, p] of r.proj) if (p.rowFilter !== null) rlsTables.add(t);
  for (const { spec, proj, dbs } of results.values()) {
    const role = spec.role;
    const schemas = new Set<string>();
    for (const [t, p] of proj) {
      const m = mapped[t] as MappedTable;
      schemas.add(m.schema);
      if (p.narrowed.length > 0) {
        warnings.push({
          code: 'CELL_LEVEL_NARROWED',
          message: `\`${role}\` on \`${m.schema}.${m.name}\`: columns ${p.narrowed.map((c) => `\`${c}\``).join(', ')} are visible on only some rows in Steward and are not granted`,
        });
      }
      if (p.columns.length > 0) {
        if (p.allColumns) add({ k: 'table', role, schema: m.schema, table: m.name, priv: 'SELECT' });
        else add({ k: 'columns', role, schema: m.schema, table: m.name, priv: 'SELECT', columns: p.columns });
      }
      if (p.insert) add({ k: 'table', role, schema: m.schema, table: m.name, priv: 'INSERT' });
      if (p.delete) add({ k: 'table', role, schema: m.schema, table: m.name, priv: 'DELETE' });
      if (rlsTables.has(t)) {
        const policy = (cmd: 'SELECT' | 'INSERT' | 'DELETE', pred: Predicate): void => {
          const expr = toSql(pred, 'postgres');
          add({ k: 'policy', schema: m.schema, table: m.name, name: policyName(target.rolePrefix, role, cmd, expr), role, cmd, expr, pred });
        };
        if (p.columns.length > 0) for (const d of p.rowFilter === null ? [TRUE] : disjuncts(p.rowFilter)) policy('SELECT', d);
        if (p.insert) policy('INSERT', TRUE);
        if (p.delete) policy('DELETE', TRUE);
      }
    }
    for (const d of dbs) schemas.add(schemaOf(target, d));
    for (const s of schemas) add({ k: 'usage', role, schema: s });
  }
  for (const t of rlsTables) add({ k: 'rls', schema: (mapped[t] as MappedTable).schema, table: (mapped[t] as MappedTable).name });

  const inScope = scopeIdx === null ? mapped : scopeIdx.map((t) => mapped[t] as MappedTable);
  return {
    items,
    tables: inScope,
    schemas: [...new Set(inScope.map((m) => m.schema))].sort(),
    roles: roles.map((r) => r.role).sort(),
    personal,
    warnings,
    scope: scoped ? 'tables' : 'full',
    needsFull,
  };
}

function addActions(map: Map<number, Set<TableAction>>, t: number, actions: readonly TableAction[]): void {
  let s = map.get(t);
  if (s === undefined) map.set(t, (s = new Set()));
  for (const a of actions) s.add(a);
}

/** Effective tags of each table in scope and of each column with tags of its own, for `steward_config.resource_tags`. */
export function tagRows(world: PolicyWorld, target: TargetSpec, tables?: ReadonlySet<string>): { schema: string; table: string; column: string; key: string; value: string }[] {
  const ix = indexCatalog(world, target.catalog);
  const out: { schema: string; table: string; column: string; key: string; value: string }[] = [];
  const colOwn = new Set<string>();
  for (const a of world.tagAssignments) if (a.resource.level === 'column' && a.resource.catalog === target.catalog) colOwn.add(`${a.resource.database}.${a.resource.table}.${a.resource.column}`);
  ix.tables.forEach((t, i) => {
    if (tables !== undefined && !tables.has(`${t.database}.${t.name}`)) return;
    const m = mapTable(target, target.catalog, t.database, t.name);
    const base = ix.tableTags[i] as ReadonlyMap<string, string>;
    for (const [key, value] of base) out.push({ schema: m.schema, table: m.name, column: '', key, value });
    let j = 0;
    for (const c of t.columns) {
      if (!colOwn.has(`${t.database}.${t.name}.${c.name}`)) continue;
      const tags = (ix.columnTags[i] ?? [])[j++] as ReadonlyMap<string, string>;
      for (const [key, value] of tags) out.push({ schema: m.schema, table: m.name, column: c.name, key, value });
    }
  });
  return out;
}
