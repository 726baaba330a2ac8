/**
 * The indexed engine: the same answers as the reference evaluator, computed
 * from indexes built once per world.
 *
 * Build interns every distinct effective-tag vector as a "signature" (most
 * columns share their table's, most tables their database's), so matching a
 * tag expression is a few integer compares; indexes named grants by resource;
 * and caches, per requesting principal, its principal set as a bitmap with the
 * guardrails that apply to it and the tag grants it holds, by action.
 * `authorize` then only reads typed arrays and writes the result object.
 */
import type { AccessHolder, ColumnAccess, Decision, EffectivePermission, Evaluator, AuthorizeRequest, Reason } from './decision.js';
import type { Grant, Permission, PolicyWorld, PrincipalRef, ResourceRef, Table, TagExpression } from './model.js';
import { ACTIONS_AT, GRANTABLE_ON, PERMISSIONS, resourceToString } from './model.js';
import type { Predicate } from './predicate.js';
import { FALSE, toSql } from './predicate.js';
import { compareText } from './principals.js';
import { effectiveEntry, expiryOf, grantReason, guardrailReason, liftedReason, reasonText, selectColumns } from './reference-evaluator.js';

// ------------------------------------------------------------------ constants

const ACTION_INDEX: Readonly<Record<Permission, number>> = {
  DESCRIBE: 0,
  SELECT: 1,
  INSERT: 2,
  DELETE: 3,
  ALTER: 4,
  DROP: 5,
  CREATE_TABLE: 6,
};
const N_ACTIONS = 7;
const I_DESCRIBE = 0;
const I_SELECT = 1;

const LEVEL_CATALOG = 0;
const LEVEL_DATABASE = 1;
const LEVEL_TABLE = 2;
const LEVEL_COLUMN = 3;

const KIND_CATALOG = 0;
const KIND_DATABASE = 1;
const KIND_TABLE = 2;
const KIND_COLUMNS = 3;
const KIND_FILTER = 4;
const KIND_TAG = 5;
const KIND_OF: Readonly<Record<Grant['resource']['kind'], number>> = {
  catalog: KIND_CATALOG,
  database: KIND_DATABASE,
  table: KIND_TABLE,
  columns: KIND_COLUMNS,
  filter: KIND_FILTER,
  tag: KIND_TAG,
};

/** Outcome of one internal decision. */
const ALLOW = 0;
const DENY_GUARDRAIL = 1;
const DENY_NO_GRANT = 2;
type Status = typeof ALLOW | typeof DENY_GUARDRAIL | typeof DENY_NO_GRANT;

const NONE: readonly never[] = Object.freeze([]);

const TABLE_STRIDE = 4;
const TI_SIG = 0;
const TI_COL_BASE = 1;
const TI_N_COLS = 2;
const TI_FLAGS = 3;
const HAS_TABLE_GRANTS = 1;
const HAS_COLUMNS_GRANTS = 2;
const HAS_FILTER_GRANTS = 4;

export interface EngineStats {
  readonly buildMs: number;
  readonly catalogs: number;
  readonly databases: number;
  readonly tables: number;
  readonly columns: number;
  readonly users: number;
  readonly groups: number;
  readonly grants: number;
  readonly tagGrants: number;
  readonly filters: number;
  readonly guardrails: number;
  readonly tagKeys: number;
  /** Distinct effective-tag vectors among all databases, tables and columns. */
  readonly tagSignatures: number;
  /** Principal sets computed so far (they are cached lazily). */
  readonly principalSetsCached: number;
}

export interface Engine extends Evaluator {
  readonly stats: EngineStats;
  /** The world the engine was built from (frozen snapshot semantics: do not mutate). */
  readonly world: PolicyWorld;
  /** The principal set of a known principal, or null. */
  principalSetOf(principal: PrincipalRef): ReadonlySet<PrincipalRef> | null;
}

// ------------------------------------------------------------ compiled tags

/** A tag expression over interned ids: for each key index, the allowed value ids. */
interface CompiledExpr {
  /** A key or all values unknown to the world: nothing can match. */
  readonly never: boolean;
  readonly empty: boolean;
  readonly keys: Int32Array;
  readonly starts: Int32Array;
  readonly vals: Int32Array;
}

/**
 * The tag grants of one principal set for one action in one catalog, indexed by
 * the value of each expression's first key: a signature only needs to be
 * matched against grants whose first key it carries with an allowed value.
 */
interface TagProgram {
  /** Grants with the empty expression: they match every signature. */
  readonly always: Int32Array;
  /** The distinct first keys. */
  readonly pivotKeys: Int32Array;
  /** key=value id -> grants whose first key allows that value. */
  readonly byValue: Map<number, Int32Array>;
}

interface PSet {
  readonly bits: Uint8Array;
  readonly members: Int32Array;
  /** By action index: the guardrails that apply to this set and deny that action, as a bitmask of W words per action. */
  readonly guardMask: Int32Array;
  /** By action index: tag grants held through the set that carry the action. */
  readonly tagBy: readonly Int32Array[];
  /** Every grant held through the set. */
  readonly held: Int32Array;
  /** Held grants with a `notAfter`: the only ones that can explain a deny as GRANT_EXPIRED. */
  readonly timed: Int32Array;
  /** Lazily built, by `action * catalogs + catalog`. */
  readonly tagPrograms: (TagProgram | undefined)[];
  /**
   * The latest expiry among held grants that lift a guardrail. While `now` is
   * before it, decisions take the per-source path; otherwise no lift can
   * apply and the fast path is exact.
   */
  readonly liftUntil: number;
  /** The distinct finite expiries of held grants, sorted: decisions only change when `now` crosses one. */
  readonly expiries: Float64Array;
  /**
   * Table and column decisions already made, by bare table name. Keyed by the
   * name the caller passes, so a remembered decision costs one lookup: no
   * catalog, database or table resolution.
   */
  readonly memo: Map<string, TableMemo>;
  /** The window of `now` (between two consecutive expiries of held grants) in which every remembered decision holds. */
  memoLo: number;
  memoHi: number;
  memoSize: number;
}

/** One table's remembered decisions: slot `action` for the table, `N_ACTIONS * (1 + column) + action` for a column. */
interface TableMemo {
  readonly catalog: string;
  readonly database: string;
  readonly table: number;
  readonly slots: (Decision | undefined)[];
  /** The next table with the same bare name, in another database. */
  readonly next: TableMemo | undefined;
}

/** Per principal set; past this many entries its memo starts over (bounds memory on wide scans). */
const MEMO_LIMIT = 200_000;

interface Index {
  readonly world: PolicyWorld;
  // catalog / database / table / column
  readonly catByName: Map<string, number>;
  readonly catNames: string[];
  readonly dbsOfCat: number[][];
  readonly dbByName: Map<string, number>[];
  readonly dbCat: Int32Array;
  readonly dbNames: string[];
  readonly dbKey: string[];
  readonly tablesOfDb: number[][];
  readonly tableByName: Map<string, number>[];
  /**
   * Table id by bare name, then `tableSameName[id]` for the next table with
   * that name (-1 ends). Resolving a table is then one map lookup and two
   * string comparisons instead of three lookups: the lookups, not the
   * decision, dominate a memoized authorize on large catalogs.
   */
  readonly tableByBare: Map<string, number>;
  readonly tableSameName: Int32Array;
  readonly tableDb: Int32Array;
  readonly tableCat: Int32Array;
  readonly tableKey: string[];
  readonly tables: Table[];
  readonly colBase: Int32Array;
  /**
   * Per table, one cache line of what every decision on it reads, at
   * `t * TABLE_STRIDE`: signature, first column id, column count, and which
   * per-table grant lists exist (most tables have none, so those lists are
   * not even looked at).
   */
  readonly tableInfo: Int32Array;
  readonly colNames: string[][];
  readonly colMaps: (Map<string, number> | undefined)[];
  // tags
  readonly nKeys: number;
  readonly keyIndex: Map<string, number>;
  readonly kvIndex: Map<string, number>[];
  readonly sigVals: Int32Array;
  readonly nSigs: number;
  readonly dbSig: Int32Array;
  readonly tableSig: Int32Array;
  readonly colSig: Int32Array;
  readonly kvSigs: number[][];
  readonly sigDbs: number[][];
  readonly sigTables: number[][];
  readonly sigColTables: number[][];
  // principals
  readonly pidByRef: Map<string, number>;
  readonly pRef: PrincipalRef[];
  readonly pExists: Uint8Array;
  readonly pParents: number[][];
  readonly pChildren: number[][];
  readonly pIsUser: Uint8Array;
  readonly psets: (PSet | undefined)[];
  /** The principal sets already built, by the principal text callers pass: one lookup on the hot path. */
  readonly psetByRef: Map<string, PSet>;
  // grants
  readonly grants: readonly Grant[];
  readonly gPid: Int32Array;
  readonly gKind: Uint8Array;
  readonly gPerm: Int32Array;
  readonly gGrantable: Int32Array;
  readonly gExpiry: Float64Array;
  readonly gRank: Int32Array;
  readonly gCat: Int32Array;
  readonly gDb: Int32Array;
  readonly gTable: Int32Array;
  readonly gColMask: (Uint8Array | undefined)[];
  readonly gFilter: Int32Array;
  readonly gExpr: (CompiledExpr | undefined)[];
  readonly gReason: Reason[];
  /** Per grant: the guardrails it lifts (W words), only for time-bound grants lifting a liftable guardrail. */
  readonly gLift: (Int32Array | undefined)[];
  readonly byCatalog: number[][];
  readonly byDb: number[][];
  readonly byTable: (number[] | undefined)[];
  readonly colGrantsByTable: (number[] | undefined)[];
  readonly filterGrantsByTable: (number[] | undefined)[];
  readonly tagGrants: number[];
  // filters
  readonly fName: string[];
  readonly fColMask: Uint8Array[];
  readonly fPred: (Predicate | null)[];
  readonly fSql: (string | null)[];
  // guardrails
  readonly grName: string[];
  readonly grRank: Int32Array;
  readonly grActions: Int32Array;
  readonly grCat: Int32Array;
  readonly grEmpty: Uint8Array;
  readonly grSig: Uint8Array;
  readonly grPrincipals: (Int32Array | null)[];
  readonly grExcept: Int32Array[];
  readonly grReason: Reason[];
  /** Guardrail bitmasks are W 32-bit words. */
  readonly W: number;
  /** Per signature: the guardrails whose expression matches it (the empty expression matches every signature, including 0, a catalog's). */
  readonly sigGuard: Int32Array;
  /** Per catalog: the guardrails in scope there. */
  readonly scopeGuard: Int32Array;
  /** Guardrail indices in name order, for reporting. */
  readonly grByRank: Int32Array;
  // one-element answers, shared because a single matched grant is the common case
  readonly gIdList: (readonly string[])[];
  readonly gReasonList: (readonly Reason[])[];
  // lazily built all-rows column answers per table, by visible-column bitmask
  readonly fullColumns: (Map<number, readonly ColumnAccess[]> | undefined)[];
  readonly scratch: Scratch;
}

/** Reusable buffers, so the hot path does not allocate. */
interface Scratch {
  readonly grantMark: Int32Array;
  grantEpoch: number;
  readonly matched: number[];
  /** The guardrails denying the last request (W words). */
  readonly denied: Int32Array;
  /** The guardrails that removed a column in the last SELECT (W words). */
  readonly removed: Int32Array;
  readonly wide: Int32Array;
  readonly colGrants: Int32Array;
  readonly filterGrants: Int32Array;
  nFilterGrants: number;
  readonly tagAtTable: Int32Array;
  readonly tagAtCol: Int32Array;
  readonly visible: Uint8Array;
  readonly allRows: Uint8Array;
  /** Lifts used by the last decision, as flat (guardrail, grant) pairs. */
  readonly lifted: number[];
}

