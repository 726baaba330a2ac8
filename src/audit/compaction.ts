/**
 * Compaction: merges the small files of a closed day partition (one per
 * flush, so up to 17,280 a day per server) into one, and keeps the chain
 * verifiable by recording the merge in it.
 *
 * A compaction is a record in the batch chain (`audit_batches`) like a
 * written batch, with the next batch number of the source: its one file is
 * the merged file `c<batch>.parquet` (sha256, events) and lists under
 * `replaces` each file it replaced with that file's sha256. The batch hash
 * covers the `replaces` lines (flusher.ts `batchHash`), so the record cannot
 * be altered without breaking the chain. Verify (verify.ts `verifyBatches`)
 * then expects the merged file instead of the replaced ones, and checks that
 * each replaced file's sha256 in the compaction equals the one its own batch
 * recorded: a compaction cannot launder a file that was changed before it.
 * The events themselves are copied unchanged (their `seq`, `hash`,
 * `prev_hash`), so the event-level chain is the same before and after.
 *
 * Before merging, each input file's sha256 is checked against the chain; a
 * mismatch refuses the compaction of that partition (verify names it).
 *
 * Crash safety, in this order:
 *   1. the merged file is written beside the others under a hidden name
 *      (`.compact-<random>.tmp`, which no `*.parquet` glob sees), fsynced,
 *      and renamed to `.c-<sha256>.tmp`;
 *   2. one transaction records the compaction in the chain;
 *   3. `.c-<sha256>.tmp` is renamed to `c<batch>.parquet`, and the replaced
 *      files are deleted.
 * `recover` (run before every compaction, and by verify) finishes step 3 of
 * any recorded compaction and removes hidden files no record names (a crash
 * before step 2). Between the rename and the deletes a reader may see an
 * event twice for a moment; partitions of today are never compacted, so the
 * monitors' usual windows (recent events) are not affected.
 *
 * Compaction and retention run under one cross-server lock
 * (`audit.maintenance`, store/run-once.ts).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Db } from '../store/db.js';
import type { DuckDb } from '../lake/duckdb.js';
import { StewardError } from '../errors.js';
import { batchHash, type BatchRecord, type RecordedFile } from './flusher.js';
import { sha256File } from './parquet-writer.js';
import { fsyncPath } from '../store/workspace.js';

export interface CompactionResult {
  readonly source: string;
  /** Partitions merged (relative to the source folder, `/`). */
  readonly partitions: readonly string[];
  /** Files replaced by merged ones. */
  readonly filesBefore: number;
  readonly events: number;
  /** Partitions left as they were because a file no longer matches the chain. */
  readonly refused: readonly string[];
}

interface BatchRow {
  batch: number;
  files: RecordedFile[];
}

const mergedName = (batch: number): string => `c${String(batch).padStart(12, '0')}.parquet`;
const hiddenName = (sha: string): string => `.c-${sha}.tmp`;
const toAbs = (root: string, rel: string): string => path.resolve(root, ...rel.split('/'));

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}

/** Files of the source the chain currently expects, by partition: recorded by a batch and not replaced since. */
function liveFiles(batches: readonly BatchRow[]): Map<string, RecordedFile[]> {
  const replaced = new Set(batches.flatMap((b) => b.files.flatMap((f) => (f.replaces ?? []).map((r) => r.file))));
  const out = new Map<string, RecordedFile[]>();
  for (const b of batches) {
    for (const f of b.files) {
      if (replaced.has(f.file)) continue;
      const dir = path.posix.dirname(f.file);
      out.set(dir, [...(out.get(dir) ?? []), f]);
    }
  }
  return out;
}

async function loadBatches(db: Db, source: string): Promise<BatchRow[]> {
  const { rows } = await db.query<BatchRow>('SELECT batch, files FROM steward.audit_batches WHERE source = $1 ORDER BY batch', [source]);
  return rows.map((r) => ({ batch: Number(r.batch), files: r.files }));
}

/**
 * Finishes recorded compactions (rename, delete what they replaced) and
 * removes hidden files no record names. Call it only while holding the
 * `audit.maintenance` lock: a running compaction's hidden file is not yet
 * recorded.
 */
export async function recoverCompactions(db: Db, root: string, source: string): Promise<void> {
  const batches = await loadBatches(db, source);
  const wanted = new Set<string>();
  for (const b of batches) {
    for (const f of b.files) {
      if (f.replaces === undefined) continue;
      const final = toAbs(root, f.file);
      const hidden = path.join(path.dirname(final), hiddenName(f.sha256));
      wanted.add(hidden);
      if (!(await exists(final)) && (await exists(hidden))) await fs.rename(hidden, final);
      if (!(await exists(final))) continue; // verify reports it missing
      for (const r of f.replaces) await fs.rm(toAbs(root, r.file), { force: true });
    }
  }
  for (const dir of new Set([...liveFiles(batches).keys()].map((d) => toAbs(root, d)))) {
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    for (const n of names) {
      const p = path.join(dir, n);
      if ((n.startsWith('.compact-') || n.startsWith('.c-')) && n.endsWith('.tmp') && !wanted.has(p)) await fs.rm(p, { force: true });
    }
  }
}

