/**
 * The small-integer codes the engine's typed arrays and hot path use:
 * action and level indexes, grant kinds, decision outcomes, and the layout
 * of the per-table summary line.
 */
import type { Grant, Permission } from '../model.js';

export const ACTION_INDEX: Readonly<Record<Permission, number>> = {
  DESCRIBE: 0,
  SELECT: 1,
  INSERT: 2,
  DELETE: 3,
  ALTER: 4,
  DROP: 5,
  CREATE_TABLE: 6,
};
export const N_ACTIONS = 7;
/**
 * A pseudo-action for tag programs: one of DESCRIBE, INSERT, DELETE, ALTER
 * and DROP, the actions whose grants a table's DESCRIBE collects in one pass.
 */
export const I_TABLE_DESCRIBE_SET = N_ACTIONS;
export const TABLE_DESCRIBE_SET_MASK = (1 << 0) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5);
/** Tag programs are kept per action and for the pseudo-action. */
export const N_PROGRAM_ACTIONS = N_ACTIONS + 1;
export const I_DESCRIBE = 0;
export const I_SELECT = 1;

export const LEVEL_CATALOG = 0;
export const LEVEL_DATABASE = 1;
export const LEVEL_TABLE = 2;
export const LEVEL_COLUMN = 3;

export const KIND_CATALOG = 0;
export const KIND_DATABASE = 1;
export const KIND_TABLE = 2;
export const KIND_COLUMNS = 3;
export const KIND_FILTER = 4;
export const KIND_TAG = 5;
export const KIND_OF: Readonly<Record<Grant['resource']['kind'], number>> = {
  catalog: KIND_CATALOG,
  database: KIND_DATABASE,
  table: KIND_TABLE,
  columns: KIND_COLUMNS,
  filter: KIND_FILTER,
  tag: KIND_TAG,
};

/** Outcome of one internal decision. */
export const ALLOW = 0;
export const DENY_GUARDRAIL = 1;
export const DENY_NO_GRANT = 2;
export type Status = typeof ALLOW | typeof DENY_GUARDRAIL | typeof DENY_NO_GRANT;

export const NONE: readonly never[] = Object.freeze([]);

export const TABLE_STRIDE = 8;
export const TI_SIG = 0;
export const TI_COL_BASE = 1;
export const TI_N_COLS = 2;
export const TI_FLAGS = 3;
/** The table's database and catalog ids: resolving a table reads them from the line it reads next anyway. */
export const TI_DB = 4;
export const TI_CAT = 5;
/**
 * The table's column signatures other than its own: most tables have none or
 * one, so TI_COL_SIG holds that one (-1 for none) and TI_N_COL_SIGS how many
 * there are; past one, readers walk the columns.
 */
export const TI_COL_SIG = 6;
export const TI_N_COL_SIGS = 7;
export const HAS_TABLE_GRANTS = 1;
export const HAS_COLUMNS_GRANTS = 2;
export const HAS_FILTER_GRANTS = 4;