// ------------------------------------------------------------------- build

function pushAt(lists: number[][], at: number, value: number): void {
  const l = lists[at];
  if (l === undefined) lists[at] = [value];
  else l.push(value);
}

/** Sets bit `bit` of the bitmask starting at `base`. */
function setBit(words: Int32Array, base: number, bit: number): void {
  const i = base + (bit >>> 5);
  words[i] = (words[i] as number) | (1 << (bit & 31));
}

function emptyLists(n: number): number[][] {
  return Array.from({ length: n }, () => []);
}

function permMask(perms: readonly Permission[], allowed: readonly Permission[]): number {
  let m = 0;
  for (const p of perms) {
    const i = ACTION_INDEX[p];
    if (i !== undefined && allowed.includes(p)) m |= 1 << i;
  }
  return m;
}

function columnIndex(ix: Index, t: number, name: string): number {
  const names = ix.colNames[t] as string[];
  if (names.length <= 16) return names.indexOf(name);
  let map = ix.colMaps[t];
  if (map === undefined) {
    map = new Map();
    names.forEach((n, i) => {
      if (!map!.has(n)) map!.set(n, i);
    });
    ix.colMaps[t] = map;
  }
  return map.get(name) ?? -1;
}

function buildIndex(world: PolicyWorld): Index {
  // ---- containers
  const catByName = new Map<string, number>();
  const catNames: string[] = [];
  for (const c of world.catalogs) {
    if (catByName.has(c.name)) continue;
    catByName.set(c.name, catNames.length);
    catNames.push(c.name);
  }
  const dbsOfCat = emptyLists(catNames.length);
  const dbByName: Map<string, number>[] = catNames.map(() => new Map());
  const dbCatL: number[] = [];
  const dbNames: string[] = [];
  const dbKey: string[] = [];
  for (const d of world.databases) {
    const c = catByName.get(d.catalog);
    if (c === undefined || (dbByName[c] as Map<string, number>).has(d.name)) continue;
    const id = dbNames.length;
    (dbByName[c] as Map<string, number>).set(d.name, id);
    pushAt(dbsOfCat, c, id);
    dbCatL.push(c);
    dbNames.push(d.name);
    dbKey.push(`${d.catalog}.${d.name}`);
  }
  const tablesOfDb = emptyLists(dbNames.length);
  const tableByName: Map<string, number>[] = dbNames.map(() => new Map());
  const tableDbL: number[] = [];
  const tableCatL: number[] = [];
  const tableKey: string[] = [];
  const tableObjs: Table[] = [];
  const colNames: string[][] = [];
  const colBaseL: number[] = [];
  let nCols = 0;
  for (const t of world.tables) {
    const c = catByName.get(t.catalog);
    const d = c === undefined ? undefined : dbByName[c]?.get(t.database);
    if (c === undefined || d === undefined || (tableByName[d] as Map<string, number>).has(t.name)) continue;
    const id = tableKey.length;
    (tableByName[d] as Map<string, number>).set(t.name, id);
    pushAt(tablesOfDb, d, id);
    tableDbL.push(d);
    tableCatL.push(c);
    tableKey.push(`${t.catalog}.${t.database}.${t.name}`);
    tableObjs.push(t);
    colNames.push(t.columns.map((col) => col.name));
    colBaseL.push(nCols);
    nCols += t.columns.length;
  }
  const nTables = tableKey.length;
  const tableByBare = new Map<string, number>();
  const tableSameName = new Int32Array(nTables).fill(-1);
  for (let id = nTables - 1; id >= 0; id--) {
    const bare = (tableObjs[id] as Table).name;
    const next = tableByBare.get(bare);
    if (next !== undefined) tableSameName[id] = next;
    tableByBare.set(bare, id);
  }
  const partial = {
    catByName,
    dbByName,
    tableByName,
    colNames,
    colMaps: new Array<Map<string, number> | undefined>(nTables),
  };
  const findDb = (catalog: string, database: string): number => {
    const c = catByName.get(catalog);
    return c === undefined ? -1 : (dbByName[c]?.get(database) ?? -1);
  };
  const findTable = (catalog: string, database: string, table: string): number => {
    const d = findDb(catalog, database);
    return d < 0 ? -1 : (tableByName[d]?.get(table) ?? -1);
  };

  // ---- tags: intern keys and key=value pairs seen in assignments
  const keyIndex = new Map<string, number>();
  const kvIndex: Map<string, number>[] = [];
  let nKv = 0;
  for (const a of world.tagAssignments) {
    let k = keyIndex.get(a.key);
    if (k === undefined) {
      k = keyIndex.size;
      keyIndex.set(a.key, k);
      kvIndex.push(new Map());
    }
    const vals = kvIndex[k] as Map<string, number>;
    if (!vals.has(a.value)) vals.set(a.value, nKv++);
  }
  const nKeys = keyIndex.size;
  // own assignments per resource; the first assignment of a key wins (as in tags.ts)
  const dbOwn = new Map<number, number[]>();
  const tableOwn = new Map<number, number[]>();
  const colOwn = new Map<number, number[]>();
  const addOwn = (map: Map<number, number[]>, id: number, k: number, kv: number): void => {
    const l = map.get(id);
    if (l === undefined) map.set(id, [k, kv]);
    else {
      for (let i = 0; i < l.length; i += 2) if (l[i] === k) return;
      l.push(k, kv);
    }
  };
  const tmpIx = partial as unknown as Index;
  for (const a of world.tagAssignments) {
    const k = keyIndex.get(a.key) as number;
    const kv = (kvIndex[k] as Map<string, number>).get(a.value) as number;
    const r = a.resource;
    switch (r.level) {
      case 'database': {
        const d = findDb(r.catalog, r.database);
        if (d >= 0) addOwn(dbOwn, d, k, kv);
        break;
      }
      case 'table': {
        const t = findTable(r.catalog, r.database, r.table);
        if (t >= 0) addOwn(tableOwn, t, k, kv);
        break;
      }
      case 'column': {
        const t = findTable(r.catalog, r.database, r.table);
        const c = t < 0 ? -1 : columnIndex(tmpIx, t, r.column);
        if (c >= 0) addOwn(colOwn, (colBaseL[t] as number) + c, k, kv);
        break;
      }
      default: {
        const never: never = r;
        return never;
      }
    }
  }
  // signatures: sig 0 is "no tags"
  const sigByText = new Map<string, number>();
  const sigValsL: number[] = [];
  const internVec = (vec: Int32Array): number => {
    const text = vec.join(',');
    let s = sigByText.get(text);
    if (s === undefined) {
      s = sigByText.size;
      sigByText.set(text, s);
      for (const v of vec) sigValsL.push(v);
    }
    return s;
  };
  const base = new Int32Array(nKeys).fill(-1);
  internVec(base);
  const derive = (parentSig: number, own: number[]): number => {
    const vec = Int32Array.from(sigValsL.slice(parentSig * nKeys, parentSig * nKeys + nKeys));
    for (let i = 0; i < own.length; i += 2) vec[own[i] as number] = own[i + 1] as number;
    return internVec(vec);
  };
  const dbSig = new Int32Array(dbNames.length);
  for (const [d, own] of dbOwn) dbSig[d] = derive(0, own);
  const tableSig = new Int32Array(nTables);
  for (let t = 0; t < nTables; t++) {
    const own = tableOwn.get(t);
    tableSig[t] = own === undefined ? (dbSig[tableDbL[t] as number] as number) : derive(dbSig[tableDbL[t] as number] as number, own);
  }
  const colSig = new Int32Array(nCols);
  for (let t = 0; t < nTables; t++) colSig.fill(tableSig[t] as number, colBaseL[t], (colBaseL[t] as number) + (colNames[t] as string[]).length);
  const colTable = new Int32Array(nCols);
  for (let t = 0; t < nTables; t++) colTable.fill(t, colBaseL[t], (colBaseL[t] as number) + (colNames[t] as string[]).length);
  for (const [col, own] of colOwn) colSig[col] = derive(tableSig[colTable[col] as number] as number, own);
  const nSigs = sigByText.size;
  const sigVals = Int32Array.from(sigValsL);
  // inverted indexes: key=value -> signatures -> resources
  const kvSigs = emptyLists(nKv);
  for (let s = 0; s < nSigs; s++) {
    for (let k = 0; k < nKeys; k++) {
      const v = sigVals[s * nKeys + k] as number;
      if (v >= 0) pushAt(kvSigs, v, s);
    }
  }
  const sigDbs = emptyLists(nSigs);
  dbSig.forEach((s, d) => pushAt(sigDbs, s, d));
  const sigTables = emptyLists(nSigs);
  tableSig.forEach((s, t) => pushAt(sigTables, s, t));
  const sigColTables = emptyLists(nSigs);
  for (const col of colOwn.keys()) {
    const s = colSig[col] as number;
    const t = colTable[col] as number;
    const l = sigColTables[s] as number[];
    if (l[l.length - 1] !== t && !l.includes(t)) l.push(t);
  }

  const compile = (expr: TagExpression): CompiledExpr => {
    const keys: number[] = [];
    const starts: number[] = [0];
    const vals: number[] = [];
    let never = false;
    for (const key of Object.keys(expr)) {
      const k = keyIndex.get(key);
      if (k === undefined) {
        never = true;
        continue;
      }
      let found = 0;
      for (const v of expr[key] ?? []) {
        const id = (kvIndex[k] as Map<string, number>).get(v);
        if (id !== undefined) {
          vals.push(id);
          found++;
        }
      }
      if (found === 0) never = true;
      keys.push(k);
      starts.push(vals.length);
    }
    return {
      never,
      empty: Object.keys(expr).length === 0,
      keys: Int32Array.from(keys),
      starts: Int32Array.from(starts),
      vals: Int32Array.from(vals),
    };
  };

  // ---- principals: every ref mentioned anywhere gets an id, existing or not
  const pidByRef = new Map<string, number>();
  const pRef: PrincipalRef[] = [];
  const pExistsL: number[] = [];
  const pIsUserL: number[] = [];
  const pid = (ref: PrincipalRef): number => {
    let id = pidByRef.get(ref);
    if (id === undefined) {
      id = pRef.length;
      pidByRef.set(ref, id);
      pRef.push(ref);
      pExistsL.push(0);
      pIsUserL.push(ref.startsWith('user:') ? 1 : 0);
    }
    return id;
  };
  for (const u of world.users) pExistsL[pid(`user:${u.name}`)] = 1;
  for (const g of world.groups) pExistsL[pid(`group:${g.name}`)] = 1;
  const edges: [number, number][] = world.memberships.map((m) => [pid(m.member), pid(`group:${m.group}`)]);
  for (const g of world.grants) pid(g.principal);
  for (const gr of world.guardrails) {
    for (const p of gr.principals ?? []) pid(p);
    for (const p of gr.except ?? []) pid(p);
  }
  const nP = pRef.length;
  const pParents = emptyLists(nP);
  const pChildren = emptyLists(nP);
  for (const [member, group] of edges) {
    pushAt(pParents, member, group);
    pushAt(pChildren, group, member);
  }

  // ---- filters
  const filterByKey = new Map<string, number>();
  const fName: string[] = [];
  const fColMask: Uint8Array[] = [];
  const fPred: (Predicate | null)[] = [];
  const fSql: (string | null)[] = [];
  for (const f of world.filters) {
    const t = findTable(f.catalog, f.database, f.table);
    if (t < 0) continue;
    const key = `${t}/${f.name}`;
    if (filterByKey.has(key)) continue;
    filterByKey.set(key, fName.length);
    fName.push(f.name);
    fColMask.push(maskOf(colNames[t] as string[], selectColumns(tableObjs[t] as Table, f.columns, f.excludedColumns, 'all')));
    fPred.push(f.predicate);
    fSql.push(f.predicate === null ? null : toSql(f.predicate));
  }

  // ---- grants
  const grants = world.grants;
  const nG = grants.length;
  const gPid = new Int32Array(nG);
  const gKind = new Uint8Array(nG);
  const gPerm = new Int32Array(nG);
  const gGrantable = new Int32Array(nG);
  const gExpiry = new Float64Array(nG);
  const gRank = new Int32Array(nG);
  const gCat = new Int32Array(nG).fill(-1);
  const gDb = new Int32Array(nG).fill(-1);
  const gTable = new Int32Array(nG).fill(-1);
  const gColMask: (Uint8Array | undefined)[] = new Array(nG);
  const gFilter = new Int32Array(nG).fill(-1);
  const gExpr: (CompiledExpr | undefined)[] = new Array(nG);
  const gReason: Reason[] = new Array(nG);
  const byCatalog = emptyLists(catNames.length);
  const byDb = emptyLists(dbNames.length);
  const byTable: (number[] | undefined)[] = new Array(nTables);
  const colGrantsByTable: (number[] | undefined)[] = new Array(nTables);
  const filterGrantsByTable: (number[] | undefined)[] = new Array(nTables);
  const tagGrants: number[] = [];
  [...grants.keys()].sort((a, b) => compareText((grants[a] as Grant).id, (grants[b] as Grant).id)).forEach((g, rank) => (gRank[g] = rank));
  grants.forEach((g, i) => {
    const r = g.resource;
    gPid[i] = pid(g.principal);
    gKind[i] = KIND_OF[r.kind];
    gPerm[i] = permMask(g.permissions, GRANTABLE_ON[r.kind]);
    gGrantable[i] = permMask(g.grantable, GRANTABLE_ON[r.kind]) & (gPerm[i] as number);
    gExpiry[i] = expiryOf(g);
    gReason[i] = Object.freeze(grantReason(g));
    const c = catByName.get(r.catalog) ?? -1;
    gCat[i] = c;
    switch (r.kind) {
      case 'catalog':
        if (c >= 0) pushAt(byCatalog, c, i);
        break;
      case 'database': {
        const d = findDb(r.catalog, r.database);
        gDb[i] = d;
        if (d >= 0) pushAt(byDb, d, i);
        break;
      }
      case 'table': {
        const t = findTable(r.catalog, r.database, r.table);
        gTable[i] = t;
        if (t >= 0) (byTable[t] ??= []).push(i);
        break;
      }
      case 'columns': {
        const t = findTable(r.catalog, r.database, r.table);
        gTable[i] = t;
        if (t < 0) break;
        gColMask[i] = maskOf(colNames[t] as string[], selectColumns(tableObjs[t] as Table, r.columns, r.excludedColumns, 'none'));
        (colGrantsByTable[t] ??= []).push(i);
        break;
      }
      case 'filter': {
        const t = findTable(r.catalog, r.database, r.table);
        gTable[i] = t;
        const f = t < 0 ? undefined : filterByKey.get(`${t}/${r.filter}`);
        if (f === undefined) break;
        gFilter[i] = f;
        (filterGrantsByTable[t] ??= []).push(i);
        break;
      }
      case 'tag':
        gExpr[i] = compile(r.expression);
        if (c >= 0) tagGrants.push(i);
        break;
      default: {
        const never: never = r;
        return never;
      }
    }
  });

  // ---- guardrails
  const nGr = world.guardrails.length;
  const grName = world.guardrails.map((g) => g.name);
  const grRank = new Int32Array(nGr);
  [...grName.keys()].sort((a, b) => compareText(grName[a] as string, grName[b] as string)).forEach((g, rank) => (grRank[g] = rank));
  const grActions = new Int32Array(nGr);
  const grCat = new Int32Array(nGr);
  const grEmpty = new Uint8Array(nGr);
  const grSig = new Uint8Array(nGr * nSigs);
  const grPrincipals: (Int32Array | null)[] = [];
  const grExcept: Int32Array[] = [];
  const grReason: Reason[] = [];
  world.guardrails.forEach((gr, i) => {
    grActions[i] = permMask(gr.actions, PERMISSIONS);
    // -1: every catalog; -2: a catalog the world does not have, so nothing matches
    grCat[i] = gr.catalog === undefined ? -1 : (catByName.get(gr.catalog) ?? -2);
    const ce = compile(gr.resources);
    grEmpty[i] = ce.empty ? 1 : 0;
    for (let s = 0; s < nSigs; s++) grSig[i * nSigs + s] = matchSig(ce, sigVals, nKeys, s) ? 1 : 0;
    // an empty `principals` list is read as omitted: a deny rule should fail towards denying
    grPrincipals.push(gr.principals === undefined || gr.principals.length === 0 ? null : Int32Array.from(gr.principals.map(pid)));
    grExcept.push(Int32Array.from((gr.except ?? []).map(pid)));
    grReason.push(Object.freeze(guardrailReason(gr.name)));
  });

  const tableInfo = new Int32Array(nTables * TABLE_STRIDE);
  for (let t = 0; t < nTables; t++) {
    const at = t * TABLE_STRIDE;
    tableInfo[at + TI_SIG] = tableSig[t] as number;
    tableInfo[at + TI_COL_BASE] = colBaseL[t] as number;
    tableInfo[at + TI_N_COLS] = (colNames[t] as string[]).length;
    tableInfo[at + TI_FLAGS] =
      (byTable[t] === undefined ? 0 : HAS_TABLE_GRANTS) |
      (colGrantsByTable[t] === undefined ? 0 : HAS_COLUMNS_GRANTS) |
      (filterGrantsByTable[t] === undefined ? 0 : HAS_FILTER_GRANTS);
  }
  const W = Math.max(1, Math.ceil(nGr / 32));
  const sigGuard = new Int32Array(nSigs * W);
  for (let g = 0; g < nGr; g++) {
    for (let sg = 0; sg < nSigs; sg++) if (grSig[g * nSigs + sg] === 1) setBit(sigGuard, sg * W, g);
  }
  const scopeGuard = new Int32Array(catNames.length * W);
  for (let g = 0; g < nGr; g++) {
    for (let c = 0; c < catNames.length; c++) if (grCat[g] === -1 || grCat[g] === c) setBit(scopeGuard, c * W, g);
  }
  const grByRank = new Int32Array(nGr);
  grRank.forEach((rank, g) => (grByRank[rank] = g));
  const gLift: (Int32Array | undefined)[] = new Array(nG);
  grants.forEach((g, i) => {
    if (g.liftsGuardrails === undefined || g.liftsGuardrails.length === 0 || !Number.isFinite(gExpiry[i] as number)) return;
    const mask = new Int32Array(W);
    let any = false;
    world.guardrails.forEach((gr, j) => {
      if (gr.liftable === true && (g.liftsGuardrails as readonly string[]).includes(gr.name)) {
        setBit(mask, 0, j);
        any = true;
      }
    });
    if (any) gLift[i] = mask;
  });
  const maxCols = colNames.reduce((m, c) => Math.max(m, c.length), 0);
  const buffer = (): Int32Array => new Int32Array(nG + 1);
  return {
    world,
    catByName,
    catNames,
    dbsOfCat,
    dbByName,
    dbCat: Int32Array.from(dbCatL),
    dbNames,
    dbKey,
    tablesOfDb,
    tableByName,
    tableByBare,
    tableSameName,
    tableDb: Int32Array.from(tableDbL),
    tableCat: Int32Array.from(tableCatL),
    tableKey,
    tables: tableObjs,
    colBase: Int32Array.from(colBaseL),
    tableInfo,
    colNames,
    colMaps: partial.colMaps,
    nKeys,
    keyIndex,
    kvIndex,
    sigVals,
    nSigs,
    dbSig,
    tableSig,
    colSig,
    kvSigs,
    sigDbs,
    sigTables,
    sigColTables,
    pidByRef,
    pRef,
    pExists: Uint8Array.from(pExistsL),
    pParents,
    pChildren,
    pIsUser: Uint8Array.from(pIsUserL),
    psets: new Array<PSet | undefined>(nP),
    psetByRef: new Map(),
    grants,
    gPid,
    gKind,
    gPerm,
    gGrantable,
    gExpiry,
    gRank,
    gCat,
    gDb,
    gTable,
    gColMask,
    gFilter,
    gExpr,
    gReason,
    gLift,
    byCatalog,
    byDb,
    byTable,
    colGrantsByTable,
    filterGrantsByTable,
    tagGrants,
    fName,
    fColMask,
    fPred,
    fSql,
    grName,
    grRank,
    grActions,
    grCat,
    grEmpty,
    grSig,
    grPrincipals,
    grExcept,
    grReason,
    W,
    sigGuard,
    scopeGuard,
    grByRank,
    gIdList: grants.map((g) => Object.freeze([g.id])),
    gReasonList: gReason.map((r) => Object.freeze([r])),
    fullColumns: new Array<Map<number, readonly ColumnAccess[]> | undefined>(nTables),
    scratch: {
      grantMark: new Int32Array(nG),
      grantEpoch: 0,
      matched: [],
      denied: new Int32Array(W),
      removed: new Int32Array(W),
      wide: buffer(),
      colGrants: buffer(),
      filterGrants: buffer(),
      nFilterGrants: 0,
      tagAtTable: buffer(),
      tagAtCol: buffer(),
      visible: new Uint8Array(maxCols),
      allRows: new Uint8Array(maxCols),
      lifted: [],
    },
  };
}

