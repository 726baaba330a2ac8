/**
 * The catalog index: catalogs, databases, tables and columns interned to
 * small integers, with the name lookups that resolve a request's resource.
 * Duplicates (an invalid world) keep the first entry, as the reference does.
 */
import type { PolicyWorld, Table } from '../model.js';

export interface CatalogIndex {
  readonly catByName: Map<string, number>;
  readonly catNames: string[];
  readonly dbsOfCat: number[][];
  readonly dbByName: Map<string, number>[];
  readonly dbCat: Int32Array;
  readonly dbNames: string[];
  readonly dbKey: string[];
  readonly tablesOfDb: number[][];
  /** Every table by (database, name), for `findTableIn`: see `TableSlots`. */
  readonly tableSlots: TableSlots;
  readonly tableDb: Int32Array;
  readonly tableCat: Int32Array;
  readonly tableKey: string[];
  readonly tables: Table[];
  readonly colBase: Int32Array;
  readonly colNames: string[][];
  /** Built lazily for tables of more than 16 columns; smaller ones are searched. */
  readonly colMaps: (Map<string, number> | undefined)[];
  /** Column count of the whole world. */
  readonly nCols: number;
}

export function pushAt(lists: number[][], at: number, value: number): void {
  const l = lists[at];
  if (l === undefined) lists[at] = [value];
  else l.push(value);
}

export function emptyLists(n: number): number[][] {
  return Array.from({ length: n }, () => []);
}

export function buildCatalogIndex(world: PolicyWorld): CatalogIndex {
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
  // build only: duplicates keep the first table
  const tableByName: Map<string, number>[] = dbNames.map(() => new Map());
  const tableDbL: number[] = [];
  const tableCatL: number[] = [];
  const tableKey: string[] = [];
  const tableObjs: Table[] = [];
  const colNames: string[][] = [];
  const colBaseL: number[] = [];
  let nCols = 0;
  // tables with the same column names share one list: fewer objects, and fewer cache misses when deciding
  const sharedNames = new Map<string, string[]>();
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
    const names = t.columns.map((col) => col.name);
    const key = names.join('\u0000');
    const shared = sharedNames.get(key);
    if (shared === undefined) sharedNames.set(key, names);
    colNames.push(shared ?? names);
    colBaseL.push(nCols);
    nCols += t.columns.length;
  }
  const nTables = tableKey.length;
  const tableDb = Int32Array.from(tableDbL);
  return {
    catByName,
    catNames,
    dbsOfCat,
    dbByName,
    dbCat: Int32Array.from(dbCatL),
    dbNames,
    dbKey,
    tablesOfDb,
    tableSlots: buildTableSlots(tableObjs, tableDb),
    tableDb,
    tableCat: Int32Array.from(tableCatL),
    tableKey,
    tables: tableObjs,
    colBase: Int32Array.from(colBaseL),
    colNames,
    colMaps: new Array<Map<string, number> | undefined>(nTables),
    nCols,
  };
}

/**
 * The catalog index of a world, built once and shared by every engine and reader of that world,
 * and by worlds that share its catalogs, databases and tables arrays (a policy change that leaves
 * the catalog alone). Read-only for everyone; `colMaps` only fills in lazily.
 */
export function catalogIndexOf(world: PolicyWorld): CatalogIndex {
  let byDbs = built.get(world.tables);
  if (byDbs === undefined) built.set(world.tables, (byDbs = new WeakMap()));
  let byCats = byDbs.get(world.databases);
  if (byCats === undefined) byDbs.set(world.databases, (byCats = new WeakMap()));
  let ix = byCats.get(world.catalogs);
  if (ix === undefined) byCats.set(world.catalogs, (ix = buildCatalogIndex(world)));
  return ix;
}
const built = new WeakMap<PolicyWorld['tables'], WeakMap<PolicyWorld['databases'], WeakMap<PolicyWorld['catalogs'], CatalogIndex>>>();

export function findDb(ix: CatalogIndex, catalog: string, database: string): number {
  const c = ix.catByName.get(catalog);
  return c === undefined ? -1 : (ix.dbByName[c]?.get(database) ?? -1);
}

export function findTable(ix: CatalogIndex, catalog: string, database: string, table: string): number {
  const d = findDb(ix, catalog, database);
  return d < 0 ? -1 : findTableIn(ix, d, table);
}

/**
 * One open-addressing hash table over every table, keyed by database id and
 * name, where resolving a table looked its name up in its database's Map.
 * With 100k tables in 1,000 databases, the per-database Maps are 1,000
 * objects with their own hash tables: a cold lookup followed a Map object, its
 * table and its entry, each a likely cache miss. Here a lookup hashes the
 * name's characters (which it must read anyway), then reads one slot
 * (hash, id and database side by side) and confirms the exact name:
 * a hash collision can never resolve one table to another.
 */
export interface TableSlots {
  /** `capacity - 1`, capacity a power of two at least twice the table count. */
  readonly mask: number;
  /** Triples (hash, table id + 1, database id), side by side so a probe reads one cache line; 0 ids mark empty slots. */
  readonly slots: Int32Array;
  /** Bare names by table id. */
  readonly names: string[];
}

const SLOT = 3;

function buildTableSlots(tables: readonly Table[], tableDb: Int32Array): TableSlots {
  let capacity = 16;
  while (capacity < tables.length * 2) capacity *= 2;
  const mask = capacity - 1;
  const slots = new Int32Array(capacity * SLOT);
  const names = tables.map((t) => t.name);
  for (let id = 0; id < tables.length; id++) {
    const h = tableHash(tableDb[id] as number, names[id] as string);
    let at = h & mask;
    while (slots[at * SLOT + 1] !== 0) at = (at + 1) & mask;
    slots[at * SLOT] = h;
    slots[at * SLOT + 1] = id + 1;
    slots[at * SLOT + 2] = tableDb[id] as number;
  }
  return { mask, slots, names };
}

/** FNV-1a over the name's UTF-16 units, seeded with the database id. */
function tableHash(db: number, name: string): number {
  let h = (0x811c9dc5 ^ Math.imul(db, 0x9e3779b1)) | 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h;
}

/** The id of table `name` in database `db`, or -1. */
export function findTableIn(ix: CatalogIndex, db: number, name: string): number {
  const { mask, slots, names } = ix.tableSlots;
  const h = tableHash(db, name);
  for (let at = h & mask; ; at = (at + 1) & mask) {
    const id = (slots[at * SLOT + 1] as number) - 1;
    if (id < 0) return -1;
    if (slots[at * SLOT] === h && slots[at * SLOT + 2] === db && names[id] === name) return id;
  }
}

export function columnIndex(ix: CatalogIndex, t: number, name: string): number {
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
