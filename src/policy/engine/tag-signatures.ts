/**
 * Tag signatures: every distinct effective-tag vector of a database, table or
 * column is interned once (most columns share their table's, most tables
 * their database's), so matching a tag expression is a few integer compares
 * per signature instead of a walk up the resource chain. Also the inverted
 * indexes from key=value to signatures to resources, which the listings use.
 */
import type { PolicyWorld, TagExpression } from '../model.js';
import type { CatalogIndex } from './catalog-index.js';
import { columnIndex, emptyLists, findDb, findTable, pushAt } from './catalog-index.js';

/** A tag expression over interned ids: for each key index, the allowed value ids. */
export interface CompiledExpr {
  /** A key or all values unknown to the world: nothing can match. */
  readonly never: boolean;
  readonly empty: boolean;
  readonly keys: Int32Array;
  readonly starts: Int32Array;
  readonly vals: Int32Array;
}

export interface TagIndex {
  readonly nKeys: number;
  readonly keyIndex: Map<string, number>;
  readonly kvIndex: Map<string, number>[];
  /** `nKeys` value ids per signature (-1: key absent); signature 0 is "no tags". */
  readonly sigVals: Int32Array;
  readonly nSigs: number;
  readonly dbSig: Int32Array;
  readonly tableSig: Int32Array;
  readonly colSig: Int32Array;
  readonly kvSigs: number[][];
  readonly sigDbs: number[][];
  readonly sigTables: number[][];
  readonly sigColTables: number[][];
}

/** Own assignments per resource id, as flat (key, key=value) pairs. */
interface OwnTags {
  readonly db: Map<number, number[]>;
  readonly table: Map<number, number[]>;
  readonly col: Map<number, number[]>;
}

export function buildTagIndex(world: PolicyWorld, cat: CatalogIndex): TagIndex {
  const { keyIndex, kvIndex, nKv } = internTagValues(world);
  const nKeys = keyIndex.size;
  const own = ownTags(world, cat, keyIndex, kvIndex);
  const { dbSig, tableSig, colSig, colTable, sigVals, nSigs } = deriveSignatures(cat, own, nKeys);
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
  for (const col of own.col.keys()) {
    const s = colSig[col] as number;
    const t = colTable[col] as number;
    const l = sigColTables[s] as number[];
    if (l[l.length - 1] !== t && !l.includes(t)) l.push(t);
  }
  return { nKeys, keyIndex, kvIndex, sigVals, nSigs, dbSig, tableSig, colSig, kvSigs, sigDbs, sigTables, sigColTables };
}

/** Interns the keys and key=value pairs seen in assignments. */
function internTagValues(world: PolicyWorld): { keyIndex: Map<string, number>; kvIndex: Map<string, number>[]; nKv: number } {
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
  return { keyIndex, kvIndex, nKv };
}

/** Own assignments per resource; the first assignment of a key wins (as in tags.ts). */
function ownTags(world: PolicyWorld, cat: CatalogIndex, keyIndex: Map<string, number>, kvIndex: Map<string, number>[]): OwnTags {
  const own: OwnTags = { db: new Map(), table: new Map(), col: new Map() };
  const addOwn = (map: Map<number, number[]>, id: number, k: number, kv: number): void => {
    const l = map.get(id);
    if (l === undefined) map.set(id, [k, kv]);
    else {
      for (let i = 0; i < l.length; i += 2) if (l[i] === k) return;
      l.push(k, kv);
    }
  };
  for (const a of world.tagAssignments) {
    const k = keyIndex.get(a.key) as number;
    const kv = (kvIndex[k] as Map<string, number>).get(a.value) as number;
    const r = a.resource;
    switch (r.level) {
      case 'database': {
        const d = findDb(cat, r.catalog, r.database);
        if (d >= 0) addOwn(own.db, d, k, kv);
        break;
      }
      case 'table': {
        const t = findTable(cat, r.catalog, r.database, r.table);
        if (t >= 0) addOwn(own.table, t, k, kv);
        break;
      }
      case 'column': {
        const t = findTable(cat, r.catalog, r.database, r.table);
        const c = t < 0 ? -1 : columnIndex(cat, t, r.column);
        if (c >= 0) addOwn(own.col, (cat.colBase[t] as number) + c, k, kv);
        break;
      }
      default: {
        const never: never = r;
        return never;
      }
    }
  }
  return own;
}