function maskOf(cols: readonly string[], selected: readonly { readonly name: string }[]): Uint8Array {
  const mask = new Uint8Array(cols.length);
  // by name, so duplicate column names (an invalid world) behave as in the reference
  for (const c of selected) cols.forEach((n, i) => {
    if (n === c.name) mask[i] = 1;
  });
  return mask;
}

function matchSig(ce: CompiledExpr, sigVals: Int32Array, nKeys: number, sig: number): boolean {
  if (ce.never) return false;
  const base = sig * nKeys;
  const keys = ce.keys;
  for (let i = 0; i < keys.length; i++) {
    const v = sigVals[base + (keys[i] as number)] as number;
    if (v < 0) return false;
    let ok = false;
    for (let j = ce.starts[i] as number, end = ce.starts[i + 1] as number; j < end; j++) {
      if (ce.vals[j] === v) {
        ok = true;
        break;
      }
    }
    if (!ok) return false;
  }
  return true;
}

// ------------------------------------------------------------ principal sets

function psetOf(ix: Index, pid: number): PSet {
  const cached = ix.psets[pid];
  if (cached !== undefined) return cached;
  const bits = new Uint8Array(ix.pRef.length);
  const members: number[] = [pid];
  bits[pid] = 1;
  for (let i = 0; i < members.length; i++) {
    for (const parent of ix.pParents[members[i] as number] as number[]) {
      if (bits[parent] === 1) continue;
      bits[parent] = 1;
      members.push(parent);
    }
  }
  const W = ix.W;
  const guardMask = new Int32Array(N_ACTIONS * W);
  for (let g = 0; g < ix.grName.length; g++) {
    const inc = ix.grPrincipals[g];
    const included = inc === null || inc === undefined || inc.some((p) => bits[p] === 1);
    const excepted = (ix.grExcept[g] as Int32Array).some((p) => bits[p] === 1);
    if (!included || excepted) continue;
    for (let a = 0; a < N_ACTIONS; a++) if (((ix.grActions[g] as number) & (1 << a)) !== 0) setBit(guardMask, a * W, g);
  }
  const tagBy: number[][] = emptyLists(N_ACTIONS);
  for (const g of ix.tagGrants) {
    if (bits[ix.gPid[g] as number] !== 1) continue;
    for (let a = 0; a < N_ACTIONS; a++) if (((ix.gPerm[g] as number) & (1 << a)) !== 0) (tagBy[a] as number[]).push(g);
  }
  const held: number[] = [];
  let liftUntil = Number.NEGATIVE_INFINITY;
  for (let g = 0; g < ix.grants.length; g++) {
    if (bits[ix.gPid[g] as number] !== 1) continue;
    held.push(g);
    if (ix.gLift[g] !== undefined) liftUntil = Math.max(liftUntil, ix.gExpiry[g] as number);
  }
  const ps: PSet = {
    bits,
    members: Int32Array.from(members),
    guardMask,
    tagBy: tagBy.map((l) => Int32Array.from(l)),
    held: Int32Array.from(held),
    timed: Int32Array.from(held.filter((g) => (ix.gExpiry[g] as number) !== Number.POSITIVE_INFINITY)),
    tagPrograms: new Array<TagProgram | undefined>(N_ACTIONS * ix.catNames.length),
    liftUntil,
    expiries: Float64Array.from(new Set(held.map((g) => ix.gExpiry[g] as number).filter((e) => Number.isFinite(e)))).sort(),
    memo: new Map(),
    memoLo: 0,
    memoHi: -1,
    memoSize: 0,
  };
  ix.psets[pid] = ps;
  return ps;
}