export interface CompactOptions {
  readonly db: Db;
  readonly duckdb: DuckDb;
  /** The source folder (`<lake>/security/ext/<source>`). */
  readonly root: string;
  readonly source: string;
  /** Partitions of this day (`YYYYMMDD`, UTC) or later are left alone: they are still being written. */
  readonly today: string;
  /** A partition is merged when it has at least this many files (default 2). */
  readonly minFiles?: number;
}

/** Merges each closed day partition of one source into one file. Hold the `audit.maintenance` lock. */
export async function compactSource(options: CompactOptions): Promise<CompactionResult> {
  const { db, duckdb, root, source } = options;
  await recoverCompactions(db, root, source);
  const partitions: string[] = [];
  const refused: string[] = [];
  let filesBefore = 0;
  let events = 0;
  for (const [dir, files] of liveFiles(await loadBatches(db, source))) {
    const day = /eventDay=(\d{8})$/.exec(dir)?.[1];
    if (day === undefined || day >= options.today || files.length < (options.minFiles ?? 2)) continue;
    const merged = await mergePartition(options, dir, files);
    if (merged === 'busy') continue;
    if (merged === null) {
      refused.push(dir);
      continue;
    }
    partitions.push(dir);
    filesBefore += files.length;
    events += merged;
  }
  return { source, partitions, filesBefore, events, refused };
}

/** The merged file's event count; null when an input no longer matches the chain, `busy` when a flush kept the source (nothing is changed then). */
async function mergePartition(options: CompactOptions, dir: string, files: readonly RecordedFile[]): Promise<number | null | 'busy'> {
  const { db, duckdb, root, source } = options;
  const inputs = files.map((f) => toAbs(root, f.file));
  for (const [i, f] of files.entries()) {
    const sha = await sha256File(inputs[i] as string).catch(() => undefined);
    if (sha !== f.sha256) return null;
  }
  const absDir = toAbs(root, dir);
  const staged = path.join(absDir, `.compact-${randomBytes(8).toString('hex')}.tmp`);
  const list = inputs.map((_, i) => `$${i + 2}`).join(', ');
  try {
    // Paths are bound; the rows are copied as they are, in chain order.
    await duckdb.run(`COPY (SELECT * FROM read_parquet([${list}]) ORDER BY seq) TO $1 (FORMAT parquet, COMPRESSION zstd)`, [staged, ...inputs]);
    const counted = await duckdb.all<{ n: number; first: number; last: number }>(`SELECT count(*)::BIGINT AS n, min(seq) AS first, max(seq) AS last FROM read_parquet($1)`, [staged]);
    const expected = files.reduce((n, f) => n + f.events, 0);
    const c = counted[0];
    if (c === undefined || Number(c.n) !== expected) throw new StewardError('STEWARD_E_INTERNAL', `compaction of \`${dir}\` read ${c?.n ?? 0} events, the chain records ${expected}`);
    await fsyncPath(staged);
    const sha = await sha256File(staged);
    const hidden = path.join(absDir, hiddenName(sha));
    await fs.rename(staged, hidden);
    const lastRow = await duckdb.all<{ hash: string }>('SELECT hash FROM read_parquet($1) ORDER BY seq DESC LIMIT 1', [hidden]);
    const record = async (): Promise<number | 'busy'> => db.transaction(async (tx) => {
      const { rows } = await tx.query<{ next_batch: number; batch_hash: string; pending: unknown }>('SELECT next_batch, batch_hash, pending FROM steward.audit_sources WHERE name = $1 FOR UPDATE', [source]);
      const src = rows[0];
      if (src === undefined) throw new StewardError('STEWARD_E_NOT_FOUND', `audit source \`${source}\` not found`);
      // Batch numbers must follow the chain's order: never between a flush's claim and its commit.
      if (src.pending !== null) return 'busy';
      const n = Number(src.next_batch);
      const record: BatchRecord = {
        source,
        batch: n,
        firstSeq: Number(c.first),
        lastSeq: Number(c.last),
        lastHash: String(lastRow[0]?.hash ?? ''),
        files: [{ file: `${dir}/${mergedName(n)}`, sha256: sha, events: expected, replaces: files.map((f) => ({ file: f.file, sha256: f.sha256 })) }],
      };
      const hash = batchHash(src.batch_hash, record);
      await tx.query(
        `INSERT INTO steward.audit_batches (source, batch, first_seq, last_seq, last_hash, files, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)`,
        [source, n, record.firstSeq, record.lastSeq, record.lastHash, JSON.stringify(record.files), src.batch_hash, hash],
      );
      await tx.query('UPDATE steward.audit_sources SET batch_hash = $2, next_batch = next_batch + 1 WHERE name = $1', [source, hash]);
      return n;
    });
    let batch = await record();
    for (let i = 0; batch === 'busy' && i < 40; i++) {
      await new Promise((r) => setTimeout(r, 250));
      batch = await record();
    }
    // Still flushing after 10 s: the hidden file is removed by the next recover, the partition merged next time.
    if (batch === 'busy') return 'busy';
    await fs.rename(hidden, path.join(absDir, mergedName(batch)));
    await fsyncPath(absDir);
    for (const p of inputs) await fs.rm(p, { force: true });
    return expected;
  } finally {
    await fs.rm(staged, { force: true });
  }
}
