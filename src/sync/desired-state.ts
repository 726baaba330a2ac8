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
import type { Column, Grant, Guardrail, Membership, User, Permission, PolicyWorld, PrincipalRef, Table, TagExpression } from '../policy/model.js';
import { toSql, TRUE, type Predicate } from '../policy/predicate.js';
import { catalogTables, type CatalogTables } from '../policy/index.js';
import { membershipGraph, principalSet, type MembershipGraph } from '../policy/principals.js';
import { matchesTagExpression } from '../policy/tag-expression.js';
import { disjuncts, hasAccess, NO_ACCESS, project, sameProjection, unionOf, type Projection } from './projection.js';
import { groupRole, itemKey, loginRole, mapTable, personalRole, policyName, schemaOf } from './names.js';
import type { Item, MappedTable, SyncWarning, TargetSpec } from './sync-types.js';
import { embedUsing, type EmbedDataset, type EmbedPart } from './session-tag-rls.js';

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
  /** Dashboard datasets, for the target's `embedRole` (docs/embedding.md); none when omitted. */
  readonly embeds?: readonly EmbedDataset[];
}

export interface DesiredState {
  /**
   * By item key. Table-scoped runs hold only items of the scoped tables (and their schemas' USAGE).
   * Built from `list` on first use: a first sync into a warehouse without grants never looks a
   * desired key up, and at 100k tables the map is a large part of a full plan.
   */
  readonly items: ReadonlyMap<string, Item>;
  /** The items of `items`, in its order, each once. */
  readonly list: readonly Item[];
  /** The key of each item of `list` (`itemKey`). */
  readonly keys: readonly string[];
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

/** A role's projections with access: table numbers and their projections, in the order the role's grants reached them. */
interface Projections {
  readonly ts: number[];
  readonly ps: Projection[];
}

interface RoleSpec {
  readonly role: string;
  readonly principal: PrincipalRef;
  readonly pset: ReadonlySet<PrincipalRef>;
}

const TABLE_ACTIONS = ['SELECT', 'INSERT', 'DELETE'] as const;

/** Tags and tables of one catalog, indexed for "which tables can a tag grant reach". */
interface CatalogIndex {
  readonly tables: readonly Table[];
  /** The number of a table (-1: not in the index). */
  readonly find: (database: string, table: string) => number;
  readonly byDb: ReadonlyMap<string, readonly number[]>;
  /** Effective tags of each table (shared with its database's map when the table has no tags of its own). */
  readonly tableTags: readonly ReadonlyMap<string, string>[];
  /** Effective tags of each column that has tags of its own, in column order. */
  readonly columnTags: readonly (readonly ReadonlyMap<string, string>[])[];
  readonly dbTags: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /** `key=value` → databases whose own tags carry it. */
  readonly kvDbs: ReadonlyMap<string, string[]>;
  /** `key=value` → tables whose own (or own column) effective tags carry it: tables with tags of their own only. */
  readonly kvOwn: ReadonlyMap<string, number[]>;
  /** Tables that carry tags of their own (table or column level): 1, else 0. */
  readonly ownTagged: Uint8Array;
  /** Database of each table, as an index into `dbNames`: sets of databases are marked by number, not hashed by name. */
  readonly dbOf: Int32Array;
  readonly dbNames: readonly string[];
  /** Scratch marks (one per table, one per database), reset by an epoch: a tag grant's tables and databases are collected without a Set. */
  readonly marks: { readonly table: Int32Array; readonly db: Int32Array; epoch: number };
  /**
   * Decision class of each table. Two tables of one class get the same decision from every
   * principal, up to the table's name: same database, same columns, same own tag assignments
   * (so the same effective tags on the table and every column), and neither is named by a grant
   * or a data filter. Only such names, tags and the database reach a table's decisions
   * (docs/policy.md), so the desired state asks the engine once per class instead of per table.
   */
  readonly classOf: Int32Array;
}

function indexCatalog(world: PolicyWorld, catalog: string, only?: ReadonlySet<string>): CatalogIndex {
  // a table-scoped run indexes only its tables: everything it computes is intersected with them anyway
  // the catalog's tables, their numbers and names come from the engine's catalog index (shared per
  // catalog arrays, which a policy change that leaves the catalog alone keeps), not from a second
  // index of every table name; a scoped run looks its tables up there and passes over other
  // databases' tags without building a key
  const onlyDbs = only === undefined ? null : new Set([...only].map((k) => k.slice(0, k.indexOf('.'))));
  const { tables, find, byDb, dbNames, dbOf } = only === undefined ? wholeCatalog(catalogTables(world, catalog)) : scopedTables(catalogTables(world, catalog), only);
  // own tag assignments, first one per key wins (as the engine reads them)
  const dbOwn = new Map<string, Map<string, string>>();
  // by table number (sparse): most tables have no tags of their own
  const tableOwn: (Map<string, string> | undefined)[] = new Array(tables.length);
  const colOwn: (Map<string, Map<string, string>> | undefined)[] = new Array(tables.length);
  const setFirst = (m: Map<string, string>, k: string, v: string): void => {
    if (!m.has(k)) m.set(k, v);
  };
  for (const a of world.tagAssignments) {
    const r = a.resource;
    if (r.catalog !== catalog) continue;
    if (r.level === 'database') {
      let m = dbOwn.get(r.database);
      if (m === undefined) dbOwn.set(r.database, (m = new Map()));
      setFirst(m, a.key, a.value);
      continue;
    }
    if (onlyDbs !== null && !onlyDbs.has(r.database)) continue;
    const t = find(r.database, r.table);
    if (t < 0) continue;
    if (r.level === 'table') {
      let m = tableOwn[t];
      if (m === undefined) tableOwn[t] = m = new Map();
      setFirst(m, a.key, a.value);
    } else {
      let cols = colOwn[t];
      if (cols === undefined) colOwn[t] = cols = new Map();
      let m = cols.get(r.column);
      if (m === undefined) cols.set(r.column, (m = new Map()));
      setFirst(m, a.key, a.value);
    }
  }
  const EMPTY = new Map<string, string>();
  const dbTags = new Map<string, ReadonlyMap<string, string>>();
  for (const d of world.databases) if (d.catalog === catalog) dbTags.set(d.name, dbOwn.get(d.name) ?? EMPTY);
  const kvDbs = new Map<string, string[]>();
  for (const [d, tags] of dbTags) for (const [k, v] of tags) push(kvDbs, `${k}=${v}`, d);
  const kvOwn = new Map<string, number[]>();
  const note = (tags: ReadonlyMap<string, string>, t: number): void => {
    for (const [k, v] of tags) {
      const kv = `${k}=${v}`;
      const l = kvOwn.get(kv);
      if (l === undefined) kvOwn.set(kv, [t]);
      else if (l[l.length - 1] !== t) l.push(t);
    }
  };
  // tables named by a grant or a data filter decide alone
  const named = new Uint8Array(tables.length);
  const name = (database: string, table: string): void => {
    const t = find(database, table);
    if (t >= 0) named[t] = 1;
  };
  for (const g of world.grants) {
    const r = g.resource;
    if (r.catalog === catalog && (r.kind === 'table' || r.kind === 'columns' || r.kind === 'filter')) name(r.database, r.table);
  }
  for (const f of world.filters) if (f.catalog === catalog) name(f.database, f.table);

  const tableTags: ReadonlyMap<string, string>[] = new Array(tables.length);
  const columnTags: (readonly ReadonlyMap<string, string>[])[] = new Array(tables.length);
  const ownTagged = new Uint8Array(tables.length);
  const classOf = new Int32Array(tables.length);
  const classes = new Map<string, number>();
  // per database number: its tags, and the classes of its tables without tags of their own
  const dbMaps = dbNames.map((d) => dbTags.get(d) ?? EMPTY);
  const plain = dbNames.map((): { columns: readonly Column[]; id: number }[] => []);
  let nextClass = 0;
  const NONE: readonly ReadonlyMap<string, string>[] = [];
  const sig = (m: ReadonlyMap<string, string> | undefined): string => (m === undefined ? '' : [...m].map(([k, v]) => `${k}=${v}`).sort().join('\u0002'));
  for (let i = 0; i < tables.length; i++) {
    const t = tables[i] as Table;
    const db = dbOf[i] as number;
    const dbMap = dbMaps[db] as ReadonlyMap<string, string>;
    const tOwn = tableOwn[i];
    const cOwn = colOwn[i];
    let base: ReadonlyMap<string, string> = dbMap;
    if (tOwn !== undefined) {
      const m = new Map(dbMap);
      for (const [k, v] of tOwn) m.set(k, v);
      base = m;
    }
    tableTags[i] = base;
    let cols = NONE;
    if (cOwn !== undefined) {
      const list: Map<string, string>[] = [];
      for (const c of t.columns) {
        const o = cOwn.get(c.name);
        if (o === undefined) continue;
        const m = new Map(base);
        for (const [k, v] of o) m.set(k, v);
        list.push(m);
      }
      cols = list;
    }
    columnTags[i] = cols;
    if (tOwn !== undefined || cols.length > 0) {
      ownTagged[i] = 1;
      note(base, i);
      for (const m of cols) note(m, i);
    }
    if (named[i] === 1) {
      classOf[i] = nextClass++;
      continue;
    }
    if (tOwn === undefined && cOwn === undefined) {
      // the common case: compare columns with the few plain classes of the database, no key text
      const reps = plain[db] as { columns: readonly Column[]; id: number }[];
      if (reps.length <= 16) {
        let id = -1;
        for (const r of reps) {
          if (sameColumns(r.columns, t.columns)) {
            id = r.id;
            break;
          }
        }
        if (id === -1) reps.push({ columns: t.columns, id: (id = nextClass++) });
        classOf[i] = id;
        continue;
      }
    }
    let key = `${t.database}\u0000${t.columns.map((c) => c.name).join('\u0001')}\u0000${sig(tOwn)}`;
    if (cOwn !== undefined) for (const c of t.columns) key += `\u0000${sig(cOwn.get(c.name))}`;
    let k = classes.get(key);
    if (k === undefined) classes.set(key, (k = nextClass++));
    classOf[i] = k;
  }
  const marks = { table: new Int32Array(tables.length), db: new Int32Array(dbNames.length), epoch: 0 };
  return { tables, find, byDb, tableTags, columnTags, dbTags, kvDbs, kvOwn, ownTagged, classOf, dbOf, dbNames, marks };
}

type CatalogTablesIndex = Pick<CatalogIndex, 'tables' | 'find' | 'byDb' | 'dbOf' | 'dbNames'>;

/** The whole catalog: the engine's view of it (policy/engine/catalog-tables.ts), no index of its own. */
function wholeCatalog(view: CatalogTables): CatalogTablesIndex {
  const byDb = new Map<string, readonly number[]>();
  view.databases.forEach((d, n) => byDb.set(d, view.tablesOf[n] as readonly number[]));
  return { tables: view.tables, find: (d, t) => view.find(d, t), byDb, dbOf: view.dbOf, dbNames: view.databases };
}

/** The tables of a scoped run (`database.table` keys, unknown ones left out), in key order, numbered among themselves. */
function scopedTables(view: CatalogTables, only: ReadonlySet<string>): CatalogTablesIndex {
  const tables: Table[] = [];
  for (const k of [...only].sort()) {
    const i = findKey(view, k);
    if (i !== undefined) tables.push(view.tables[i] as Table);
  }
  const byName = new Map<string, Map<string, number>>();
  const byDb = new Map<string, number[]>();
  for (let i = 0; i < tables.length; i++) {
    const t = tables[i] as Table;
    let names = byName.get(t.database);
    if (names === undefined) {
      byName.set(t.database, (names = new Map()));
      byDb.set(t.database, [i]);
    } else (byDb.get(t.database) as number[]).push(i);
    names.set(t.name, i);
  }
  const dbNames = [...byDb.keys()];
  const dbOf = new Int32Array(tables.length);
  dbNames.forEach((d, n) => {
    for (const t of byDb.get(d) as number[]) dbOf[t] = n;
  });
  return { tables, find: (d, t) => byName.get(d)?.get(t) ?? -1, byDb, dbOf, dbNames };
}

/** The number of a table given as `database.table` (names never hold a dot: NAME_PATTERN). */
function findKey(ix: Pick<CatalogIndex, 'find'>, key: string): number | undefined {
  const dot = key.indexOf('.');
  const t = dot < 0 ? -1 : ix.find(key.slice(0, dot), key.slice(dot + 1));
  return t < 0 ? undefined : t;
}

function sameColumns(a: readonly Column[], b: readonly Column[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if ((a[i] as Column).name !== (b[i] as Column).name) return false;
  return true;
}

function push<K, V>(map: Map<K, V[]>, k: K, v: V): void {
  const l = map.get(k);
  if (l === undefined) map.set(k, [v]);
  else l.push(v);
}

/** Below this many tables (or databases) in scope, tag expressions are tested one by one instead of through the index. */
const SMALL = 32;
const NO_TAGS: ReadonlyMap<string, string> = new Map();

/** Databases whose own tags match the expression. */
function dbMatches(ix: CatalogIndex, expr: TagExpression, restrict: ReadonlySet<string> | null = null): string[] {
  const keys = Object.keys(expr);
  if (keys.length === 0) return [...ix.dbTags.keys()];
  const first = keys[0] as string;
  const out = new Set<string>();
  if (restrict !== null && restrict.size <= SMALL) {
    // a scoped run: test the few databases in scope, no key text
    for (const d of restrict) if (matchesTagExpression(expr, ix.dbTags.get(d) ?? NO_TAGS)) out.add(d);
    return [...out];
  }
  for (const v of expr[first] ?? []) for (const d of ix.kvDbs.get(`${first}=${v}`) ?? []) if (matchesTagExpression(expr, ix.dbTags.get(d) as ReadonlyMap<string, string>)) out.add(d);
  return [...out];
}

/** Tables whose effective tags, or one of whose columns' effective tags, match the expression. */
function tagMatches(ix: CatalogIndex, expr: TagExpression): number[] {
  const keys = Object.keys(expr);
  if (keys.length === 0) return ix.tables.map((_, i) => i);
  const first = keys[0] as string;
  if (ix.tables.length <= SMALL) {
    // a scoped index holds a few tables: test each
    const out: number[] = [];
    for (let t = 0; t < ix.tables.length; t++) {
      if (matchesTagExpression(expr, ix.tableTags[t] as ReadonlyMap<string, string>) || (ix.columnTags[t] ?? []).some((m) => matchesTagExpression(expr, m))) out.push(t);
    }
    return out;
  }
  const hit = (t: number): boolean => matchesTagExpression(expr, ix.tableTags[t] as ReadonlyMap<string, string>) || (ix.columnTags[t] ?? []).some((m) => matchesTagExpression(expr, m));
  // a table is in `out` when its mark holds this call's epoch
  const mark = ix.marks.table;
  const epoch = nextEpoch(ix);
  const out: number[] = [];
  const own = ix.ownTagged;
  // tables without tags of their own have their database's tags: one check per database
  for (const d of dbMatches(ix, expr)) {
    for (const t of ix.byDb.get(d) ?? []) {
      if (own[t] === 0 && mark[t] !== epoch) {
        mark[t] = epoch;
        out.push(t);
      }
    }
  }
  for (const v of expr[first] ?? []) {
    for (const d of ix.kvDbs.get(`${first}=${v}`) ?? []) {
      for (const t of ix.byDb.get(d) ?? []) {
        if (own[t] === 1 && mark[t] !== epoch && hit(t)) {
          mark[t] = epoch;
          out.push(t);
        }
      }
    }
    for (const t of ix.kvOwn.get(`${first}=${v}`) ?? []) {
      if (mark[t] !== epoch && hit(t)) {
        mark[t] = epoch;
        out.push(t);
      }
    }
  }
  return ascending(out);
}

/** A fresh epoch for the index's scratch marks (starting the marks over before the counter could wrap). */
function nextEpoch(ix: CatalogIndex): number {
  if (ix.marks.epoch === 0x7fffffff) {
    ix.marks.table.fill(0);
    ix.marks.db.fill(0);
    ix.marks.epoch = 0;
  }
  return ++ix.marks.epoch;
}

/** Sorts table numbers in place (numerically), skipping the sort when they already ascend. */
function ascending(list: number[]): number[] {
  for (let i = 1; i < list.length; i++) if ((list[i] as number) < (list[i - 1] as number)) return list.sort((a, b) => a - b);
  return list;
}

/** What the memberships say, per memberships array: worlds built by applyChanges share it until a membership changes. */
interface Principals {
  readonly directGroups: ReadonlyMap<string, readonly string[]>;
  /** The principal set of a user or group (computed once, then remembered). */
  readonly pset: (ref: PrincipalRef) => ReadonlySet<PrincipalRef>;
}
const principalCache = new WeakMap<readonly Membership[], Principals>();
function principalsOf(world: PolicyWorld): Principals {
  const hit = principalCache.get(world.memberships);
  if (hit !== undefined) return hit;
  const graph: MembershipGraph = membershipGraph(world);
  const directGroups = new Map<string, string[]>();
  for (const m of world.memberships) {
    if (!m.member.startsWith('user:')) continue;
    push(directGroups, m.member.slice(5), m.group);
  }
  const sets = new Map<PrincipalRef, ReadonlySet<PrincipalRef>>();
  const pset = (ref: PrincipalRef): ReadonlySet<PrincipalRef> => {
    let p = sets.get(ref);
    if (p === undefined) sets.set(ref, (p = principalSet(graph, ref)));
    return p;
  };
  const out = { directGroups, pset };
  principalCache.set(world.memberships, out);
  return out;
}

/** Login roles of the users (in order), per users array and target naming. */
const loginCache = new WeakMap<readonly User[], Map<string, readonly string[]>>();
function loginRolesOf(users: readonly User[], target: TargetSpec): readonly string[] {
  let m = loginCache.get(users);
  if (m === undefined) loginCache.set(users, (m = new Map()));
  const key = `${target.userRoleTemplate}\u0000${JSON.stringify(target.userRoles)}`;
  let l = m.get(key);
  if (l === undefined) m.set(key, (l = users.map((u) => loginRole(target, u.name))));
  return l;
}

/**
 * Users that some guardrail treats differently from one of their direct groups, with the first such
 * guardrail. It depends on guardrails, memberships and users only (guardrails select principals, not
 * tags), so it is remembered per those arrays: a tag or grant change reuses it.
 */
const splitCache = new WeakMap<readonly Guardrail[], WeakMap<readonly Membership[], WeakMap<readonly User[], Map<string, ReadonlyMap<string, string>>>>>();
function guardrailSplitOf(world: PolicyWorld, catalog: string, principals: Principals): ReadonlyMap<string, string> {
  let a = splitCache.get(world.guardrails);
  if (a === undefined) splitCache.set(world.guardrails, (a = new WeakMap()));
  let b = a.get(world.memberships);
  if (b === undefined) a.set(world.memberships, (b = new WeakMap()));
  let c = b.get(world.users);
  if (c === undefined) b.set(world.users, (c = new Map()));
  const hit = c.get(catalog);
  if (hit !== undefined) return hit;
  const out = new Map<string, string>();
  const guardrails = world.guardrails.filter((g) => g.catalog === undefined || g.catalog === catalog);
  if (guardrails.length > 0) {
    for (const u of world.users) {
      const groups = principals.directGroups.get(u.name) ?? [];
      const uset = principals.pset(`user:${u.name}`);
      const g = guardrails.find((gr) => groups.some((grp) => guardrailApplies(gr, uset) !== guardrailApplies(gr, principals.pset(`group:${grp}`))));
      if (g !== undefined) out.set(u.name, g.name);
    }
  }
  c.set(catalog, out);
  return out;
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
  const ix = input.tables === undefined ? fullIndex(world, catalog) : indexCatalog(world, catalog, input.tables);
  const principals = principalsOf(world);
  const warnings: SyncWarning[] = [];
  const scoped = input.tables !== undefined;
  const scopeIdx = scoped ? [...(input.tables as ReadonlySet<string>)].map((k) => findKey(ix, k)).filter((i): i is number => i !== undefined).sort((a, b) => a - b) : null;
  // databases whose DESCRIBE (schema USAGE) is in question
  const scopeDbs = scopeIdx === null ? null : new Set(scopeIdx.map((t) => (ix.tables[t] as Table).database));

  // grants of this catalog by principal
  const grantsOf = new Map<PrincipalRef, Grant[]>();
  for (const g of world.grants) {
    if (g.resource.catalog !== catalog) continue;
    // a grant that has run out gives nothing: it must not keep its user's personal role alive
    if (g.notAfter !== undefined && Date.parse(g.notAfter) <= now) continue;
    const l = grantsOf.get(g.principal);
    if (l === undefined) grantsOf.set(g.principal, [g]);
    else l.push(g);
  }

  // ---- who needs a personal role
  const directGroups = principals.directGroups;
  const pset = principals.pset;
  const logins = loginRolesOf(world.users, target);
  const users = world.users.filter((u, i) => {
    const login = logins[i] as string;
    // Steward's prefix is the name space of the roles it creates: a login role in it would be (or
    // could become) a group or personal role, and GRANT r TO r fails every sync
    if (login.startsWith(target.rolePrefix)) {
      warnings.push({ code: 'LOGIN_ROLE_RESERVED', message: `login role \`${login}\` of user \`${u.name}\` starts with Steward's role prefix \`${target.rolePrefix}\`; the user is skipped (map it to another login role)` });
      return false;
    }
    if (input.loginRoles === undefined) return true;
    if (input.loginRoles.has(login)) return true;
    if ((directGroups.get(u.name) ?? []).length > 0 || grantsOf.has(`user:${u.name}`)) {
      warnings.push({ code: 'LOGIN_ROLE_MISSING', message: `login role \`${login}\` of user \`${u.name}\` does not exist in the warehouse; the user is skipped` });
    }
    return false;
  });
  const personal = new Map<string, string>();
  const guardrailSplit = guardrailSplitOf(world, catalog, principals);
  for (const u of users) {
    if (grantsOf.has(`user:${u.name}`)) {
      personal.set(u.name, 'holds grants of its own');
      continue;
    }
    const g = guardrailSplit.get(u.name);
    if (g !== undefined) personal.set(u.name, `guardrail \`${g}\` treats the user and its groups differently`);
  }

  // ---- roles
  const identity = Object.keys(target.tableMap).length === 0 && Object.keys(target.schemaMap).length === 0;
  const roles: RoleSpec[] = [];
  for (const g of world.groups) roles.push({ role: groupRole(target.rolePrefix, g.name), principal: `group:${g.name}`, pset: pset(`group:${g.name}`) });

  // what each role's grants can reach
  const heldBy = (pset: ReadonlySet<PrincipalRef>): Grant[] => [...pset].flatMap((p) => grantsOf.get(p) ?? []);
  const tagCache = new Map<Grant, number[]>();
  const covered = (g: Grant): readonly number[] => {
    const r = g.resource;
    switch (r.kind) {
      case 'catalog':
        return ix.tables.map((_, i) => i);
      case 'database':
        return ix.byDb.get(r.database) ?? [];
      case 'table':
      case 'columns':
      case 'filter': {
        const t = ix.find(r.database, r.table);
        return t < 0 ? [] : [t];
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
  /** Databases a grant can make DESCRIBE-able (cached per grant: group grants are held by many roles). */
  const dbCache = new Map<Grant, readonly string[]>();
  const grantDbs = (g: Grant): readonly string[] => {
    const r = g.resource;
    if (r.kind === 'catalog') return [...(scopeDbs ?? ix.dbTags.keys())];
    if (r.kind !== 'tag') return [r.database];
    let l = dbCache.get(g);
    if (l === undefined) {
      const byTags = new Set<string>();
      for (const d of dbMatches(ix, r.expression, scopeDbs)) if (scopeDbs === null || scopeDbs.has(d)) byTags.add(d);
      const out = [...byTags];
      // then the databases of the covered tables, in order, each once (marked by number)
      const mark = ix.marks.db;
      const epoch = nextEpoch(ix);
      for (const t of covered(g)) {
        const n = ix.dbOf[t] as number;
        if (mark[n] === epoch) continue;
        mark[n] = epoch;
        const d = ix.dbNames[n] as string;
        if (!byTags.has(d)) out.push(d);
      }
      dbCache.set(g, (l = out));
    }
    return l;
  };
  const describedDbs = (held: readonly Grant[]): Set<string> => {
    const out = new Set<string>();
    for (const g of held) for (const d of grantDbs(g)) out.add(d);
    return out;
  };

  /** `actions`: a mask of SELECT (1), INSERT (2), DELETE (4). */
  const projectionOf = (principal: PrincipalRef, t: number, actions: number): Projection => {
    const table = ix.tables[t] as Table;
    if (actions === 0) return NO_ACCESS;
    const resource = { level: 'table', catalog, database: table.database, table: table.name } as const;
    const select = (actions & 1) !== 0 ? engine.authorize({ principal, action: 'SELECT', resource, now }) : null;
    const ins = (actions & 2) !== 0 && engine.authorize({ principal, action: 'INSERT', resource, now }).decision === 'allow';
    const del = (actions & 4) !== 0 && engine.authorize({ principal, action: 'DELETE', resource, now }).decision === 'allow';
    return project(table, select, ins, del);
  };

  // the actions a role's grants carry on each table, accumulated by table number (0: none yet);
  // `touched` keeps the tables in the order their first grant reached them
  const acc = new Int32Array(ix.tables.length);
  const touched: number[] = [];
  const reach = (t: number, actions: number): void => {
    if (acc[t] === 0) touched.push(t);
    acc[t] = (acc[t] as number) | actions;
  };
  // tables granted to the role being projected (1), cleared after each role
  const granted = new Uint8Array(ix.tables.length);
  /** Projections of one principal: over its reachable tables, or over the scoped tables. */
  const projectionsOf = (principal: PrincipalRef, pset: ReadonlySet<PrincipalRef>): { proj: Projections; dbs: Set<string>; rls: number[] } => {
    const held = heldBy(pset);
    const proj: Projections = { ts: [], ps: [] };
    // tables where a row filter applies, in projection order
    const rls: number[] = [];
    touched.length = 0;
    for (const g of held) {
      let actions = 0;
      TABLE_ACTIONS.forEach((a, bit) => {
        if (carries(g, a) && (a === 'SELECT' || (g.resource.kind !== 'columns' && g.resource.kind !== 'filter'))) actions |= 1 << bit;
      });
      if (actions === 0) continue;
      if (scopeIdx !== null) {
        const cov = new Set(covered(g));
        for (const t of scopeIdx) if (cov.has(t)) reach(t, actions);
      } else {
        for (const t of covered(g)) reach(t, actions);
      }
    }
    // one decision per (decision class, actions): every table of a class gets the same projection
    const memo = new Map<number, Projection>();
    for (const t of touched) {
      const actions = acc[t] as number;
      acc[t] = 0;
      const key = (ix.classOf[t] as number) * 8 + actions;
      let p = memo.get(key);
      if (p === undefined) memo.set(key, (p = projectionOf(principal, t, actions)));
      if (hasAccess(p)) {
        proj.ts.push(t);
        proj.ps.push(p);
        granted[t] = 1;
        if (p.rowFilter !== null) rls.push(t);
      }
    }
    const dbs = new Set<string>();
    // a schema with a granted table gets USAGE anyway: ask DESCRIBE only about the others
    const hasTableIn = (d: string): boolean => identity && (ix.byDb.get(d) ?? []).some((t) => granted[t] === 1);
    for (const d of describedDbs(held)) {
      if ((scopeDbs !== null && !scopeDbs.has(d)) || hasTableIn(d)) continue;
      if (engine.authorize({ principal, action: 'DESCRIBE', resource: { level: 'database', catalog, database: d }, now }).decision === 'allow') dbs.add(d);
    }
    for (const t of proj.ts) granted[t] = 0;
    return { proj, dbs, rls };
  };

  const results = new Map<string, { spec: RoleSpec; proj: Projections; dbs: Set<string>; rls: readonly number[] }>();
  for (const spec of roles) results.set(spec.role, { spec, ...projectionsOf(spec.principal, spec.pset) });

  // row filters of two groups meeting on one table: compare the union with the user's own decisions
  const filtered = new Set<string>();
  for (const [role, r] of results) if (r.rls.length > 0) filtered.add(role);
  for (const u of users) {
    if (personal.has(u.name)) continue;
    const groups = directGroups.get(u.name) ?? [];
    if (groups.length < 2) continue;
    // only row filters can make the union differ from the user's own decision
    if (!groups.some((g) => filtered.has(groupRole(target.rolePrefix, g)))) continue;
    const perTable = new Map<number, Projection[]>();
    for (const g of groups) {
      const r = results.get(groupRole(target.rolePrefix, g));
      if (r === undefined) continue;
      for (let i = 0; i < r.proj.ts.length; i++) {
        const t = r.proj.ts[i] as number;
        const p = r.proj.ps[i] as Projection;
        const l = perTable.get(t);
        if (l === undefined) perTable.set(t, [p]);
        else l.push(p);
      }
    }
    for (const [t, list] of perTable) {
      if (list.length < 2 || !list.some((p) => p.rowFilter !== null)) continue;
      const mine = projectionOf(`user:${u.name}`, t, 7);
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
    const spec: RoleSpec = { role: personalRole(target.rolePrefix, name), principal: `user:${name}`, pset: pset(`user:${name}`) };
    roles.push(spec);
    results.set(spec.role, { spec, ...projectionsOf(spec.principal, spec.pset) });
    warnings.push({ code: 'PERSONAL_ROLE', message: `user \`${name}\` gets personal role \`${spec.role}\`: ${why}` });
  }

  const embedTables = embedAccess(input, logins, warnings, ix, (user, t) => projectionOf(`user:${user}`, t, 1));

  // ---- items
  // items in order with their keys; a key seen again replaces its item in place, as Map.set does
  const list: Item[] = [];
  const keys: string[] = [];
  const at = new Map<string, number>();
  const add = (it: Item): void => {
    const key = itemKey(it);
    const i = at.get(key);
    if (i === undefined) {
      at.set(key, list.length);
      list.push(it);
      keys.push(key);
    } else list[i] = it;
  };
  // Table and column privileges, the bulk of a plan, need no duplicate check when tables map 1:1:
  // a role's projections are per catalog table, hence per warehouse table, and no other add makes
  // a `table|` or `columns|` key. A mapping may send two catalog tables to one warehouse table.
  const addPrivilege = (it: Extract<Item, { k: 'table' | 'columns' }>): void => {
    if (!identity) return add(it);
    list.push(it);
    keys.push(itemKey(it));
  };
  const mapped = ix.tables.map((t): MappedTable => (identity ? { catalog, database: t.database, table: t.name, schema: t.database, name: t.name } : mapTable(target, catalog, t.database, t.name)));
  if (!scoped) {
    for (const r of roles) add({ k: 'role', role: r.role });
    for (const u of users) {
      const login = loginRole(target, u.name);
      if (personal.has(u.name)) add({ k: 'member', role: personalRole(target.rolePrefix, u.name), member: login });
      else for (const g of directGroups.get(u.name) ?? []) add({ k: 'member', role: groupRole(target.rolePrefix, g), member: login });
    }
  }
  // predicates and policy names repeat across the tables of a class: print and hash each once
  const sqlOf = new WeakMap<Predicate, string>();
  const policyNames = new Map<string, string>();
  const rlsTables = new Set<number>();
  for (const r of results.values()) for (const t of r.rls) rlsTables.add(t);
  // a dataset table gets row security for the embed role: every other role with access then needs its policies too
  for (const t of embedTables.keys()) rlsTables.add(t);
  for (const { spec, proj, dbs } of results.values()) {
    const role = spec.role;
    const schemas = new Set<string>();
    // a role's tables come database by database more often than not: skip the Set while the schema repeats
    let lastSchema: string | undefined;
    for (let i = 0; i < proj.ts.length; i++) {
      const t = proj.ts[i] as number;
      const p = proj.ps[i] as Projection;
      const m = mapped[t] as MappedTable;
      if (m.schema !== lastSchema) schemas.add((lastSchema = m.schema));
      if (p.narrowed.length > 0) {
        warnings.push({
          code: 'CELL_LEVEL_NARROWED',
          message: `\`${role}\` on \`${m.schema}.${m.name}\`: columns ${p.narrowed.map((c) => `\`${c}\``).join(', ')} are visible on only some rows in Steward and are not granted`,
        });
      }
      if (p.columns.length > 0) {
        if (p.allColumns) addPrivilege({ k: 'table', role, schema: m.schema, table: m.name, priv: 'SELECT' });
        else addPrivilege({ k: 'columns', role, schema: m.schema, table: m.name, priv: 'SELECT', columns: p.columns });
      }
      if (p.insert) addPrivilege({ k: 'table', role, schema: m.schema, table: m.name, priv: 'INSERT' });
      if (p.delete) addPrivilege({ k: 'table', role, schema: m.schema, table: m.name, priv: 'DELETE' });
      if (rlsTables.has(t)) {
        const policy = (cmd: 'SELECT' | 'INSERT' | 'DELETE', pred: Predicate): void => {
          let expr = sqlOf.get(pred);
          if (expr === undefined) sqlOf.set(pred, (expr = toSql(pred, 'postgres')));
          const nameKey = `${role}\u0000${cmd}\u0000${expr}`;
          let name = policyNames.get(nameKey);
          if (name === undefined) policyNames.set(nameKey, (name = policyName(target.rolePrefix, role, cmd, expr)));
          add({ k: 'policy', schema: m.schema, table: m.name, name, role, cmd, expr, pred });
        };
        if (p.columns.length > 0) for (const d of p.rowFilter === null ? [TRUE] : disjuncts(p.rowFilter)) policy('SELECT', d);
        if (p.insert) policy('INSERT', TRUE);
        if (p.delete) policy('DELETE', TRUE);
      }
    }
    for (const d of dbs) schemas.add(schemaOf(target, d));
    for (const s of schemas) add({ k: 'usage', role, schema: s });
  }
  for (const [t, access] of embedTables) for (const it of embedItems(target, mapped[t] as MappedTable, access)) add(it);
  for (const t of rlsTables) add({ k: 'rls', schema: (mapped[t] as MappedTable).schema, table: (mapped[t] as MappedTable).name });

  const inScope = scopeIdx === null ? mapped : scopeIdx.map((t) => mapped[t] as MappedTable);
  return withItems(list, keys, {
    tables: inScope,
    schemas: distinctSchemas(inScope),
    roles: roles.map((r) => r.role).sort(),
    personal,
    warnings,
    scope: scoped ? 'tables' : 'full',
    needsFull,
  });
}


/** What the embed role may read of one table: the columns every dataset's `runAs` reads, and one part per dataset. */
interface EmbedAccess {
  readonly columns: readonly string[];
  readonly allColumns: boolean;
  readonly parts: readonly EmbedPart[];
}

/**
 * The embed role's access, per table number in scope: each dashboard dataset
 * gives it what the dashboard's `runAs` user may SELECT there (a session never
 * widens what `runAs` reads), narrowed by the dataset's session-tag rule.
 * Several datasets on one table: their rows are ORed, their columns
 * intersected (the warehouse shows less than Steward, never more). Nothing
 * when the target has no embed role, the role is missing, or it is a user's
 * login role (that user's group memberships would widen it).
 */
function embedAccess(input: DesiredInput, logins: readonly string[], warnings: SyncWarning[], ix: Pick<CatalogIndex, 'find' | 'tables'>, projection: (user: string, t: number) => Projection): Map<number, EmbedAccess> {
  const out = new Map<number, EmbedAccess>();
  const role = input.target.embedRole;
  const datasets = (input.embeds ?? []).filter((d) => d.catalog === input.target.catalog);
  if (role === undefined || datasets.length === 0) return out;
  const skip = (message: string): Map<number, EmbedAccess> => {
    warnings.push({ code: 'EMBED_SKIPPED', message });
    return out;
  };
  if (logins.includes(role)) return skip(`embed role \`${role}\` is also a user's login role; no dataset is synced for it (give the application a role of its own)`);
  if (input.loginRoles !== undefined && !input.loginRoles.has(role)) return skip(`embed role \`${role}\` does not exist in the warehouse; no dataset is synced for it`);
  const acc = new Map<number, { cols: Set<string>; parts: EmbedPart[] }>();
  for (const d of datasets) {
    const t = ix.find(d.database, d.table);
    // a table-scoped run syncs only its tables
    if (t < 0) continue;
    const p = projection(d.runAs, t);
    const at = `dataset \`${d.dataset}\` of dashboard \`${d.dashboard}\``;
    if (p.columns.length === 0) {
      warnings.push({ code: 'EMBED_SKIPPED', message: `${at}: \`user:${d.runAs}\` may not read \`${d.catalog}.${d.database}.${d.table}\`, so the embed role gets nothing from it` });
      continue;
    }
    if (p.narrowed.length > 0) warnings.push({ code: 'CELL_LEVEL_NARROWED', message: `${at}: columns ${p.narrowed.map((c) => `\`${c}\``).join(', ')} are visible on only some rows in Steward and are not granted to \`${role}\`` });
    const e = acc.get(t);
    if (e === undefined) acc.set(t, { cols: new Set(p.columns), parts: [{ rule: d.rule, filter: p.rowFilter }] });
    else {
      for (const c of e.cols) if (!p.columns.includes(c)) e.cols.delete(c);
      e.parts.push({ rule: d.rule, filter: p.rowFilter });
    }
  }
  for (const [t, e] of acc) {
    const table = ix.tables[t] as Table;
    const columns = table.columns.map((c) => c.name).filter((c) => e.cols.has(c));
    if (columns.length === 0) {
      warnings.push({ code: 'EMBED_SKIPPED', message: `the datasets on \`${table.catalog}.${table.database}.${table.name}\` read no column in common; the embed role gets nothing there` });
      continue;
    }
    out.set(t, { columns, allColumns: columns.length === table.columns.length, parts: e.parts });
  }
  return out;
}

/**
 * The embed role's items on one table: USAGE, SELECT, and two SELECT policies
 * with the same USING (the datasets' rows under the session's tags): a
 * permissive one, which gives the role its rows, and a restrictive one, which
 * keeps any other permissive policy reaching the role (one `TO PUBLIC` made by
 * hand) from widening them. Both are named by a hash of the expression, so a
 * changed rule replaces both: the old pair is dropped before the new one is
 * created, and between the two the role sees nothing.
 */
function embedItems(target: TargetSpec, m: MappedTable, access: EmbedAccess): Item[] {
  const role = target.embedRole as string;
  const expr = embedUsing(access.parts);
  const on = { schema: m.schema, table: m.name };
  return [
    { k: 'usage', role, schema: m.schema },
    access.allColumns ? { k: 'table', role, ...on, priv: 'SELECT' } : { k: 'columns', role, ...on, priv: 'SELECT', columns: access.columns },
    { k: 'policy', ...on, name: policyName(target.rolePrefix, role, 'SELECT', expr), role, cmd: 'SELECT', expr },
    { k: 'policy', ...on, name: policyName(target.rolePrefix, role, 'tags', expr), role, cmd: 'SELECT', expr, restrictive: true },
  ];
}

/**
 * The state with `items` built from the list on first use. A function of its own, so that the
 * getter's closure holds the list and keys only, not everything desiredState computed on the way.
 */
function withItems(list: readonly Item[], keys: readonly string[], rest: Omit<DesiredState, 'items' | 'list' | 'keys'>): DesiredState {
  let items: Map<string, Item> | undefined;
  return {
    ...rest,
    list,
    keys,
    get items(): ReadonlyMap<string, Item> {
      if (items === undefined) {
        items = new Map();
        for (let i = 0; i < list.length; i++) items.set(keys[i] as string, list[i] as Item);
      }
      return items;
    },
  };
}

/** The distinct schemas of the tables, sorted. */
function distinctSchemas(tables: readonly MappedTable[]): string[] {
  const out = new Set<string>();
  let last: string | undefined;
  for (const m of tables) if (m.schema !== last) out.add((last = m.schema));
  return [...out].sort();
}

/** Full-catalog indexes, per world: a world is immutable, so one index serves every question about it. */
const indexes = new WeakMap<PolicyWorld, Map<string, CatalogIndex>>();
function fullIndex(world: PolicyWorld, catalog: string): CatalogIndex {
  let m = indexes.get(world);
  if (m === undefined) indexes.set(world, (m = new Map()));
  let ix = m.get(catalog);
  if (ix === undefined) m.set(catalog, (ix = indexCatalog(world, catalog)));
  return ix;
}

/** Tables (`database.table`) of the catalog whose effective tags, or one of whose columns' effective tags, match. */
export function tablesMatchingTags(world: PolicyWorld, catalog: string, expr: TagExpression): string[] {
  const ix = fullIndex(world, catalog);
  return tagMatches(ix, expr).map((t) => `${(ix.tables[t] as Table).database}.${(ix.tables[t] as Table).name}`);
}

/** Tables of the catalog by `database.table` keys (unknown keys are left out), without scanning the catalog. */
export function tablesOf(world: PolicyWorld, catalog: string, keys: Iterable<string>): Table[] {
  const view = catalogTables(world, catalog);
  const out: Table[] = [];
  for (const k of keys) {
    const i = findKey(view, k);
    if (i !== undefined) out.push(view.tables[i] as Table);
  }
  return out;
}

/** Effective tags of each table in scope and of each column with tags of its own, for `steward_config.resource_tags`. */
export function tagRows(world: PolicyWorld, target: TargetSpec, tables?: ReadonlySet<string>): { schema: string; table: string; column: string; key: string; value: string }[] {
  // a scoped sync indexes only its tables
  const ix = tables === undefined ? fullIndex(world, target.catalog) : indexCatalog(world, target.catalog, tables);
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
