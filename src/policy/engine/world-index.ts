/**
 * The world index: everything a decision reads, built once per world from
 * the catalog index, tag signatures, principal ids, grant and guardrail
 * indexes, plus the per-table summary line the hot path reads first and the
 * scratch buffers that keep it from allocating. Principal sets and the
 * answers shared between decisions are filled in lazily.
 */
import type { ColumnAccess, Reason } from '../decision.js';
import type { PolicyWorld } from '../model.js';
import type { CatalogIndex } from './catalog-index.js';
import { buildCatalogIndex } from './catalog-index.js';
import { HAS_COLUMNS_GRANTS, HAS_FILTER_GRANTS, HAS_TABLE_GRANTS, TABLE_STRIDE, TI_CAT, TI_COL_BASE, TI_COL_SIG, TI_DB, TI_FLAGS, TI_N_COL_SIGS, TI_N_COLS, TI_SIG } from './constants.js';
import type { FilterIndex, GrantIndex } from './grant-index.js';
import { buildFilterIndex, buildGrantIndex } from './grant-index.js';
import type { GuardrailIndex } from './guardrail-index.js';
import { buildGuardrailIndex } from './guardrail-index.js';
import type { PrincipalIndex, PSet } from './principal-sets.js';
import { buildPrincipalIndex } from './principal-sets.js';
import type { TagIndex } from './tag-signatures.js';
import { buildTagIndex } from './tag-signatures.js';

export type Index = CatalogIndex &
  TagIndex &
  PrincipalIndex &
  FilterIndex &
  GrantIndex &
  GuardrailIndex & {
    readonly world: PolicyWorld;
    /** Whether table and column decisions are memoized (see memo.ts). */
    readonly useMemo: boolean;
    /**
     * Per table, one cache line of what every decision on it reads, at
     * `t * TABLE_STRIDE`: signature, first column id, column count, which
     * per-table grant lists exist (most tables have none, so those lists are
     * not even looked at), and its database and catalog ids.
     */
    readonly tableInfo: Int32Array;
    /**
     * Per table, W words: the guardrails whose expression matches the table,
     * its database or the catalog (signature 0), before scope and principals.
     * One read where a decision read three signatures' rows.
     */
    readonly tableGuard: Int32Array;
    readonly psets: (PSet | undefined)[];
    /** By key=value id, `(nSigs + 31) >>> 5` words: the signatures carrying it, a bit each (reach.ts). */
    readonly kvSigBits: Int32Array;
    /** By grant id, for tag grants: the signatures its expression matches, a bit each, filled on first use (reach.ts). */
    readonly tagGrantSigs: (Int32Array | undefined)[];
    /** The principal sets already built, by the principal text callers pass: one lookup on the hot path. */
    readonly psetByRef: Map<string, PSet>;
    // one-element answers, shared because a single matched grant is the common case
    readonly gIdList: (readonly string[])[];
    readonly gReasonList: (readonly Reason[])[];
    // lazily built all-rows column answers per column-name list (see catalog-index), by visible-column bitmask
    readonly fullColumns: Map<readonly string[], Map<number, readonly ColumnAccess[]>>;
    /** Frozen deny answers of table-level decisions, by a hash of the denying guardrails' bitmask. */
    readonly guardAnswers: Map<number, GuardAnswer[]>;
    readonly scratch: Scratch;
  };

/** What a decision denied by a set of guardrails reports, shared by every such decision. */
export interface GuardAnswer {
  readonly words: Int32Array;
  readonly reasons: readonly Reason[];
  readonly deniedBy: readonly string[];
}

