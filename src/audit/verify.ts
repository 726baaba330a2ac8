/**
 * Hash-chain verification of one source. Every stored event carries `seq`,
 * `prev_hash` and `hash` = sha256(prev_hash ‖ "\n" ‖ canonical JSON of the
 * event). Walking the events in `seq` order:
 *
 * - the recomputed hash differs from the stored one → that event was
 *   **modified** (its content, or its prev_hash);
 * - positions are missing (a gap in `seq`, or fewer events than the chain
 *   head recorded in the state store) → events were **deleted**, unless
 *   retention removed exactly those positions;
 * - an intact event whose prev_hash is the hash of an event other than its
 *   predecessor → events were **reordered** (their positions swapped);
 * - two events at one position → **duplicated**.
 *
 * The head (`head_seq`, `head_hash`) lives in the state store, so truncating
 * or rewriting the lake's tail cannot go unnoticed by someone who can only
 * write the lake. Someone who can rewrite both the lake and the database can
 * rebuild the whole chain: a hash chain is tamper evidence, not a signature.
 */
import { canonicalJson, chainHash, EVENT_SCHEMA, GENESIS_HASH, stripNulls } from './lake-schema.js';
import type { DuckDb, Row } from '../lake/duckdb.js';

export type ProblemKind = 'modified' | 'deleted' | 'reordered' | 'duplicated' | 'truncated';

export interface ChainProblem {
  readonly kind: ProblemKind;
  /** The chain position concerned (for deletions: the first missing one). */
  readonly seq: number;
  readonly message: string;
  /** `metadata.uid` of the event, when one is there to name. */
  readonly eventUid?: string;
  readonly file?: string;
}

export interface VerifyReport {
  readonly source: string;
  readonly ok: boolean;
  readonly events: number;
  readonly headSeq: number;
  /** Positions removed by retention (not counted as deletions). */
  readonly expired: number;
  readonly problems: readonly ChainProblem[];
}

export interface ChainRow {
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
  readonly event: Record<string, unknown>;
  readonly file?: string;
}

const MAX_PROBLEMS = 1000;

