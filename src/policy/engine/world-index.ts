/**
 * The world index: everything a decision reads, built once per world from
 * the catalog index, tag signatures, principal ids, grant and guardrail
 * indexes, plus the per-table summary line the hot path reads first and the
 * scratch buffers that keep it from allocating. Principal sets and the
 * answers shared between decisions are filled in lazily.
 */
import type { PolicyWorld } from '../model.js';
import type { CatalogIndex } from './catalog-index.js';
import { catalogIndexOf } from './catalog-index.js';
import { HAS_COLUMNS_GRANTS, HAS_FILTER_GRANTS, HAS_TABLE_GRANTS, TABLE_STRIDE, TI_CAT, TI_COL_BASE, TI_COL_SIG, TI_DB, TI_FLAGS, TI_N_COL_SIGS, TI_N_COLS, TI_SIG } from './constants.js';
import type { GrantIndex, GuardrailIndex, Index, PSet, Scratch } from './types.js';
import { buildFilterIndex, buildGrantIndex } from './grant-index.js';
import { buildGuardrailIndex } from './guardrail-index.js';
import { buildPrincipalIndex } from './principal-sets.js';
import type { TagIndex } from './tag-signatures.js';
import { buildTagIndex } from './tag-signatures.js';




export function buildIndex(world: PolicyWorld, useMemo: boolean): Index {
  const cat = catalogIndexOf(world);
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
    tagProgramsByGrants: new Map(),
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