// ------------------------------------------------------------ resource ids

/** A resolved resource: level and ids (-1 where not applicable). */
interface Res {
  readonly level: number;
  readonly cat: number;
  readonly db: number;
  readonly table: number;
  /** Column position within the table. */
  readonly col: number;
}

function resolve(ix: Index, r: ResourceRef): Res | null {
  const cat = ix.catByName.get(r.catalog);
  if (cat === undefined) return null;
  if (r.level === 'catalog') return { level: LEVEL_CATALOG, cat, db: -1, table: -1, col: -1 };
  const db = ix.dbByName[cat]?.get(r.database);
  if (db === undefined) return null;
  if (r.level === 'database') return { level: LEVEL_DATABASE, cat, db, table: -1, col: -1 };
  let table = ix.tableByBare.get(r.table) ?? -1;
  while (table >= 0 && ix.tableDb[table] !== db) table = ix.tableSameName[table] as number;
  if (table < 0) return null;
  if (r.level === 'table') return { level: LEVEL_TABLE, cat, db, table, col: -1 };
  const col = columnIndex(ix, table, r.column);
  return col < 0 ? null : { level: LEVEL_COLUMN, cat, db, table, col };
}

function sigOf(ix: Index, r: Res): number {
  switch (r.level) {
    case LEVEL_CATALOG:
      return 0;
    case LEVEL_DATABASE:
      return ix.dbSig[r.db] as number;
    case LEVEL_TABLE:
      return ix.tableInfo[r.table * TABLE_STRIDE + TI_SIG] as number;
    default:
      return ix.colSig[(ix.tableInfo[r.table * TABLE_STRIDE + TI_COL_BASE] as number) + r.col] as number;
  }
}

// ------------------------------------------------------------ guardrails

/**
 * Computes into `s.denied` the guardrails of the set that deny action `a` on
 * `r`: in scope for its catalog and matching it or an ancestor. Returns
 * whether there is any. A catalog's signature is 0, which only the empty
 * expression matches.
 */
function denyingGuards(ix: Index, ps: PSet, a: number, r: Res): boolean {
  const W = ix.W;
  const out = ix.scratch.denied;
  const sg = ix.sigGuard;
  const pm = ps.guardMask;
  const scope = ix.scopeGuard;
  const s1 = r.level >= LEVEL_DATABASE ? (ix.dbSig[r.db] as number) * W : 0;
  const ti = r.table * TABLE_STRIDE;
  const s2 = r.level >= LEVEL_TABLE ? (ix.tableInfo[ti + TI_SIG] as number) * W : 0;
  const s3 = r.level === LEVEL_COLUMN ? (ix.colSig[(ix.tableInfo[ti + TI_COL_BASE] as number) + r.col] as number) * W : 0;
  let any = 0;
  for (let w = 0; w < W; w++) {
    const m =
      (pm[a * W + w] as number) &
      (scope[r.cat * W + w] as number) &
      ((sg[w] as number) | (sg[s1 + w] as number) | (sg[s2 + w] as number) | (sg[s3 + w] as number));
    out[w] = m;
    any |= m;
  }
  return any !== 0;
}

/** Guardrail indices set in a bitmask, in name order. */
function guardsIn(ix: Index, words: Int32Array): number[] {
  const out: number[] = [];
  const order = ix.grByRank;
  for (let i = 0; i < order.length; i++) {
    const g = order[i] as number;
    if (((words[g >>> 5] as number) & (1 << (g & 31))) !== 0) out.push(g);
  }
  return out;
}

// ------------------------------------------------------------ lifts

/** Whether grant `g` lifts every guardrail set in `words` (true when none is). */
function liftsAllOf(ix: Index, g: number, words: Int32Array): boolean {
  const m = ix.gLift[g];
  for (let w = 0; w < ix.W; w++) {
    const need = words[w] as number;
    if (need !== 0 && (m === undefined || (need & ~(m[w] as number)) !== 0)) return false;
  }
  return true;
}

/** Records that grant `g` was used through every guardrail set in `words`. */
function recordLifts(ix: Index, g: number, words: Int32Array): void {
  const l = ix.scratch.lifted;
  for (let gr = 0; gr < ix.grName.length; gr++) if (((words[gr >>> 5] as number) & (1 << (gr & 31))) !== 0) l.push(gr, g);
}

/** GUARDRAIL_LIFTED reasons of the last decision, by guardrail name then grant id. */
function liftReasons(ix: Index): Reason[] {
  const l = ix.scratch.lifted;
  const byKey = new Map<string, Reason>();
  for (let i = 0; i < l.length; i += 2) {
    const name = ix.grName[l[i] as number] as string;
    const grant = ix.grants[l[i + 1] as number] as Grant;
    const key = `${name}\u0000${grant.id}`;
    if (!byKey.has(key)) byKey.set(key, liftedReason(name, grant));
  }
  return [...byKey.entries()].sort(([a], [b]) => compareText(a, b)).map(([, r]) => r);
}

/** Whether some held grant that lifts a guardrail may still be live. */
function mayLift(ps: PSet, now: number): boolean {
  return now < ps.liftUntil;
}

// ------------------------------------------------------------ grant helpers

function live(ix: Index, g: number, now: number): boolean {
  return now < (ix.gExpiry[g] as number);
}

function carriesA(ix: Index, g: number, a: number): boolean {
  return ((ix.gPerm[g] as number) & (1 << a)) !== 0;
}

function mark(s: Scratch, g: number): void {
  if (s.grantMark[g] !== s.grantEpoch) {
    s.grantMark[g] = s.grantEpoch;
    s.matched.push(g);
  }
}

/** Starts a new matched-grants collection (one per top-level request). */
function resetMatched(s: Scratch): void {
  s.grantEpoch++;
  s.matched.length = 0;
}

function markHeld(ix: Index, bits: Uint8Array, list: readonly number[] | undefined, bit: number, now: number): number {
  if (list === undefined) return 0;
  const s = ix.scratch;
  let n = 0;
  for (let i = 0; i < list.length; i++) {
    const g = list[i] as number;
    if (bits[ix.gPid[g] as number] === 1 && ((ix.gPerm[g] as number) & bit) !== 0 && now < (ix.gExpiry[g] as number)) {
      mark(s, g);
      n++;
    }
  }
  return n;
}

/** Marks the live catalog, database, table and tag grants of the set that cover `r` and carry `a`; returns how many. */
function markContainerGrants(ix: Index, ps: PSet, a: number, r: Res, now: number): number {
  const bit = 1 << a;
  let n = markHeld(ix, ps.bits, ix.byCatalog[r.cat], bit, now);
  if (r.level === LEVEL_CATALOG) return n;
  n += markHeld(ix, ps.bits, ix.byDb[r.db], bit, now);
  if (r.level >= LEVEL_TABLE && ((ix.tableInfo[r.table * TABLE_STRIDE + TI_FLAGS] as number) & HAS_TABLE_GRANTS) !== 0) {
    n += markHeld(ix, ps.bits, ix.byTable[r.table], bit, now);
  }
  const s = ix.scratch;
  const found = tagsFor(ix, tagProgram(ix, ps, a, r.cat), sigOf(ix, r), now, s.tagAtCol);
  for (let i = 0; i < found; i++) mark(s, s.tagAtCol[i] as number);
  return n + found;
}

/** Copies the held, live grants of `list` carrying `bit` into `out` from `n`; returns the new count. */
function collectHeld(ix: Index, bits: Uint8Array, list: readonly number[] | undefined, bit: number, now: number, out: Int32Array, n: number): number {
  if (list === undefined) return n;
  for (let i = 0; i < list.length; i++) {
    const g = list[i] as number;
    if (bits[ix.gPid[g] as number] === 1 && ((ix.gPerm[g] as number) & bit) !== 0 && now < (ix.gExpiry[g] as number)) out[n++] = g;
  }
  return n;
}

function tagProgram(ix: Index, ps: PSet, a: number, cat: number): TagProgram {
  const at = a * ix.catNames.length + cat;
  const cached = ps.tagPrograms[at];
  if (cached !== undefined) return cached;
  const always: number[] = [];
  const pivots = new Set<number>();
  const byValue = new Map<number, number[]>();
  for (const g of ps.tagBy[a] as Int32Array) {
    const ce = ix.gExpr[g] as CompiledExpr;
    if (ix.gCat[g] !== cat || ce.never) continue;
    if (ce.keys.length === 0) {
      always.push(g);
      continue;
    }
    pivots.add(ce.keys[0] as number);
    for (let j = ce.starts[0] as number; j < (ce.starts[1] as number); j++) {
      const v = ce.vals[j] as number;
      const list = byValue.get(v);
      if (list === undefined) byValue.set(v, [g]);
      else if (list[list.length - 1] !== g) list.push(g);
    }
  }
  const program: TagProgram = {
    always: Int32Array.from(always),
    pivotKeys: Int32Array.from(pivots),
    byValue: new Map([...byValue].map(([v, list]) => [v, Int32Array.from(list)])),
  };
  ps.tagPrograms[at] = program;
  return program;
}

/** Writes to `out` the live grants of the program matching signature `sig`; returns how many. */
function tagsFor(ix: Index, prog: TagProgram, sig: number, now: number, out: Int32Array): number {
  let n = 0;
  const always = prog.always;
  for (let i = 0; i < always.length; i++) {
    const g = always[i] as number;
    if (now < (ix.gExpiry[g] as number)) out[n++] = g;
  }
  const pivots = prog.pivotKeys;
  const base = sig * ix.nKeys;
  for (let k = 0; k < pivots.length; k++) {
    const v = ix.sigVals[base + (pivots[k] as number)] as number;
    if (v < 0) continue;
    const list = prog.byValue.get(v);
    if (list === undefined) continue;
    for (let i = 0; i < list.length; i++) {
      const g = list[i] as number;
      if (now < (ix.gExpiry[g] as number) && matchSig(ix.gExpr[g] as CompiledExpr, ix.sigVals, ix.nKeys, sig)) out[n++] = g;
    }
  }
  return n;
}