/** Pure check over rows already read (any order). `expired` lists [from, to] seq ranges removed by retention. */
export function verifyChain(
  source: string,
  rows: readonly ChainRow[],
  head: { seq: number; hash: string },
  expired: ReadonlyArray<readonly [number, number]> = [],
): VerifyReport {
  const problems: ChainProblem[] = [];
  const add = (p: ChainProblem): void => {
    if (problems.length < MAX_PROBLEMS) problems.push(p);
  };
  const isExpired = (seq: number): boolean => expired.some(([a, b]) => seq >= a && seq <= b);
  const sorted = [...rows].sort((a, b) => a.seq - b.seq);
  const byHash = new Map<string, number>();
  for (const r of sorted) byHash.set(r.hash, r.seq);

  let expiredCount = 0;
  for (const [a, b] of expired) expiredCount += b - a + 1;

  // Chain positions: follow prev_hash links from each segment head (the genesis
  // event, or an event whose predecessor is missing). An intact link that puts an
  // event at another position than its seq means events were reordered.
  const nextOf = new Map<string, ChainRow>();
  for (const r of sorted) if (!nextOf.has(r.prevHash)) nextOf.set(r.prevHash, r);
  const chainPos = new Map<ChainRow, number>();
  for (const headRow of sorted) {
    if (chainPos.has(headRow)) continue;
    const isHead = headRow.prevHash === GENESIS_HASH || !byHash.has(headRow.prevHash);
    if (!isHead) continue;
    let pos = headRow.prevHash === GENESIS_HASH ? 1 : headRow.seq;
    for (let cur: ChainRow | undefined = headRow; cur !== undefined && !chainPos.has(cur); cur = nextOf.get(cur.hash)) chainPos.set(cur, pos++);
  }

  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let prevIntact = true;
  let lastSeq = 0;
  for (const r of sorted) {
    const uid = ((r.event['metadata'] as { uid?: unknown } | undefined)?.uid as string | undefined) ?? undefined;
    const named = { ...(uid === undefined ? {} : { eventUid: uid }), ...(r.file === undefined ? {} : { file: r.file }) };
    if (r.seq === lastSeq && lastSeq !== 0) {
      add({ kind: 'duplicated', seq: r.seq, message: `event ${r.seq} appears more than once`, ...named });
      continue;
    }
    if (r.seq > expectedSeq) {
      const missing: number[] = [];
      for (let s = expectedSeq; s < r.seq; s++) if (!isExpired(s)) missing.push(s);
      if (missing.length > 0) {
        const first = missing[0] as number;
        const last = missing[missing.length - 1] as number;
        add({
          kind: 'deleted',
          seq: first,
          message: first === last ? `event ${first} was deleted` : `events ${first} to ${last} were deleted (${missing.length} events)`,
        });
      }
    }
    const intact = chainHash(r.prevHash, canonicalJson(r.event)) === r.hash;
    const pos = chainPos.get(r);
    if (!intact) {
      add({ kind: 'modified', seq: r.seq, message: `event ${r.seq} was modified: its content no longer matches its hash`, ...named });
    } else if (pos !== undefined && pos !== r.seq) {
      const after = byHash.get(r.prevHash);
      add({
        kind: 'reordered',
        seq: r.seq,
        message: `event ${r.seq} is out of order: the chain puts it at position ${pos}${after === undefined ? '' : `, after the event now at ${after}`}`,
        ...named,
      });
    } else if (r.seq === expectedSeq && r.seq > 1 && r.prevHash !== prevHash && !byHash.has(r.prevHash) && !isExpired(r.seq - 1) && prevIntact) {
      add({ kind: 'deleted', seq: r.seq, message: `the event chained before event ${r.seq} is missing (events were deleted and the rest renumbered)`, ...named });
    }
    prevHash = r.hash;
    prevIntact = intact;
    expectedSeq = r.seq + 1;
    lastSeq = r.seq;
  }
  if (lastSeq < head.seq) {
    const missing: number[] = [];
    for (let s = lastSeq + 1; s <= head.seq; s++) if (!isExpired(s)) missing.push(s);
    if (missing.length > 0) {
      add({
        kind: 'truncated',
        seq: missing[0] as number,
        message: `events ${missing[0]} to ${head.seq} were deleted: the chain head recorded ${head.seq} events`,
      });
    }
  } else if (lastSeq === head.seq && lastSeq > 0 && prevHash !== head.hash && prevIntact) {
    add({ kind: 'modified', seq: lastSeq, message: `event ${lastSeq} does not match the chain head recorded in the state store` });
  } else if (lastSeq > head.seq) {
    add({ kind: 'duplicated', seq: head.seq + 1, message: `events after ${head.seq} are not part of the recorded chain` });
  }
  return { source, ok: problems.length === 0, events: sorted.length, headSeq: head.seq, expired: expiredCount, problems };
}

const OCSF_COLUMNS = Object.keys(EVENT_SCHEMA);

/** Reads every event of a source folder (hive partitions) as chain rows. */
export async function readChainRows(duckdb: DuckDb, glob: string): Promise<ChainRow[]> {
  const files = await duckdb.all<{ file: string }>('SELECT file FROM glob($1)', [glob]);
  if (files.length === 0) return [];
  const rows = await duckdb.all<Row>(
    `SELECT * EXCLUDE (region, accountid, eventday), filename FROM read_parquet($1, hive_partitioning = true, filename = true, union_by_name = true)`,
    [glob],
  );
  return rows.map((r) => {
    const event: Record<string, unknown> = {};
    for (const c of OCSF_COLUMNS) {
      const v = stripNulls(r[c]);
      if (v !== undefined) event[c] = v;
    }
    return { seq: Number(r['seq']), prevHash: String(r['prev_hash']), hash: String(r['hash']), event, file: String(r['filename']) };
  });
}
