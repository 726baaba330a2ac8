/**
 * Grant coverage, indexed: every grant as columns of typed arrays (holder,
 * kind, permission bits, expiry, target ids, column masks, compiled tag
 * expression), listed by the catalog, database or table it covers so a
 * decision only looks at the grants that can touch its resource. Row
 * filters are indexed here too, since only filter grants refer to them.
 */
import type { Reason } from '../decision.js';
import type { Grant, Permission, PolicyWorld, Table } from '../model.js';
import { GRANTABLE_ON } from '../model.js';
import type { Predicate } from '../predicate.js';
import { toSql } from '../predicate.js';
import { compareText } from '../principals.js';
import { expiryOf, grantReason, selectColumns } from '../reference-evaluator.js';
import type { CatalogIndex } from './catalog-index.js';
import { emptyLists, findDb, findTable, pushAt } from './catalog-index.js';
import { ACTION_INDEX, KIND_OF } from './constants.js';
import type { FilterIndex, GrantIndex, PrincipalIndex } from './types.js';
import type { CompiledExpr, TagIndex } from './tag-signatures.js';
import { compileExpr } from './tag-signatures.js';



export function permMask(perms: readonly Permission[], allowed: readonly Permission[]): number {
  let m = 0;
  for (const p of perms) {
    const i = ACTION_INDEX[p];
    if (i !== undefined && allowed.includes(p)) m |= 1 << i;
  }
  return m;
}

export function maskOf(cols: readonly string[], selected: readonly { readonly name: string }[]): Uint8Array {
  const mask = new Uint8Array(cols.length);
  // by name, so duplicate column names (an invalid world) behave as in the reference
  for (const c of selected) cols.forEach((n, i) => {
    if (n === c.name) mask[i] = 1;
  });
  return mask;
}

export function buildFilterIndex(world: PolicyWorld, cat: CatalogIndex): FilterIndex {
  const filterByKey = new Map<string, number>();
  const fName: string[] = [];
  const fColMask: Uint8Array[] = [];
  const fPred: (Predicate | null)[] = [];
  const fSql: (string | null)[] = [];
  for (const f of world.filters) {
    const t = findTable(cat, f.catalog, f.database, f.table);
    if (t < 0) continue;
    const key = `${t}/${f.name}`;
    if (filterByKey.has(key)) continue;
    filterByKey.set(key, fName.length);
    fName.push(f.name);
    fColMask.push(maskOf(cat.colNames[t] as string[], selectColumns(cat.tables[t] as Table, f.columns, f.excludedColumns, 'all')));
    fPred.push(f.predicate);
    fSql.push(f.predicate === null ? null : toSql(f.predicate));
  }
  return { fName, fColMask, fPred, fSql, filterByKey };
}

export function buildGrantIndex(world: PolicyWorld, cat: CatalogIndex, tags: TagIndex, principals: PrincipalIndex, filters: FilterIndex): GrantIndex {
  const grants = world.grants;
  const nG = grants.length;
  const nTables = cat.tableKey.length;
  const ix: GrantIndex = {
    grants,
    gPid: new Int32Array(nG),
    gKind: new Uint8Array(nG),
    gPerm: new Int32Array(nG),
    gGrantable: new Int32Array(nG),
    gExpiry: new Float64Array(nG),
    gRank: new Int32Array(nG),
    gCat: new Int32Array(nG).fill(-1),
    gDb: new Int32Array(nG).fill(-1),
    gTable: new Int32Array(nG).fill(-1),
    gColMask: new Array<Uint8Array | undefined>(nG),
    gFilter: new Int32Array(nG).fill(-1),
    gExpr: new Array<CompiledExpr | undefined>(nG),
    gReason: new Array<Reason>(nG),
    byCatalog: emptyLists(cat.catNames.length),
    byDb: emptyLists(cat.dbNames.length),
    byTable: new Array<number[] | undefined>(nTables),
    colGrantsByTable: new Array<number[] | undefined>(nTables),
    filterGrantsByTable: new Array<number[] | undefined>(nTables),
    tagGrants: [],
  };
  [...grants.keys()].sort((a, b) => compareText((grants[a] as Grant).id, (grants[b] as Grant).id)).forEach((g, rank) => (ix.gRank[g] = rank));
  grants.forEach((g, i) => indexGrant(ix, i, g, cat, tags, principals, filters));
  return ix;
}

/** Fills grant `i`'s columns and lists it under what it covers. */
function indexGrant(ix: GrantIndex, i: number, g: Grant, cat: CatalogIndex, tags: TagIndex, principals: PrincipalIndex, filters: FilterIndex): void {
  const r = g.resource;
  // every grant's principal was interned with the principals
  ix.gPid[i] = principals.pidByRef.get(g.principal) as number;
  ix.gKind[i] = KIND_OF[r.kind];
  ix.gPerm[i] = permMask(g.permissions, GRANTABLE_ON[r.kind]);
  ix.gGrantable[i] = permMask(g.grantable, GRANTABLE_ON[r.kind]) & (ix.gPerm[i] as number);
  ix.gExpiry[i] = expiryOf(g);
  ix.gReason[i] = Object.freeze(grantReason(g));
  const c = cat.catByName.get(r.catalog) ?? -1;
  ix.gCat[i] = c;
  switch (r.kind) {
    case 'catalog':
      if (c >= 0) pushAt(ix.byCatalog, c, i);
      break;
    case 'database': {
      const d = findDb(cat, r.catalog, r.database);
      ix.gDb[i] = d;
      if (d >= 0) pushAt(ix.byDb, d, i);
      break;
    }
    case 'table': {
      const t = findTable(cat, r.catalog, r.database, r.table);
      ix.gTable[i] = t;
      if (t >= 0) (ix.byTable[t] ??= []).push(i);
      break;
    }
    case 'columns': {
      const t = findTable(cat, r.catalog, r.database, r.table);
      ix.gTable[i] = t;
      if (t < 0) break;
      ix.gColMask[i] = maskOf(cat.colNames[t] as string[], selectColumns(cat.tables[t] as Table, r.columns, r.excludedColumns, 'none'));
      (ix.colGrantsByTable[t] ??= []).push(i);
      break;
    }
    case 'filter': {
      const t = findTable(cat, r.catalog, r.database, r.table);
      ix.gTable[i] = t;
      const f = t < 0 ? undefined : filters.filterByKey.get(`${t}/${r.filter}`);
      if (f === undefined) break;
      ix.gFilter[i] = f;
      (ix.filterGrantsByTable[t] ??= []).push(i);
      break;
    }
    case 'tag':
      ix.gExpr[i] = compileExpr(tags, r.expression);
      if (c >= 0) ix.tagGrants.push(i);
      break;
    default: {
      const never: never = r;
      return never;
    }
  }
}