// ------------------------------------------------------------ SELECT

interface SelectDetails {
  columns: readonly ColumnAccess[];
  rowFilter: Predicate | null;
  filters: readonly string[];
}

/**
 * SELECT on a table or one column. Marks the grants behind visible columns;
 * leaves in `s.denied` the guardrails that denied, and in `s.removed` those
 * that removed columns. With `details`, fills columns, row filter and filters.
 */
function selectOn(ix: Index, ps: PSet, r: Res, now: number, details: SelectDetails | null): Status {
  const s = ix.scratch;
  const W = ix.W;
  const removed = s.removed;
  for (let w = 0; w < W; w++) removed[w] = 0;
  if (mayLift(ps, now)) return selectLifting(ix, ps, r, now, details);
  if (denyingGuards(ix, ps, I_SELECT, r)) return DENY_GUARDRAIL;
  const t = r.table;
  const bits = ps.bits;
  const SEL = 1 << I_SELECT;
  // sources covering every column, all rows
  let nWide = collectHeld(ix, bits, ix.byCatalog[r.cat], SEL, now, s.wide, 0);
  nWide = collectHeld(ix, bits, ix.byDb[r.db], SEL, now, s.wide, nWide);
  const ti = t * TABLE_STRIDE;
  const flags = ix.tableInfo[ti + TI_FLAGS] as number;
  if ((flags & HAS_TABLE_GRANTS) !== 0) nWide = collectHeld(ix, bits, ix.byTable[t], SEL, now, s.wide, nWide);
  const nCol = (flags & HAS_COLUMNS_GRANTS) === 0 ? 0 : collectHeld(ix, bits, ix.colGrantsByTable[t], SEL, now, s.colGrants, 0);
  const nFil = (flags & HAS_FILTER_GRANTS) === 0 ? 0 : collectHeld(ix, bits, ix.filterGrantsByTable[t], SEL, now, s.filterGrants, 0);
  s.nFilterGrants = nFil;
  const prog = tagProgram(ix, ps, I_SELECT, r.cat);
  const noTags = prog.always.length === 0 && prog.pivotKeys.length === 0;
  const tSig = ix.tableInfo[ti + TI_SIG] as number;
  const nTagTable = noTags ? 0 : tagsFor(ix, prog, tSig, now, s.tagAtTable);
  const base = ix.tableInfo[ti + TI_COL_BASE] as number;
  const nCols = ix.tableInfo[ti + TI_N_COLS] as number;
  const single = r.level === LEVEL_COLUMN;
  const from = single ? r.col : 0;
  const to = single ? r.col + 1 : nCols;
  const pmBase = I_SELECT * W;
  const scopeBase = r.cat * W;
  const sg = ix.sigGuard;
  const visible = s.visible;
  const allRows = s.allRows;
  let nVisible = 0;
  let anyAllRows = false;
  let hadSource = false;
  let anyRemoved = false;
  let usedTableTags = false;
  for (let c = from; c < to; c++) {
    visible[c] = 0;
    const sig = ix.colSig[base + c] as number;
    let tagList = s.tagAtTable;
    let nTags = nTagTable;
    if (sig !== tSig) {
      tagList = s.tagAtCol;
      nTags = noTags ? 0 : tagsFor(ix, prog, sig, now, tagList);
    }
    let all = nWide > 0 || nTags > 0;
    let some = all;
    for (let i = 0; i < nCol && !all; i++) if ((ix.gColMask[s.colGrants[i] as number] as Uint8Array)[c] === 1) all = some = true;
    for (let i = 0; i < nFil; i++) {
      const f = ix.gFilter[s.filterGrants[i] as number] as number;
      if ((ix.fColMask[f] as Uint8Array)[c] !== 1) continue;
      some = true;
      if (ix.fPred[f] === null) all = true;
    }
    if (!some) continue;
    hadSource = true;
    // the table and its ancestors matched no guardrail, so only a column's own (different) tags can
    if (sig !== tSig && !single) {
      let m = 0;
      for (let w = 0; w < W; w++) {
        const x = (ps.guardMask[pmBase + w] as number) & (ix.scopeGuard[scopeBase + w] as number) & (sg[sig * W + w] as number);
        removed[w] = (removed[w] as number) | x;
        m |= x;
      }
      if (m !== 0) {
        anyRemoved = true;
        continue;
      }
    }
    visible[c] = 1;
    allRows[c] = all ? 1 : 0;
    if (all) anyAllRows = true;
    nVisible++;
    if (sig === tSig) usedTableTags = true;
    else for (let i = 0; i < nTags; i++) mark(s, tagList[i] as number);
    for (let i = 0; i < nCol; i++) {
      const g = s.colGrants[i] as number;
      if ((ix.gColMask[g] as Uint8Array)[c] === 1) mark(s, g);
    }
    for (let i = 0; i < nFil; i++) {
      const g = s.filterGrants[i] as number;
      if ((ix.fColMask[ix.gFilter[g] as number] as Uint8Array)[c] === 1) mark(s, g);
    }
  }
  if (nVisible === 0) {
    if (hadSource && anyRemoved) {
      s.denied.set(removed);
      return DENY_GUARDRAIL;
    }
    return DENY_NO_GRANT;
  }
  for (let i = 0; i < nWide; i++) mark(s, s.wide[i] as number);
  if (usedTableTags) for (let i = 0; i < nTagTable; i++) mark(s, s.tagAtTable[i] as number);
  if (details !== null) fillSelectDetails(ix, t, from, to, anyAllRows, single, details);
  return ALLOW;
}

/**
 * SELECT for a principal set that holds a live grant able to lift a
 * guardrail: the per-source rule of docs/policy.md, source by source. A
 * source survives a column's denying guardrails when its grant lifts them
 * all. Slower than the aggregated path in `selectOn`, and taken only while
 * such a grant is live.
 */
function selectLifting(ix: Index, ps: PSet, r: Res, now: number, details: SelectDetails | null): Status {
  const s = ix.scratch;
  const W = ix.W;
  const t = r.table;
  const single = r.level === LEVEL_COLUMN;
  const ti = t * TABLE_STRIDE;
  const base = ix.tableInfo[ti + TI_COL_BASE] as number;
  const nCols = ix.tableInfo[ti + TI_N_COLS] as number;
  const from = single ? r.col : 0;
  const to = single ? r.col + 1 : nCols;
  const SEL = 1 << I_SELECT;
  const held = (list: readonly number[] | undefined, out: number[]): void => {
    if (list === undefined) return;
    for (const g of list) if (ps.bits[ix.gPid[g] as number] === 1 && ((ix.gPerm[g] as number) & SEL) !== 0 && now < (ix.gExpiry[g] as number)) out.push(g);
  };
  const wide: number[] = [];
  held(ix.byCatalog[r.cat], wide);
  held(ix.byDb[r.db], wide);
  held(ix.byTable[t], wide);
  const cols: number[] = [];
  held(ix.colGrantsByTable[t], cols);
  const fils: number[] = [];
  held(ix.filterGrantsByTable[t], fils);
  const prog = tagProgram(ix, ps, I_SELECT, r.cat);
  // for a table: the guardrails on the table or an ancestor; for a column: those on the column too
  denyingGuards(ix, ps, I_SELECT, single ? r : { level: LEVEL_TABLE, cat: r.cat, db: r.db, table: t, col: -1 });
  const top = s.denied.slice(0, W);
  let topLifted = top.every((w) => w === 0);
  const sources: number[][] = [];
  for (let c = from; c < to; c++) {
    const list = [...wide];
    const n = tagsFor(ix, prog, ix.colSig[base + c] as number, now, s.tagAtTable);
    for (let i = 0; i < n; i++) list.push(s.tagAtTable[i] as number);
    for (const g of cols) if ((ix.gColMask[g] as Uint8Array)[c] === 1) list.push(g);
    for (const g of fils) if ((ix.fColMask[ix.gFilter[g] as number] as Uint8Array)[c] === 1) list.push(g);
    sources.push(list);
    if (!topLifted) for (const g of list) if (liftsAllOf(ix, g, top)) topLifted = true;
  }
  if (!topLifted) {
    s.denied.set(top);
    return DENY_GUARDRAIL;
  }
  const removed = s.removed;
  const visible = s.visible;
  const allRows = s.allRows;
  const dc = new Int32Array(W);
  const cells: number[][] = [];
  let nVisible = 0;
  let anyAllRows = false;
  let anyRemoved = false;
  for (let c = from; c < to; c++) {
    const list = sources[c - from] as number[];
    const cell: number[] = [];
    cells.push(cell);
    visible[c] = 0;
    allRows[c] = 0;
    if (list.length === 0) continue;
    const sig = ix.colSig[base + c] as number;
    for (let w = 0; w < W; w++) {
      dc[w] = single
        ? (top[w] as number)
        : (top[w] as number) | ((ps.guardMask[I_SELECT * W + w] as number) & (ix.scopeGuard[r.cat * W + w] as number) & (ix.sigGuard[sig * W + w] as number));
    }
    let survived = 0;
    let all = false;
    for (const g of list) {
      if (!liftsAllOf(ix, g, dc)) continue;
      survived++;
      mark(s, g);
      recordLifts(ix, g, dc);
      const f = ix.gKind[g] === KIND_FILTER ? (ix.gFilter[g] as number) : -1;
      if (f < 0 || ix.fPred[f] === null) all = true;
      else cell.push(f);
    }
    if (survived === 0) {
      for (const g of list) {
        const lift = ix.gLift[g];
        for (let w = 0; w < W; w++) removed[w] = (removed[w] as number) | ((dc[w] as number) & ~(lift === undefined ? 0 : (lift[w] as number)));
      }
      anyRemoved = true;
      continue;
    }
    visible[c] = 1;
    allRows[c] = all ? 1 : 0;
    if (all) anyAllRows = true;
    nVisible++;
  }
  if (nVisible === 0) {
    if (anyRemoved) {
      s.denied.set(removed);
      return DENY_GUARDRAIL;
    }
    return DENY_NO_GRANT;
  }
  if (details === null) return ALLOW;
  const used = new Set<string>();
  for (const g of fils) if (s.grantMark[g] === s.grantEpoch) used.add(ix.fName[ix.gFilter[g] as number] as string);
  details.filters = used.size === 0 ? NONE : [...used].sort(compareText);
  const names = ix.colNames[t] as string[];
  if (single) {
    details.columns = [{ name: names[from] as string, rowFilter: null }];
    details.rowFilter = anyAllRows ? null : orOfFilters(ix, cells[0] as number[]).pred;
    return ALLOW;
  }
  let rowSql: string | null = null;
  if (anyAllRows) details.rowFilter = null;
  else {
    const every: number[] = [];
    for (let c = from; c < to; c++) if (visible[c] === 1) every.push(...(cells[c - from] as number[]));
    const row = orOfFilters(ix, every);
    details.rowFilter = row.pred;
    rowSql = row.sql;
  }
  const columns: ColumnAccess[] = [];
  for (let c = from; c < to; c++) {
    if (visible[c] !== 1) continue;
    if (allRows[c] === 1) {
      columns.push({ name: names[c] as string, rowFilter: null });
      continue;
    }
    const cell = orOfFilters(ix, cells[c - from] as number[]);
    columns.push({ name: names[c] as string, rowFilter: cell.sql === rowSql ? null : cell.pred });
  }
  details.columns = columns;
  return ALLOW;
}

