/**
 * A read-only view of one catalog in the engine's catalog index: its tables
 * numbered from 0 in world order, its databases, and the name lookup. Readers
 * outside the engine (the warehouse sync) number tables per catalog; this
 * view gives them those numbers without a second index of every table name.
 */
import type { PolicyWorld, Table } from '../model.js';
import type { CatalogIndex } from './catalog-index.js';
import { catalogIndexOf, findTableIn } from './catalog-index.js';

export interface CatalogTables {
  /**
   * The catalog's tables in world order. As in the engine, a table of an undeclared catalog or
   * database, or a second table of one name, is left out.
   */
  readonly tables: readonly Table[];
  /** The catalog's database names, in world order. */
  readonly databases: readonly string[];
  /** Database number (into `databases`) of each table. */
  readonly dbOf: Int32Array;
  /** Table numbers of each database, ascending. */
  readonly tablesOf: readonly (readonly number[])[];
  /** The number of a table, -1 when the catalog has no such table. */
  find(database: string, table: string): number;
}

/** The view of a catalog, built once per catalog index (so once per world's catalog) and remembered. */
export function catalogTables(world: PolicyWorld, catalog: string): CatalogTables {
  const cat = catalogIndexOf(world);
  let m = views.get(cat);
  if (m === undefined) views.set(cat, (m = new Map()));
  let v = m.get(catalog);
  if (v === undefined) m.set(catalog, (v = buildView(cat, catalog)));
  return v;
}
const views = new WeakMap<CatalogIndex, Map<string, CatalogTables>>();

function buildView(cat: CatalogIndex, catalog: string): CatalogTables {
  const c = cat.catByName.get(catalog);
  const dbIds = c === undefined ? [] : (cat.dbsOfCat[c] as number[]);
  // engine table id → number in this catalog (-1: another catalog); ids ascend in world order
  const local = new Int32Array(cat.tables.length).fill(-1);
  const tables: Table[] = [];
  for (let g = 0; g < cat.tables.length; g++) {
    if (cat.tableCat[g] !== c) continue;
    local[g] = tables.length;
    tables.push(cat.tables[g] as Table);
  }
  const dbOf = new Int32Array(tables.length);
  const tablesOf = dbIds.map((d, n) =>
    (cat.tablesOfDb[d] as number[]).map((g) => {
      const t = local[g] as number;
      dbOf[t] = n;
      return t;
    }),
  );
  const dbByName = c === undefined ? undefined : cat.dbByName[c];
  return {
    tables,
    databases: dbIds.map((d) => cat.dbNames[d] as string),
    dbOf,
    tablesOf,
    find(database, table) {
      const d = dbByName?.get(database);
      const g = d === undefined ? -1 : findTableIn(cat, d, table);
      return g < 0 ? -1 : (local[g] as number);
    },
  };
}
