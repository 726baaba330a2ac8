/**
 * Chain verification of one source, at two levels.
 *
 * Events: every stored event carries `seq`, `hash` = md5 of its row
 * (ROW_HASH_SQL, recomputed by DuckDB over the columns read back) and
 * `prev_hash` = the previous event's `hash`. Walking the events in `seq`
 * order:
 *
 * - the recomputed digest differs from the stored one → that event was
 *   **modified**;
 * - positions are missing (a gap in `seq`, or fewer events than the chain
 *   head recorded in the state store) → events were **deleted**, unless
 *   retention removed exactly those positions;
 * - an intact event whose prev_hash is the hash of an event other than its
 *   predecessor → events were **reordered** (their positions swapped);
 * - two events at one position → **duplicated**.
 *
 * Batches: the state store records every written batch with the sha256 of
 * each of its files, in a sha256 chain over batches (flusher.ts `batchHash`)
 * whose head is on the source. A file whose bytes changed, that is missing,
 * or that no batch recorded is reported even when its events look intact
 * (someone recomputed their digests), and an altered batch record breaks the
 * chain. The event level names the event; the batch level is the proof.
 *
 * The heads live in the state store, so truncating or rewriting the lake
 * cannot go unnoticed by someone who can only write the lake. Someone who can
 * rewrite both the lake and the database can rebuild everything: a hash chain
 * is tamper evidence, not a signature.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { GENESIS_HASH } from './lake-schema.js';
import { ROW_HASH_SQL } from './lake-sql.js';
import { batchHash, type BatchRecord } from './flusher.js';
import { sha256File } from './parquet-writer.js';
import type { DuckDb } from '../lake/duckdb.js';

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
  /** Whether the event's recomputed digest equals `hash`. */
  readonly intact: boolean;
  /** `metadata.uid`. */
  readonly uid?: string;
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
    const named = { ...(r.uid === undefined ? {} : { eventUid: r.uid }), ...(r.file === undefined ? {} : { file: r.file }) };
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
    const intact = r.intact;
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

/** Reads every event of a source folder (hive partitions) as chain rows, the digest recomputed by DuckDB. */
export async function readChainRows(duckdb: DuckDb, glob: string): Promise<ChainRow[]> {
  const files = await duckdb.all<{ file: string }>('SELECT file FROM glob($1)', [glob]);
  if (files.length === 0) return [];
  const rows = await duckdb.all<{ seq: number; prev_hash: string; hash: string; intact: boolean | null; uid: string | null; filename: string }>(
    `SELECT seq, prev_hash, hash, ${ROW_HASH_SQL} = hash AS intact, metadata.uid AS uid, filename
     FROM read_parquet($1, filename = true, union_by_name = true)`,
    [glob],
  );
  return rows.map((r) => ({
    seq: Number(r.seq),
    prevHash: String(r.prev_hash),
    hash: String(r.hash),
    intact: r.intact === true,
    ...(r.uid === null ? {} : { uid: r.uid }),
    file: r.filename,
  }));
}

export interface StoredBatch extends BatchRecord {
  readonly prevHash: string;
  readonly hash: string;
}

/**
 * The batch level: the chain of batch records (from the genesis to the head
 * on the source), and each recorded file against the bytes on disk. `root` is
 * the source folder; `present` every Parquet file under it (absolute paths);
 * `expiredPartitions` the partitions retention removed (relative, `/`).
 * File problems are reported only when the event level found nothing (it
 * names the event; the file level then adds nothing but noise).
 */
export async function verifyBatches(
  root: string,
  batches: readonly StoredBatch[],
  head: { batchHash: string; pendingBatch?: number },
  present: readonly string[],
  expiredPartitions: ReadonlySet<string>,
  eventProblems: readonly ChainProblem[],
  memo: Map<string, string | undefined> = new Map(),
): Promise<ChainProblem[]> {
  const problems: ChainProblem[] = [];
  let prev = GENESIS_HASH;
  const recorded = new Set<string>();
  // Files a later compaction merged (compaction.ts): expected gone, and replaced exactly as their batch recorded them.
  const replacedBy = new Map<string, { readonly sha256: string; readonly batch: number }>();
  for (const b of batches) for (const f of b.files) for (const r of f.replaces ?? []) replacedBy.set(r.file, { sha256: r.sha256, batch: b.batch });
  for (const b of batches) {
    if (b.prevHash !== prev || batchHash(b.prevHash, b) !== b.hash) {
      problems.push({ kind: 'modified', seq: b.firstSeq, message: `the record of batch ${b.batch} (events ${b.firstSeq} to ${b.lastSeq}) in the state store does not match the batch chain` });
    }
    prev = b.hash;
    for (const f of b.files) {
      const abs = path.resolve(root, ...f.file.split('/'));
      const replaced = replacedBy.get(f.file);
      if (replaced !== undefined) {
        if (replaced.sha256 !== f.sha256) {
          problems.push({ kind: 'modified', seq: b.firstSeq, message: `file ${f.file} of batch ${b.batch} was changed before compaction ${replaced.batch} merged it: the sha256 it replaced is not the one recorded`, file: abs });
        }
        continue;
      }
      recorded.add(abs);
      if (expiredPartitions.has(path.posix.dirname(f.file)) || eventProblems.length > 0) continue;
      const sha = await fileSha256(abs, memo);
      if (sha === undefined) {
        problems.push({ kind: 'deleted', seq: b.firstSeq, message: `file ${f.file} of batch ${b.batch} (${f.events} events) is missing`, file: abs });
      } else if (sha !== f.sha256) {
        problems.push({ kind: 'modified', seq: b.firstSeq, message: `file ${f.file} of batch ${b.batch} was rewritten: its sha256 no longer matches the batch chain`, file: abs });
      }
    }
  }
  if (prev !== head.batchHash) problems.push({ kind: 'truncated', seq: batches[batches.length - 1]?.lastSeq ?? 0, message: 'the batch chain does not end at the head recorded on the source' });
  const pendingName = head.pendingBatch === undefined ? undefined : `b${String(head.pendingBatch).padStart(12, '0')}.parquet`;
  for (const f of eventProblems.length > 0 ? [] : present) {
    const abs = path.resolve(f);
    if (recorded.has(abs) || path.basename(abs) === pendingName) continue;
    problems.push({ kind: 'duplicated', seq: 0, message: `file ${path.relative(root, abs).split(path.sep).join('/')} is not part of the recorded chain`, file: abs });
  }
  return problems;
}

/** sha256 of a file, or undefined when it cannot be read; memoized per verify run by the caller's map. */
export async function fileSha256(abs: string, memo?: Map<string, string | undefined>): Promise<string | undefined> {
  if (memo?.has(abs) === true) return memo.get(abs);
  let sha: string | undefined;
  try {
    sha = await sha256File(abs);
  } catch {
    sha = undefined;
  }
  memo?.set(abs, sha);
  return sha;
}

/**
 * Files whose bytes still match the sha256 their batch recorded (absolute
 * paths). Their events are intact whatever their digests say: a DuckDB
 * upgrade that changed `hash()` cannot make an untouched lake fail to verify.
 */
export async function unchangedFiles(root: string, batches: readonly StoredBatch[], memo: Map<string, string | undefined>): Promise<Set<string>> {
  const out = new Set<string>();
  for (const b of batches) {
    for (const f of b.files) {
      const abs = path.resolve(root, ...f.file.split('/'));
      if ((await fileSha256(abs, memo)) === f.sha256) out.add(abs);
    }
  }
  return out;
}

/** Whether a path exists (a missing source folder verifies as empty). */
export async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}