/** OR of filter predicates (by filter index), built exactly as `anyOf` in predicate.ts would. */
function orOfFilters(ix: Index, filters: readonly number[]): { pred: Predicate; sql: string } {
  const bySql = new Map<string, Predicate>();
  for (const f of filters) {
    const sql = ix.fSql[f] as string;
    if (!bySql.has(sql)) bySql.set(sql, ix.fPred[f] as Predicate);
  }
  const sqls = [...bySql.keys()].sort(compareText);
  if (sqls.length === 1) return { pred: bySql.get(sqls[0] as string) as Predicate, sql: sqls[0] as string };
  return { pred: { k: 'or', args: sqls.map((q) => bySql.get(q) as Predicate) }, sql: `(${sqls.join(' OR ')})` };
}

/** Filters (with a predicate) of the held filter grants that show column `c`. */
function cellFilters(ix: Index, c: number): number[] {
  const s = ix.scratch;
  const out: number[] = [];
  for (let i = 0; i < s.nFilterGrants; i++) {
    const f = ix.gFilter[s.filterGrants[i] as number] as number;
    if ((ix.fColMask[f] as Uint8Array)[c] === 1 && ix.fPred[f] !== null) out.push(f);
  }
  return out;
}

function fillSelectDetails(ix: Index, t: number, from: number, to: number, anyAllRows: boolean, single: boolean, out: SelectDetails): void {
  const s = ix.scratch;
  const names = ix.colNames[t] as string[];
  let filters: readonly string[] = NONE;
  if (s.nFilterGrants > 0) {
    const used = new Set<string>();
    for (let i = 0; i < s.nFilterGrants; i++) {
      const g = s.filterGrants[i] as number;
      if (s.grantMark[g] === s.grantEpoch) used.add(ix.fName[ix.gFilter[g] as number] as string);
    }
    if (used.size > 0) filters = [...used].sort(compareText);
  }
  out.filters = filters;
  if (single) {
    out.columns = cachedColumns(ix, t, 1 << from, from, to) ?? [{ name: names[from] as string, rowFilter: null }];
    out.rowFilter = anyAllRows ? null : orOfFilters(ix, cellFilters(ix, from)).pred;
    return;
  }
  // the common answer, every visible column on all rows, is shared per table and visible set
  let everyAllRows = true;
  let key = 0;
  for (let c = from; c < to; c++) {
    if (s.visible[c] !== 1) continue;
    if (s.allRows[c] !== 1) everyAllRows = false;
    key |= 1 << c;
  }
  if (everyAllRows) {
    out.rowFilter = null;
    out.columns = cachedColumns(ix, t, key, from, to) ?? buildColumns(ix, t, from, to, null);
    return;
  }
  let rowSql: string | null = null;
  if (anyAllRows) out.rowFilter = null;
  else {
    const every: number[] = [];
    for (let c = from; c < to; c++) if (s.visible[c] === 1) every.push(...cellFilters(ix, c));
    const row = orOfFilters(ix, every);
    out.rowFilter = row.pred;
    rowSql = row.sql;
  }
  out.columns = buildColumns(ix, t, from, to, rowSql);
}

function buildColumns(ix: Index, t: number, from: number, to: number, rowSql: string | null): ColumnAccess[] {
  const s = ix.scratch;
  const names = ix.colNames[t] as string[];
  const columns: ColumnAccess[] = [];
  for (let c = from; c < to; c++) {
    if (s.visible[c] !== 1) continue;
    if (s.allRows[c] === 1) {
      columns.push({ name: names[c] as string, rowFilter: null });
      continue;
    }
    const cell = orOfFilters(ix, cellFilters(ix, c));
    columns.push({ name: names[c] as string, rowFilter: cell.sql === rowSql ? null : cell.pred });
  }
  return columns;
}

/** Frozen all-rows column lists, per table and visible-column bitmask (tables of up to 30 columns). */
function cachedColumns(ix: Index, t: number, key: number, from: number, to: number): readonly ColumnAccess[] | null {
  if ((ix.colNames[t] as string[]).length > 30) return null;
  let byKey = ix.fullColumns[t];
  if (byKey === undefined) {
    byKey = new Map();
    ix.fullColumns[t] = byKey;
  }
  let cols = byKey.get(key);
  if (cols === undefined) {
    const names = ix.colNames[t] as string[];
    const list: ColumnAccess[] = [];
    for (let c = from; c < to; c++) if ((key & (1 << c)) !== 0) list.push(Object.freeze({ name: names[c] as string, rowFilter: null }));
    cols = Object.freeze(list);
    byKey.set(key, cols);
  }
  return cols;
}

// ------------------------------------------------------------ other actions

/**
 * INSERT, DELETE, ALTER, DROP, CREATE_TABLE: marks the covering grants on
 * allow. Under a denying guardrail, only grants lifting all of them count.
 */
function plainOn(ix: Index, ps: PSet, a: number, r: Res, now: number): Status {
  if (denyingGuards(ix, ps, a, r)) {
    if (!mayLift(ps, now)) return DENY_GUARDRAIL;
    const s = ix.scratch;
    const denied = s.denied.slice(0, ix.W);
    let n = 0;
    for (const g of containerGrants(ix, ps, a, r, now)) {
      if (!liftsAllOf(ix, g, denied)) continue;
      mark(s, g);
      recordLifts(ix, g, denied);
      n++;
    }
    s.denied.set(denied);
    return n > 0 ? ALLOW : DENY_GUARDRAIL;
  }
  return markContainerGrants(ix, ps, a, r, now) > 0 ? ALLOW : DENY_NO_GRANT;
}

/** The live catalog, database, table and tag grants of the set that cover `r` and carry `a`, unmarked. */
function containerGrants(ix: Index, ps: PSet, a: number, r: Res, now: number): number[] {
  const bit = 1 << a;
  const out: number[] = [];
  const add = (list: readonly number[] | undefined): void => {
    if (list === undefined) return;
    for (const g of list) if (ps.bits[ix.gPid[g] as number] === 1 && ((ix.gPerm[g] as number) & bit) !== 0 && now < (ix.gExpiry[g] as number)) out.push(g);
  };
  add(ix.byCatalog[r.cat]);
  if (r.level === LEVEL_CATALOG) return out;
  add(ix.byDb[r.db]);
  if (r.level >= LEVEL_TABLE) add(ix.byTable[r.table]);
  const buf = new Int32Array(ix.grants.length + 1);
  const found = tagsFor(ix, tagProgram(ix, ps, a, r.cat), sigOf(ix, r), now, buf);
  for (let i = 0; i < found; i++) out.push(buf[i] as number);
  return out;
}

const TABLE_OTHER_ACTIONS = [2, 3, 4, 5] as const;
const DATABASE_OTHER_ACTIONS = [4, 5, 6] as const;

/**
 * DESCRIBE: the union of direct DESCRIBE grants, grants behind any other
 * allowed action, and grants behind DESCRIBE on children, all marked into
 * `s.matched`. Only the outermost call's status is meaningful: nested calls
 * just add marks.
 */
function describeOn(ix: Index, ps: PSet, r: Res, now: number): Status {
  const s = ix.scratch;
  if (denyingGuards(ix, ps, I_DESCRIBE, r)) {
    if (!mayLift(ps, now)) return DENY_GUARDRAIL;
    // collect the candidates on their own, then keep those lifting every denying guardrail
    const denied = s.denied.slice(0, ix.W);
    const outer = [...s.matched];
    resetMatched(s);
    describeCandidates(ix, ps, r, now);
    const candidates = [...s.matched];
    resetMatched(s);
    for (const g of outer) mark(s, g);
    s.lifted.length = 0;
    let n = 0;
    for (const g of candidates) {
      if (!liftsAllOf(ix, g, denied)) continue;
      mark(s, g);
      recordLifts(ix, g, denied);
      n++;
    }
    s.denied.set(denied);
    return n > 0 ? ALLOW : DENY_GUARDRAIL;
  }
  describeCandidates(ix, ps, r, now);
  // lifts recorded by the implied decisions are theirs; DESCRIBE reports only its own
  s.lifted.length = 0;
  return s.matched.length > 0 ? ALLOW : DENY_NO_GRANT;
}

/** Marks every DESCRIBE candidate of `r`: direct grants, grants behind other allowed actions, and DESCRIBE inside. */
function describeCandidates(ix: Index, ps: PSet, r: Res, now: number): void {
  const s = ix.scratch;
  markContainerGrants(ix, ps, I_DESCRIBE, r, now);
  switch (r.level) {
    case LEVEL_TABLE:
      selectOn(ix, ps, r, now, null);
      for (const a of TABLE_OTHER_ACTIONS) plainOn(ix, ps, a, r, now);
      break;
    case LEVEL_DATABASE: {
      for (const a of DATABASE_OTHER_ACTIONS) plainOn(ix, ps, a, r, now);
      const cap = reachable(ix, ps, r, now);
      for (const t of candidateTables(ix, ps, r, now)) {
        if (allMarked(s, cap)) break;
        describeOn(ix, ps, { level: LEVEL_TABLE, cat: r.cat, db: r.db, table: t, col: -1 }, now);
      }
      break;
    }
    case LEVEL_CATALOG: {
      const cap = reachable(ix, ps, r, now);
      for (const d of candidateDbs(ix, ps, r, now)) {
        if (allMarked(s, cap)) break;
        describeOn(ix, ps, { level: LEVEL_DATABASE, cat: r.cat, db: d, table: -1, col: -1 }, now);
      }
      break;
    }
    default:
      break;
  }
}

/** True when every grant of `cap` is already matched: nothing further down can add one. */
function allMarked(s: Scratch, cap: readonly number[]): boolean {
  for (const g of cap) if (s.grantMark[g] !== s.grantEpoch) return false;
  return true;
}

/** Live grants of the set that could touch anything in the subtree of `r`: every grant DESCRIBE can match there is one of these. */
function reachable(ix: Index, ps: PSet, r: Res, now: number): number[] {
  const out: number[] = [];
  for (const g of ps.held) {
    if (!live(ix, g, now) || ix.gCat[g] !== r.cat || ix.gPerm[g] === 0) continue;
    switch (ix.gKind[g]) {
      case KIND_CATALOG:
      case KIND_TAG:
        out.push(g);
        break;
      case KIND_DATABASE:
        if (r.level === LEVEL_CATALOG || ix.gDb[g] === r.db) out.push(g);
        break;
      default: {
        const t = ix.gTable[g] as number;
        if (t >= 0 && (r.level === LEVEL_CATALOG || ix.tableDb[t] === r.db)) out.push(g);
      }
    }
  }
  return out;
}

/**
 * Tables of database `r.db` that some live grant of the set could reach, in
 * id order. Every other table has no grant anywhere inside it, so all its
 * decisions are NO_GRANT.
 */
function candidateTables(ix: Index, ps: PSet, r: Res, now: number): number[] {
  return candidateTablesByDb(ix, ps, r.cat, now)(r.db);
}

/**
 * `candidateTables` for every database of a catalog from one pass over the
 * set's grants. Effective permissions walk every database; asking per
 * database matched every tag grant against the whole catalog again each time.
 */
function candidateTablesByDb(ix: Index, ps: PSet, cat: number, now: number): (db: number) => number[] {
  let everywhere = false;
  const whole = new Set<number>();
  const hits = new Map<number, Set<number>>();
  const hit = (t: number): void => {
    const d = ix.tableDb[t] as number;
    let set = hits.get(d);
    if (set === undefined) hits.set(d, (set = new Set()));
    set.add(t);
  };
  for (const g of ps.held) {
    if (!live(ix, g, now) || ix.gCat[g] !== cat) continue;
    switch (ix.gKind[g]) {
      case KIND_CATALOG:
        everywhere = true;
        break;
      case KIND_DATABASE:
        if ((ix.gDb[g] as number) >= 0) whole.add(ix.gDb[g] as number);
        break;
      case KIND_TAG:
        for (const t of tablesMatching(ix, ix.gExpr[g] as CompiledExpr)) if (ix.tableCat[t] === cat) hit(t);
        break;
      default: {
        const t = ix.gTable[g] as number;
        if (t >= 0) hit(t);
      }
    }
  }
  return (db) => (everywhere || whole.has(db) ? (ix.tablesOfDb[db] as number[]) : [...(hits.get(db) ?? [])].sort((x, y) => x - y));
}