/** Each resource's signature: its parent's vector with its own assignments laid over it. */
function deriveSignatures(cat: CatalogIndex, own: OwnTags, nKeys: number) {
  const nTables = cat.tableKey.length;
  const { colBase, colNames, tableDb } = cat;
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
  const derive = (parentSig: number, assigned: number[]): number => {
    const vec = Int32Array.from(sigValsL.slice(parentSig * nKeys, parentSig * nKeys + nKeys));
    for (let i = 0; i < assigned.length; i += 2) vec[assigned[i] as number] = assigned[i + 1] as number;
    return internVec(vec);
  };
  const dbSig = new Int32Array(cat.dbNames.length);
  for (const [d, assigned] of own.db) dbSig[d] = derive(0, assigned);
  const tableSig = new Int32Array(nTables);
  for (let t = 0; t < nTables; t++) {
    const assigned = own.table.get(t);
    tableSig[t] = assigned === undefined ? (dbSig[tableDb[t] as number] as number) : derive(dbSig[tableDb[t] as number] as number, assigned);
  }
  const colSig = new Int32Array(cat.nCols);
  for (let t = 0; t < nTables; t++) colSig.fill(tableSig[t] as number, colBase[t], (colBase[t] as number) + (colNames[t] as string[]).length);
  const colTable = new Int32Array(cat.nCols);
  for (let t = 0; t < nTables; t++) colTable.fill(t, colBase[t], (colBase[t] as number) + (colNames[t] as string[]).length);
  for (const [col, assigned] of own.col) colSig[col] = derive(tableSig[colTable[col] as number] as number, assigned);
  return { dbSig, tableSig, colSig, colTable, sigVals: Int32Array.from(sigValsL), nSigs: sigByText.size };
}

/** Compiles a tag expression against the interned keys and values. */
export function compileExpr(tags: TagIndex, expr: TagExpression): CompiledExpr {
  const keys: number[] = [];
  const starts: number[] = [0];
  const vals: number[] = [];
  let never = false;
  for (const key of Object.keys(expr)) {
    const k = tags.keyIndex.get(key);
    if (k === undefined) {
      never = true;
      continue;
    }
    let found = 0;
    for (const v of expr[key] ?? []) {
      const id = (tags.kvIndex[k] as Map<string, number>).get(v);
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
}

export function matchSig(ce: CompiledExpr, sigVals: Int32Array, nKeys: number, sig: number): boolean {
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

/** Signatures an expression matches, through the key=value inverted index. */
export function sigsMatching(ix: TagIndex, ce: CompiledExpr): number[] {
  if (ce.never) return [];
  if (ce.keys.length === 0) return Array.from({ length: ix.nSigs }, (_, i) => i);
  const out: number[] = [];
  for (let j = ce.starts[0] as number; j < (ce.starts[1] as number); j++) {
    for (const sg of ix.kvSigs[ce.vals[j] as number] as number[]) if (matchSig(ce, ix.sigVals, ix.nKeys, sg)) out.push(sg);
  }
  return out;
}

/** Tables whose own tags, or one of whose columns' tags, match. */
export function tablesMatching(ix: TagIndex, ce: CompiledExpr): number[] {
  const out: number[] = [];
  for (const sg of sigsMatching(ix, ce)) {
    for (const t of ix.sigTables[sg] as number[]) out.push(t);
    for (const t of ix.sigColTables[sg] as number[]) out.push(t);
  }
  return out;
}
