/**
 * Resolving a request: action and level names to indexes, which
 * (level, action) pairs are decided at all, and a resource reference to
 * interned ids.
 */
import type { Permission, ResourceRef } from '../model.js';
import { ACTIONS_AT } from '../model.js';
import { ACTION_INDEX, I_DESCRIBE, I_SELECT, LEVEL_CATALOG, LEVEL_COLUMN, LEVEL_DATABASE, LEVEL_TABLE, N_ACTIONS, TABLE_STRIDE, TI_COL_BASE, TI_SIG } from './constants.js';
import type { Index, Res } from './types.js';
import { columnIndex, findTableIn } from './catalog-index.js';


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
 * A table or column: its catalog and database looked up by name (small maps
 * that stay in cache), then the table by database and name in the one hash
 * table over every table (catalog-index.ts, `TableSlots`). An earlier
 * version looked the bare name up in one map over every table and compared
 * the database and catalog names of the candidates, which read two more
 * strings per request; the next one had a Map per database, and measured cold
 * (memo off, 100k tables) its lookup was a fifth of a decision's time.
 */
function resolveTable(ix: Index, r: Extract<ResourceRef, { level: 'table' | 'column' }>): Res | null {
  const cat = ix.catByName.get(r.catalog);
  if (cat === undefined) return null;
  const db = (ix.dbByName[cat] as Map<string, number>).get(r.database);
  if (db === undefined) return null;
  const table = findTableIn(ix, db, r.table);
  if (table < 0) return null;
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