function candidateDbs(ix: Index, ps: PSet, r: Res, now: number): number[] {
  const all = ix.dbsOfCat[r.cat] as number[];
  const hit = new Set<number>();
  for (const g of ps.held) {
    if (!live(ix, g, now) || ix.gCat[g] !== r.cat) continue;
    switch (ix.gKind[g]) {
      case KIND_CATALOG:
        return all;
      case KIND_DATABASE:
        if ((ix.gDb[g] as number) >= 0) hit.add(ix.gDb[g] as number);
        break;
      case KIND_TAG: {
        const ce = ix.gExpr[g] as CompiledExpr;
        // the signature index spans catalogs; a tag grant only reaches its own
        for (const sg of sigsMatching(ix, ce)) for (const d of ix.sigDbs[sg] as number[]) if (ix.dbCat[d] === r.cat) hit.add(d);
        for (const t of tablesMatching(ix, ce)) if (ix.tableCat[t] === r.cat) hit.add(ix.tableDb[t] as number);
        break;
      }
      default: {
        const t = ix.gTable[g] as number;
        if (t >= 0) hit.add(ix.tableDb[t] as number);
      }
    }
  }
  return [...hit].sort((a, b) => a - b);
}

/** Signatures an expression matches, through the key=value inverted index. */
function sigsMatching(ix: Index, ce: CompiledExpr): number[] {
  if (ce.never) return [];
  if (ce.keys.length === 0) return Array.from({ length: ix.nSigs }, (_, i) => i);
  const out: number[] = [];
  for (let j = ce.starts[0] as number; j < (ce.starts[1] as number); j++) {
    for (const sg of ix.kvSigs[ce.vals[j] as number] as number[]) if (matchSig(ce, ix.sigVals, ix.nKeys, sg)) out.push(sg);
  }
  return out;
}

/** Tables whose own tags, or one of whose columns' tags, match. */
function tablesMatching(ix: Index, ce: CompiledExpr): number[] {
  const out: number[] = [];
  for (const sg of sigsMatching(ix, ce)) {
    for (const t of ix.sigTables[sg] as number[]) out.push(t);
    for (const t of ix.sigColTables[sg] as number[]) out.push(t);
  }
  return out;
}

// ------------------------------------------------------------ explaining a NO_GRANT

function expiredReasons(ix: Index, ps: PSet, a: number, r: Res, now: number): Reason[] {
  const out: number[] = [];
  for (const g of ps.timed) {
    if (!live(ix, g, now) && wouldCover(ix, g, a, r)) out.push(g);
  }
  out.sort((x, y) => (ix.gRank[x] as number) - (ix.gRank[y] as number));
  return out.map((g): Reason => {
    const grant = ix.grants[g] as Grant;
    return { code: 'GRANT_EXPIRED', grantId: grant.id, message: reasonText.expired(grant) };
  });
}

const LEVEL_NAMES = ['catalog', 'database', 'table', 'column'] as const;

/** Whether grant `g`, ignoring expiry and guardrails, would give action `a` on `r`. */
function wouldCover(ix: Index, g: number, a: number, r: Res): boolean {
  if (a === I_DESCRIBE) {
    return ACTIONS_AT[LEVEL_NAMES[r.level] as ResourceRef['level']].some((p) => {
      const i = ACTION_INDEX[p];
      return i === I_DESCRIBE ? coversContainer(ix, g, I_DESCRIBE, r) : wouldCover(ix, g, i, r);
    });
  }
  if (a === I_SELECT && r.level >= LEVEL_TABLE) {
    const from = r.level === LEVEL_COLUMN ? r.col : 0;
    const to = r.level === LEVEL_COLUMN ? r.col + 1 : (ix.colNames[r.table] as string[]).length;
    for (let c = from; c < to; c++) if (sourceOf(ix, g, r, c)) return true;
    return false;
  }
  return coversContainer(ix, g, a, r);
}

function coversContainer(ix: Index, g: number, a: number, r: Res): boolean {
  if (!carriesA(ix, g, a)) return false;
  switch (ix.gKind[g]) {
    case KIND_CATALOG:
      return ix.gCat[g] === r.cat;
    case KIND_DATABASE:
      return r.level >= LEVEL_DATABASE && ix.gDb[g] === r.db;
    case KIND_TABLE:
      return r.level >= LEVEL_TABLE && ix.gTable[g] === r.table;
    case KIND_TAG:
      return r.level >= LEVEL_DATABASE && ix.gCat[g] === r.cat && matchSig(ix.gExpr[g] as CompiledExpr, ix.sigVals, ix.nKeys, sigOf(ix, r));
    default:
      return false;
  }
}

function sourceOf(ix: Index, g: number, r: Res, c: number): boolean {
  if (!carriesA(ix, g, I_SELECT)) return false;
  switch (ix.gKind[g]) {
    case KIND_COLUMNS:
      return ix.gTable[g] === r.table && (ix.gColMask[g] as Uint8Array)[c] === 1;
    case KIND_FILTER: {
      const f = ix.gFilter[g] as number;
      return f >= 0 && ix.gTable[g] === r.table && (ix.fColMask[f] as Uint8Array)[c] === 1;
    }
    default:
      return coversContainer(ix, g, I_SELECT, { level: LEVEL_COLUMN, cat: r.cat, db: r.db, table: r.table, col: c });
  }
}

// ------------------------------------------------------------ decisions

// Switches rather than maps: the names are interned literals, so a switch is a few
// pointer comparisons, where a map lookup hashes on every call.
function levelIndex(level: string): number {
  switch (level) {
    case 'table':
      return LEVEL_TABLE;
    case 'column':
      return LEVEL_COLUMN;
    case 'database':
      return LEVEL_DATABASE;
    case 'catalog':
      return LEVEL_CATALOG;
    default:
      return -1;
  }
}

function actionIndex(action: string): number {
  switch (action) {
    case 'SELECT':
      return I_SELECT;
    case 'DESCRIBE':
      return I_DESCRIBE;
    default:
      return Object.hasOwn(ACTION_INDEX, action) ? ACTION_INDEX[action as Permission] : -1;
  }
}
/** APPLICABLE[level * N_ACTIONS + action]: the pairs `authorize` decides. */
const APPLICABLE = new Uint8Array(4 * N_ACTIONS);
for (const [level, actions] of Object.entries(ACTIONS_AT)) {
  for (const a of actions) APPLICABLE[levelIndex(level) * N_ACTIONS + ACTION_INDEX[a]] = 1;
}

function denyDecision(req: AuthorizeRequest, reasons: readonly Reason[], deniedBy: readonly string[], resource: string): Decision {
  const { principal, action } = req;
  return action === 'SELECT'
    ? { decision: 'deny', principal, action, resource, reasons, matchedGrants: NONE, deniedBy, filters: NONE, columns: NONE, rowFilter: FALSE }
    : { decision: 'deny', principal, action, resource, reasons, matchedGrants: NONE, deniedBy, filters: NONE };
}

function authorizeWith(ix: Index, req: AuthorizeRequest, resourceText?: string): Decision {
  const { principal, action } = req;
  let ps = ix.psetByRef.get(principal);
  if (ps === undefined) {
    const pid = ix.pidByRef.get(principal);
    if (pid === undefined || ix.pExists[pid] !== 1) {
      return denyDecision(req, [{ code: 'UNKNOWN_PRINCIPAL', message: reasonText.unknownPrincipal(principal) }], NONE, resourceText ?? resourceToString(req.resource));
    }
    ps = psetOf(ix, pid);
    ix.psetByRef.set(principal, ps);
  }
  const a = actionIndex(action);
  const level = levelIndex(req.resource.level);
  if (a < 0 || level < 0 || APPLICABLE[level * N_ACTIONS + a] !== 1) {
    return denyDecision(req, [{ code: 'NOT_APPLICABLE', message: reasonText.notApplicable(action, req.resource.level) }], NONE, resourceText ?? resourceToString(req.resource));
  }
  const now = req.now ?? Date.now();
  // Table and column decisions are memoized per principal set: everything they read is fixed for
  // this engine (one world) except which grants are live, and that only changes at an expiry.
  if (level >= LEVEL_TABLE) {
    if (now < ps.memoLo || now >= ps.memoHi) forget(ps, now);
    const hit = remembered(ix, ps, req.resource as TableLevelRef, a);
    if (hit !== undefined) return hit;
  }
  const r = resolve(ix, req.resource);
  if (r === null) {
    const text = resourceText ?? resourceToString(req.resource);
    return denyDecision(req, [{ code: 'UNKNOWN_RESOURCE', message: reasonText.unknownResource(text) }], NONE, text);
  }
  if (r.level < LEVEL_TABLE) return decideAt(ix, req, r, a, ps, now, resourceText);
  // Frozen because later callers get this very object: one caller mutating it must not change another's answer.
  const decision = deepFreeze(decideAt(ix, req, r, a, ps, now, resourceText));
  remember(ix, ps, r, a, decision);
  return decision;
}

type TableLevelRef = Extract<ResourceRef, { level: 'table' | 'column' }>;

function forget(ps: PSet, now: number): void {
  const { lo, hi } = windowOf(ps.expiries, now);
  ps.memo.clear();
  ps.memoSize = 0;
  ps.memoLo = lo;
  ps.memoHi = hi;
}

function remembered(ix: Index, ps: PSet, ref: TableLevelRef, a: number): Decision | undefined {
  let m = ps.memo.get(ref.table);
  while (m !== undefined && (m.database !== ref.database || m.catalog !== ref.catalog)) m = m.next;
  if (m === undefined) return undefined;
  if (ref.level === 'table') return m.slots[a];
  const col = columnIndex(ix, m.table, ref.column);
  return col < 0 ? undefined : m.slots[N_ACTIONS * (1 + col) + a];
}

function remember(ix: Index, ps: PSet, r: Res, a: number, decision: Decision): void {
  if (ps.memoSize >= MEMO_LIMIT) forget(ps, ps.memoLo);
  const name = (ix.tables[r.table] as Table).name;
  const head = ps.memo.get(name);
  let m = head;
  while (m !== undefined && m.table !== r.table) m = m.next;
  if (m === undefined) {
    m = { catalog: ix.catNames[r.cat] as string, database: ix.dbNames[r.db] as string, table: r.table, slots: [], next: head };
    ps.memo.set(name, m);
  }
  m.slots[r.level === LEVEL_TABLE ? a : N_ACTIONS * (1 + r.col) + a] = decision;
  ps.memoSize++;
}

function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  Object.freeze(value);
  // Indexed and for-in walks: Object.values would allocate an array per object, and decisions are made by the million.
  if (Array.isArray(value)) for (let i = 0; i < value.length; i++) deepFreeze(value[i]);
  else for (const k in value) deepFreeze((value as Record<string, unknown>)[k]);
  return value;
}

