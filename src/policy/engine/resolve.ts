/**
 * Resolving a request: action and level names to indexes, which
 * (level, action) pairs are decided at all, and a resource reference to
 * interned ids.
 */
import type { Permission, ResourceRef } from '../model.js';
import { ACTIONS_AT } from '../model.js';
import { ACTION_INDEX, I_DESCRIBE, I_SELECT, LEVEL_CATALOG, LEVEL_COLUMN, LEVEL_DATABASE, LEVEL_TABLE, N_ACTIONS, TABLE_STRIDE, TI_CAT, TI_COL_BASE, TI_DB, TI_SIG } from './constants.js';
import type { Index } from './world-index.js';
import { columnIndex } from './catalog-index.js';

/** A resolved resource: level and ids (-1 where not applicable). */
export interface Res {
  readonly level: number;
  readonly cat: number;
  readonly db: number;
  readonly table: number;
  /** Column position within the table. */
  readonly col: number;
}

export function resolve(ix: Index, r: ResourceRef): Res | null {
  if (r.level === 'table' || r.level === 'column') return resolveTable(ix, r);
  const cat = ix.catByName.get(r.catalog);
  if (cat === undefined) return null;
  if (r.level === 'catalog') return { level: LEVEL_CATALOG, cat, db: -1, table: -1, col: -1 };
  const db = ix.dbByName[cat]?.get(r.database);
  if (db === undefined) return null;
  if (r.level === 'database') return { level: LEVEL_DATABASE, cat, db, table: -1, col: -1 };
  const never: never = r;
  return never;
}

/**
 * A table or column: one lookup by bare name, then each candidate's database
 * and catalog names compared, instead of a catalog, a database and a table
 * lookup. On a large catalog each lookup is a cache miss or two, and they
 * were most of a cold decision's time.
 */
function resolveTable(ix: Index, r: Extract<ResourceRef, { level: 'table' | 'column' }>): Res | null {
  const info = ix.tableInfo;
  let table = ix.tableByBare.get(r.table) ?? -1;
  while (table >= 0) {
    const at = table * TABLE_STRIDE;
    if (ix.dbNames[info[at + TI_DB] as number] === r.database && ix.catNames[info[at + TI_CAT] as number] === r.catalog) break;
    table = ix.tableSameName[table] as number;
  }
  if (table < 0) return null;
  const cat = info[table * TABLE_STRIDE + TI_CAT] as number;
  const db = info[table * TABLE_STRIDE + TI_DB] as number;
  if (r.level === 'table') return { level: LEVEL_TABLE, cat, db, table, col: -1 };
  const col = columnIndex(ix, table, r.column);
  return col < 0 ? null : { level: LEVEL_COLUMN, cat, db, table, col };
}

export function sigOf(ix: Index, r: Res): number {
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

// Switches rather than maps: the names are interned literals, so a switch is a few
// pointer comparisons, where a map lookup hashes on every call.
export function levelIndex(level: string): number {
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

export function actionIndex(action: string): number {
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
export const APPLICABLE = new Uint8Array(4 * N_ACTIONS);
for (const [level, actions] of Object.entries(ACTIONS_AT)) {
  for (const a of actions) APPLICABLE[levelIndex(level) * N_ACTIONS + ACTION_INDEX[a]] = 1;
}