/** Reusable buffers, so the hot path does not allocate. */
export interface Scratch {
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

export function buildIndex(world: PolicyWorld, useMemo: boolean): Index {
  const cat = buildCatalogIndex(world);
  const tags = buildTagIndex(world, cat);
  const principals = buildPrincipalIndex(world);
  const filters = buildFilterIndex(world, cat);
  const grants = buildGrantIndex(world, cat, tags, principals, filters);
  const guardrails = buildGuardrailIndex(world, cat, tags, principals, grants);
  return {
    world,
    useMemo,
    ...cat,
    ...tags,
    ...principals,
    ...filters,
    ...grants,
    ...guardrails,
    tableInfo: tableSummaries(cat, tags, grants),
    tableGuard: tableGuards(cat, tags, guardrails),
    psets: new Array<PSet | undefined>(principals.pRef.length),
    kvSigBits: kvSigBits(tags),
    tagGrantSigs: new Array<Int32Array | undefined>(grants.grants.length),
    psetByRef: new Map(),
    gIdList: grants.grants.map((g) => Object.freeze([g.id])),
    gReasonList: grants.gReason.map((r) => Object.freeze([r])),
    fullColumns: new Map(),
    guardAnswers: new Map(),
    scratch: newScratch(cat, grants.grants.length, guardrails.W),
  };
}

function tableSummaries(cat: CatalogIndex, tags: TagIndex, grants: GrantIndex): Int32Array {
  const nTables = cat.tableKey.length;
  const tableInfo = new Int32Array(nTables * TABLE_STRIDE);
  for (let t = 0; t < nTables; t++) {
    const at = t * TABLE_STRIDE;
    tableInfo[at + TI_SIG] = tags.tableSig[t] as number;
    tableInfo[at + TI_COL_BASE] = cat.colBase[t] as number;
    tableInfo[at + TI_N_COLS] = (cat.colNames[t] as string[]).length;
    tableInfo[at + TI_FLAGS] =
      (grants.byTable[t] === undefined ? 0 : HAS_TABLE_GRANTS) |
      (grants.colGrantsByTable[t] === undefined ? 0 : HAS_COLUMNS_GRANTS) |
      (grants.filterGrantsByTable[t] === undefined ? 0 : HAS_FILTER_GRANTS);
    tableInfo[at + TI_DB] = cat.tableDb[t] as number;
    tableInfo[at + TI_CAT] = cat.tableCat[t] as number;
    columnSigs(tableInfo, at, tags.colSig);
  }
  return tableInfo;
}

function tableGuards(cat: CatalogIndex, tags: TagIndex, guardrails: GuardrailIndex): Int32Array {
  const { W, sigGuard } = guardrails;
  const nTables = cat.tableKey.length;
  const out = new Int32Array(nTables * W);
  for (let t = 0; t < nTables; t++) {
    const s1 = (tags.dbSig[cat.tableDb[t] as number] as number) * W;
    const s2 = (tags.tableSig[t] as number) * W;
    for (let w = 0; w < W; w++) out[t * W + w] = (sigGuard[w] as number) | (sigGuard[s1 + w] as number) | (sigGuard[s2 + w] as number);
  }
  return out;
}

function kvSigBits(tags: TagIndex): Int32Array {
  const words = (tags.nSigs + 31) >>> 5;
  const out = new Int32Array(tags.kvSigs.length * words);
  tags.kvSigs.forEach((sigs, v) => {
    for (const sg of sigs) out[v * words + (sg >>> 5)] = (out[v * words + (sg >>> 5)] as number) | (1 << (sg & 31));
  });
  return out;
}

/** Fills TI_COL_SIG and TI_N_COL_SIGS of the summary line at `at`. */
function columnSigs(tableInfo: Int32Array, at: number, colSig: Int32Array): void {
  const own = tableInfo[at + TI_SIG] as number;
  const base = tableInfo[at + TI_COL_BASE] as number;
  let first = -1;
  let n = 0;
  for (let i = base; i < base + (tableInfo[at + TI_N_COLS] as number); i++) {
    const sg = colSig[i] as number;
    if (sg === own || sg === first) continue;
    if (first < 0) first = sg;
    n++;
  }
  tableInfo[at + TI_COL_SIG] = first;
  // counted loosely (a third signature repeating the second counts again): past one, readers walk the columns anyway
  tableInfo[at + TI_N_COL_SIGS] = n;
}

function newScratch(cat: CatalogIndex, nG: number, W: number): Scratch {
  const maxCols = cat.colNames.reduce((m, c) => Math.max(m, c.length), 0);
  const buffer = (): Int32Array => new Int32Array(nG + 1);
  return {
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
  };
}