/** The instants around `now` between which no held grant expires: [largest expiry <= now, smallest expiry > now). */
function windowOf(expiries: Float64Array, now: number): { lo: number; hi: number } {
  let l = 0;
  let h = expiries.length;
  while (l < h) {
    const m = (l + h) >>> 1;
    if ((expiries[m] as number) <= now) l = m + 1;
    else h = m;
  }
  return { lo: l === 0 ? Number.NEGATIVE_INFINITY : (expiries[l - 1] as number), hi: l === expiries.length ? Number.POSITIVE_INFINITY : (expiries[l] as number) };
}

/** The decision proper, for a known principal, an applicable action and an existing resource. */
function decideAt(ix: Index, req: AuthorizeRequest, r: Res, a: number, ps: PSet, now: number, resourceText: string | undefined): Decision {
  const { principal, action } = req;
  const resource = resourceText ?? (r.level === LEVEL_TABLE ? (ix.tableKey[r.table] as string) : resourceToString(req.resource));
  const s = ix.scratch;
  resetMatched(s);
  s.lifted.length = 0;
  let details: SelectDetails | null = null;
  let status: Status;
  if (a === I_SELECT) {
    details = { columns: NONE, rowFilter: null, filters: NONE };
    status = selectOn(ix, ps, r, now, details);
  } else if (a === I_DESCRIBE) {
    status = describeOn(ix, ps, r, now);
  } else {
    status = plainOn(ix, ps, a, r, now);
  }
  switch (status) {
    case DENY_GUARDRAIL: {
      const guards = guardsIn(ix, s.denied);
      return denyDecision(
        req,
        guards.map((g) => ix.grReason[g] as Reason),
        guards.map((g) => ix.grName[g] as string),
        resource,
      );
    }
    case DENY_NO_GRANT: {
      const noGrant: Reason = { code: 'NO_GRANT', message: reasonText.noGrant(principal, action, resource) };
      const expired = ps.timed.length === 0 ? NONE : expiredReasons(ix, ps, a, r, now);
      return denyDecision(req, expired.length === 0 ? [noGrant] : [noGrant, ...expired], NONE, resource);
    }
    case ALLOW:
      return allowDecision(ix, req, resource, details);
    default: {
      const never: never = status;
      return never;
    }
  }
}

function allowDecision(ix: Index, req: AuthorizeRequest, resource: string, details: SelectDetails | null): Decision {
  const { principal, action } = req;
  const s = ix.scratch;
  const matched = s.matched;
  let removed = false;
  if (details !== null) for (let w = 0; w < ix.W; w++) if (s.removed[w] !== 0) removed = true;
  let ids: readonly string[];
  let reasons: readonly Reason[];
  if (matched.length === 1) {
    ids = ix.gIdList[matched[0] as number] as readonly string[];
    reasons = ix.gReasonList[matched[0] as number] as readonly Reason[];
  } else {
    const order = [...matched].sort((x, y) => (ix.gRank[x] as number) - (ix.gRank[y] as number));
    ids = order.map((g) => (ix.grants[g] as Grant).id);
    reasons = order.map((g) => ix.gReason[g] as Reason);
  }
  let deniedBy: readonly string[] = NONE;
  if (removed) {
    const guards = guardsIn(ix, s.removed);
    deniedBy = guards.map((g) => ix.grName[g] as string);
    reasons = [...reasons, ...guards.map((g) => ix.grReason[g] as Reason)];
  }
  if (s.lifted.length > 0) reasons = [...reasons, ...liftReasons(ix)];
  if (details === null) return { decision: 'allow', principal, action, resource, reasons, matchedGrants: ids, deniedBy, filters: NONE };
  return {
    decision: 'allow',
    principal,
    action,
    resource,
    reasons,
    matchedGrants: ids,
    deniedBy,
    filters: details.filters,
    columns: details.columns,
    rowFilter: details.rowFilter,
  };
}

// ------------------------------------------------------------ listings

/**
 * DESCRIBE on `r` when the grants behind the other allowed actions there and
 * behind DESCRIBE inside it are already known (`implied`): the same decision
 * `authorize` makes, without walking the subtree again.
 */
function describeFrom(ix: Index, ps: PSet, req: AuthorizeRequest, r: Res, now: number, implied: readonly number[]): Decision {
  const s = ix.scratch;
  const resource = resourceToString(req.resource);
  resetMatched(s);
  s.lifted.length = 0;
  if (denyingGuards(ix, ps, I_DESCRIBE, r)) {
    if (mayLift(ps, now)) {
      const denied = s.denied.slice(0, ix.W);
      for (const g of [...containerGrants(ix, ps, I_DESCRIBE, r, now), ...implied]) {
        if (!liftsAllOf(ix, g, denied)) continue;
        mark(s, g);
        recordLifts(ix, g, denied);
      }
      s.denied.set(denied);
      if (s.matched.length > 0) return allowDecision(ix, req, resource, null);
    }
    const guards = guardsIn(ix, s.denied);
    return denyDecision(req, guards.map((g) => ix.grReason[g] as Reason), guards.map((g) => ix.grName[g] as string), resource);
  }
  markContainerGrants(ix, ps, I_DESCRIBE, r, now);
  for (const g of implied) mark(s, g);
  if (s.matched.length > 0) return allowDecision(ix, req, resource, null);
  const noGrant: Reason = { code: 'NO_GRANT', message: reasonText.noGrant(req.principal, 'DESCRIBE', resource) };
  return denyDecision(req, [noGrant, ...expiredReasons(ix, ps, I_DESCRIBE, r, now)], NONE, resource);
}

/**
 * Effective permissions, bottom-up: tables first, then their database, then
 * the catalog, so DESCRIBE of a container reuses what its children answered.
 * Only containers some live grant of the set can reach are visited; all
 * others would answer NO_GRANT to everything.
 */
function effectivePermissionsWith(ix: Index, principal: PrincipalRef, now: number): EffectivePermission[] {
  const pid = ix.pidByRef.get(principal);
  if (pid === undefined || ix.pExists[pid] !== 1) return [];
  const ps = psetOf(ix, pid);
  const out: EffectivePermission[] = [];
  // matched grants are always held, so the held ones are all a lookup needs
  const byId = new Map<string, number>();
  for (const g of ps.held) byId.set((ix.grants[g] as Grant).id, g);
  const lookup = (id: string): Grant | undefined => {
    const g = byId.get(id);
    return g === undefined ? undefined : (ix.grants[g] as Grant);
  };
  const allowedGrants = (decisions: readonly Decision[], into: number[]): void => {
    for (const d of decisions) if (d.decision === 'allow') for (const id of d.matchedGrants) into.push(byId.get(id) as number);
  };
  const entry = (ref: ResourceRef, others: readonly Permission[], res: Res, inside: readonly number[]): number[] => {
    const decisions = others.map((action) => authorizeWith(ix, { principal, action, resource: ref, now }));
    const implied = [...inside];
    allowedGrants(decisions, implied);
    const describe = describeFrom(ix, ps, { principal, action: 'DESCRIBE', resource: ref, now }, res, now, implied);
    const e = effectiveEntry(ref, [describe, ...decisions], lookup);
    if (e !== null) out.push(e);
    const matched: number[] = [];
    allowedGrants([describe], matched);
    return matched;
  };
  const cats = new Set<number>();
  for (const g of ps.held) if (live(ix, g, now) && (ix.gCat[g] as number) >= 0) cats.add(ix.gCat[g] as number);
  for (const cat of cats) {
    const catalog = ix.catNames[cat] as string;
    const catRes: Res = { level: LEVEL_CATALOG, cat, db: -1, table: -1, col: -1 };
    const inCatalog: number[] = [];
    const tablesOf = candidateTablesByDb(ix, ps, cat, now);
    for (const d of candidateDbs(ix, ps, catRes, now)) {
      const database = ix.dbNames[d] as string;
      const dbRes: Res = { level: LEVEL_DATABASE, cat, db: d, table: -1, col: -1 };
      const inDb: number[] = [];
      for (const t of tablesOf(d)) {
        const table = (ix.tables[t] as Table).name;
        const tRes: Res = { level: LEVEL_TABLE, cat, db: d, table: t, col: -1 };
        inDb.push(...entry({ level: 'table', catalog, database, table }, TABLE_ACTIONS, tRes, NONE));
      }
      inCatalog.push(...entry({ level: 'database', catalog, database }, DATABASE_ACTIONS, dbRes, inDb));
    }
    entry({ level: 'catalog', catalog }, NONE, catRes, inCatalog);
  }
  return out.sort((x, y) => compareText(x.resource, y.resource));
}

const TABLE_ACTIONS: readonly Permission[] = ACTIONS_AT.table.filter((a) => a !== 'DESCRIBE');
const DATABASE_ACTIONS: readonly Permission[] = ACTIONS_AT.database.filter((a) => a !== 'DESCRIBE');

/** Users in the reverse closure of a principal. */
function usersUnder(ix: Index, pid: number, out: Set<number>): void {
  const seen = new Set<number>([pid]);
  const queue = [pid];
  for (let i = 0; i < queue.length; i++) {
    const p = queue[i] as number;
    if (ix.pIsUser[p] === 1 && ix.pExists[p] === 1) out.add(p);
    for (const c of ix.pChildren[p] as number[]) {
      if (seen.has(c)) continue;
      seen.add(c);
      queue.push(c);
    }
  }
}

function whoCanAccessWith(ix: Index, resource: ResourceRef, action: Permission, now: number): AccessHolder[] {
  const cat = ix.catByName.get(resource.catalog);
  if (cat === undefined) return [];
  const users = new Set<number>();
  const principals = new Set<number>();
  ix.grants.forEach((_, g) => {
    if (ix.gCat[g] === cat && live(ix, g, now)) principals.add(ix.gPid[g] as number);
  });
  for (const p of principals) usersUnder(ix, p, users);
  const out: AccessHolder[] = [];
  const text = resourceToString(resource);
  for (const u of users) {
    const principal = ix.pRef[u] as PrincipalRef;
    const decision = authorizeWith(ix, { principal, action, resource, now }, text);
    if (decision.decision === 'allow') out.push({ principal, decision });
  }
  return out.sort((x, y) => compareText(x.principal, y.principal));
}

// ------------------------------------------------------------ the factory

/**
 * Builds the indexed engine for one world snapshot. Build once per world
 * version; decisions are then cheap.
 *
 * @example createEngine(world).authorize({ principal: 'user:alice', action: 'SELECT', resource: parseResource('lake.claims.members')! })
 */
export function createEngine(world: PolicyWorld): Engine {
  const started = performance.now();
  const ix = buildIndex(world);
  const buildMs = performance.now() - started;
  const counts = {
    buildMs,
    catalogs: ix.catNames.length,
    databases: ix.dbNames.length,
    tables: ix.tableKey.length,
    columns: ix.colSig.length,
    users: world.users.length,
    groups: world.groups.length,
    grants: world.grants.length,
    tagGrants: ix.tagGrants.length,
    filters: ix.fName.length,
    guardrails: world.guardrails.length,
    tagKeys: world.tagKeys.length,
    tagSignatures: ix.nSigs,
  };
  return {
    world,
    get stats(): EngineStats {
      let cached = 0;
      for (const p of ix.psets) if (p !== undefined) cached++;
      return { ...counts, principalSetsCached: cached };
    },
    authorize: (req) => authorizeWith(ix, req),
    effectivePermissions: (principal, now) => effectivePermissionsWith(ix, principal, now ?? Date.now()),
    whoCanAccess: (resource, action, now) => whoCanAccessWith(ix, resource, action, now ?? Date.now()),
    principalSetOf(principal) {
      const pid = ix.pidByRef.get(principal);
      if (pid === undefined || ix.pExists[pid] !== 1) return null;
      return new Set([...psetOf(ix, pid).members].map((p) => ix.pRef[p] as PrincipalRef));
    },
  };
}
