/**
 * Writes one flush batch to Parquet with DuckDB, in bulk, on a few lanes at once:
 *
 *   NDJSON (made by the state store) cut at line ends into one part per lane →
 *   each lane, on its own DuckDB connection and so its own core: read_json →
 *   OCSF columns in SQL (lake-sql.ts), each event's digest and partition, in
 *   one pass into a table → its links (a window over the narrow digests) →
 *   COPY … TO parquet, one file per partition → fsync → rename each file to
 *   `<partition>/b42.parquet` (`b42-1.parquet` for the second lane) → sha256.
 *
 * Positions are the batch's: a lane's first event follows the previous lane's
 * last one, and its link is that event's digest, so the chain is the one a
 * single lane would have written (only the files differ). Lanes exist because
 * mapping is most of the work (docs/security-lake.md, "How ingest works") and
 * DuckDB would run one batch part, one row group, on one thread anyway. A
 * small batch stays on one lane (`minLaneBytes`).
 *
 * Paths are bound parameters of constant SQL. The rename makes a file appear
 * whole or not at all, and the deterministic names (per batch, lane and
 * partition) make a retried batch overwrite its own files; files of the same
 * batch that a retry does not write (it was cut differently) are removed
 * before it publishes. One batch at a time per writer (its tables are
 * shared).
 */
import { createHash } from 'node:crypto';
import type { DuckDBPreparedStatement } from '@duckdb/node-api';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fsyncPath, isPidAlive } from '../store/workspace.js';
import { openDuckDb, type DuckDb, type DuckDbInstance } from '../lake/duckdb.js';
import { StewardError } from '../errors.js';
import { customEventsSql, DECISION_COLUMNS, EVENT_COLUMNS, OCSF_COLUMN_NAMES, partitionSql, quoteIdent, ROW_HASH_SQL, stewardEventsSql } from './lake-sql.js';

export interface PartitionKey {
  readonly region: string;
  readonly accountId: string;
  readonly eventDay: string;
}

/** `<lake>/security/ext/<source>` */
export function sourceDir(lakeDir: string, source: string): string {
  return path.join(lakeDir, 'security', 'ext', source);
}

export function partitionDir(lakeDir: string, source: string, p: PartitionKey): string {
  return path.join(sourceDir(lakeDir, source), `region=${p.region}`, `accountId=${p.accountId}`, `eventDay=${p.eventDay}`);
}

export const batchFileName = (batch: number): string => `b${String(batch).padStart(12, '0')}.parquet`;

/** Partition values become folder names: anything outside `[A-Za-z0-9_.-]` is replaced, and `..` cannot escape. */
export function partitionValue(v: string | undefined, fallback: string): string {
  const cleaned = (v ?? '').replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^\.+/, '_').slice(0, 64);
  return cleaned.length === 0 ? fallback : cleaned;
}

export function lakeError(dir: string, e: unknown): StewardError {
  const text = e instanceof Error ? (e.message.split('\n')[0] ?? e.message) : String(e);
  return new StewardError('STEWARD_E_SOURCE', `cannot write the security lake at \`${dir}\`: ${text}; the events stay in the outbox and are written once it is writable`, {
    cause: e,
  });
}

export interface BatchInput {
  /** `steward`: raw decision-log rows (DECISION_COLUMNS); `events`: conformed OCSF events with an `ord` key. */
  readonly kind: 'steward' | 'events';
  readonly source: string;
  readonly batch: number;
  /** NDJSON, one row per line, as the state store produced it. */
  readonly ndjson: string;
  readonly firstSeq: number;
  /** Digest of the event before this batch (genesis: 64 zeros). */
  readonly prevHash: string;
  /** Partition fallbacks when an event names no cloud region or account. */
  readonly region: string;
  readonly accountId: string;
}

export interface WrittenFile {
  /** Absolute path. */
  readonly path: string;
  /** `region=…/accountId=…/eventDay=…/b….parquet`, relative to the source folder, `/`-separated. */
  readonly file: string;
  readonly sha256: string;
  readonly events: number;
}

/** Where a batch's time goes. The chain's per-event work is fused into the first pass (`mapSeconds`). */
export interface BatchTimings {
  /** Staging file, read_json and positions (seq) on the narrow input rows. */
  readonly loadSeconds: number;
  /** Pass 1: OCSF columns, each event's digest and partition, the previous-digest window (narrow result). */
  readonly mapSeconds: number;
  /** Reading the new chain head (the batch hash itself is computed by the flusher when it commits the batch). */
  readonly chainSeconds: number;
  /** Pass 2: the OCSF columns again, paired with their links, COPY … TO parquet, fsync, rename, sha256 of each file. */
  readonly writeSeconds: number;
}

export interface BatchOutput {
  readonly events: number;
  readonly lastSeq: number;
  readonly lastHash: string;
  readonly files: readonly WrittenFile[];
  readonly timings: BatchTimings;
}

export interface ParquetWriter {
  /** Maps, chains and writes one batch under `<lake>/security/ext/<source>/`. */
  writeBatch(lakeDir: string, input: BatchInput): Promise<BatchOutput>;
  /** The writer's DuckDB (its main connection), for reading the lake back: verify, compaction. */
  readonly duckdb: DuckDbInstance;
  close(): void;
}

const EVENT_DAY_SQL = `coalesce(CASE WHEN time BETWEEN -62135596800000 AND 253402300799999 THEN strftime(make_timestamp(time * 1000), '%Y%m%d') END, '19700101')`;
const now = (): number => performance.now();

export async function sha256File(file: string): Promise<string> {
  return createHash('sha256').update(await fs.readFile(file)).digest('hex');
}

/** Every `*.parquet` under `dir`, relative, `/`-separated. */
async function parquetFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile() && e.name.endsWith('.parquet')) out.push(path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
  }
  return out.sort();
}

/** This host as it appears in staging names (no path separators, no `~`). */
const STAGING_HOST = os.hostname().replace(/[^A-Za-z0-9.-]/g, '_');
/** `<host>~<pid>~<n>.ndjson` or `.out`: the owner is in the name, so a dead writer's leftovers can be told apart. */
const STAGING_NAME = /^([A-Za-z0-9._-]+)~(\d+)~\d+\.(?:ndjson|out)$/;
const LEGACY_STAGING_NAME = /^\d+-\d+\.(?:ndjson|out)$/;
/** Another host's leftovers are only removed once nothing could still be writing them. */
const FOREIGN_STAGING_MS = 24 * 3600_000;

/**
 * Removes what killed writers left in the staging folder (a kill -9 mid-batch
 * skips the writer's own cleanup): entries of dead processes on this host at
 * once, other hosts' after a day. A live writer's entries are never touched.
 * Returns the names removed.
 */
export async function cleanStaging(stagingDir: string, nowMs = Date.now()): Promise<string[]> {
  let entries: string[];
  try {
    entries = await fs.readdir(stagingDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const removed: string[] = [];
  for (const name of entries) {
    const m = STAGING_NAME.exec(name);
    // Names from before the owner was recorded (`<pid>-<n>`) could be any host's: treated as foreign.
    if (m === null && !LEGACY_STAGING_NAME.test(name)) continue;
    const full = path.join(stagingDir, name);
    let gone: boolean;
    if (m !== null && m[1] === STAGING_HOST) gone = Number(m[2]) !== process.pid && !isPidAlive(Number(m[2]));
    else gone = nowMs - (await fs.stat(full).catch(() => ({ mtimeMs: nowMs }))).mtimeMs > FOREIGN_STAGING_MS;
    if (!gone) continue;
    await fs.rm(full, { recursive: true, force: true });
    removed.push(name);
  }
  return removed.sort();
}

/** What one lane staged: `rel` is `region=…/accountId=…/eventDay=…/part_0.parquet`. */
interface StagedFile {
  readonly lane: number;
  readonly rel: string;
  readonly from: string;
}

/** One lane's share of a batch once mapped and linked. */
interface LaneResult {
  readonly events: number;
  readonly last?: { readonly seq: number; readonly hash: string };
  readonly parts: readonly (PartitionKey & { readonly n: number })[];
}

export interface ParquetWriterOptions {
  readonly stagingDir: string;
  readonly compression?: 'zstd' | 'snappy';
  /**
   * How many parts of a batch are mapped and written at once, each on its own
   * DuckDB connection (and CPU core), each into its own file per partition.
   * Default: 2, or 1 on a one-core machine.
   */
  readonly lanes?: number;
  /**
   * A batch is cut only into parts of at least this many bytes of input (default 4 MiB, about
   * 14,000 decisions). A server's usual flush (a few seconds of traffic) then stays on one core,
   * beside the requests it serves; a backlog (after an outage, or traffic the writer cannot keep up
   * with on one core) is written on all lanes.
   */
  readonly minLaneBytes?: number;
}

const DEFAULT_MIN_LANE_BYTES = 4 << 20;

/**
 * The NDJSON of a batch cut at line ends into at most `lanes` parts of at
 * least `minBytes` each, in order; every part holds whole lines.
 */
function splitLines(ndjson: string, lanes: number, minBytes: number): string[] {
  const count = Math.max(1, Math.min(lanes, Math.floor(ndjson.length / Math.max(1, minBytes))));
  const parts: string[] = [];
  let start = 0;
  for (let i = 1; i <= count && start < ndjson.length; i++) {
    let end = i === count ? ndjson.length : ndjson.indexOf('\n', Math.max(start, Math.floor((ndjson.length * i) / count)));
    if (end < 0) end = ndjson.length;
    if (end > start) parts.push(ndjson.slice(start, end));
    start = end + 1;
  }
  return parts.length === 0 ? [''] : parts;
}

/** `b000000000042.parquet` for the first lane, `b000000000042-1.parquet` for the second, … */
const laneFileName = (batch: number, lane: number): string => (lane === 0 ? batchFileName(batch) : batchFileName(batch).replace(/\.parquet$/, `-${lane}.parquet`));

/** Any lane's file of one batch. */
const batchFilePattern = (batch: number): RegExp => new RegExp(`^${batchFileName(batch).replace('.parquet', '')}(?:-\\d+)?\\.parquet$`);

export async function createParquetWriter(options: ParquetWriterOptions): Promise<ParquetWriter> {
  const duckdb = await openDuckDb({ config: { threads: '1' } });
  const compression = options.compression ?? 'zstd';
  const laneCount = Math.max(1, Math.floor(options.lanes ?? Math.min(2, os.availableParallelism())));
  const minLaneBytes = options.minLaneBytes ?? DEFAULT_MIN_LANE_BYTES;
  // One connection per lane, so the lanes' queries run on separate threads (DuckDB itself stays at
  // one thread per query: a batch part is one row group, which DuckDB would not split anyway).
  const lanes: DuckDb[] = [];
  try {
    for (let i = 0; i < laneCount; i++) lanes.push(await duckdb.connect());
  } catch (e) {
    duckdb.close();
    throw e;
  }
  const mapStatements = new Map<string, DuckDBPreparedStatement>();
  let counter = 0;
  let lock: Promise<unknown> = Promise.resolve();
  const table = (kind: 'input' | 'events' | 'links', lane: number): string => `lane${lane}_${kind}`;
  const laneDb = (i: number): DuckDb => lanes[i] as DuckDb;

  /**
   * Each part's rows into `lane<i>_input`, in arrival order. The state store hands rows over in
   * key order, so a row's position is its lane's offset plus its rowid; a narrow check over all
   * lanes proves the order, and a batch out of order (or with a repeated or missing key) is
   * rearranged by key instead. Returns each lane's first position.
   */
  async function load(input: BatchInput, files: readonly string[]): Promise<number[]> {
    const columns = input.kind === 'steward' ? DECISION_COLUMNS : `{'ord': 'BIGINT', ${EVENT_COLUMNS.slice(1)}`;
    const key = input.kind === 'steward' ? 'id' : 'ord';
    await Promise.all(files.map((f, i) => laneDb(i).run(`CREATE OR REPLACE TABLE ${table('input', i)} AS SELECT * FROM read_json($1, format = 'newline_delimited', columns = ${columns})`, [f])));
    const all = files.map((_, i) => `SELECT ${i} AS lane, rowid AS r, ${key} AS k FROM ${table('input', i)}`).join(' UNION ALL ');
    const [check] = await duckdb.all<{ bad: number }>(
      `SELECT count(*) FILTER (WHERE pos > 1 AND (k <= prev OR k IS NULL OR prev IS NULL)) AS bad FROM (SELECT k, lag(k) OVER w AS prev, row_number() OVER w AS pos FROM (${all}) WINDOW w AS (ORDER BY lane, r))`,
    );
    const counts = await duckdb.all<{ n: number }>(files.map((_, i) => `SELECT ${i} AS lane, count(*) AS n FROM ${table('input', i)}`).join(' UNION ALL ') + ' ORDER BY lane');
    if (Number(check?.bad ?? 0) > 0) {
      await duckdb.run(`CREATE OR REPLACE TABLE batch_sorted AS SELECT * FROM (${files.map((_, i) => `SELECT * FROM ${table('input', i)}`).join(' UNION ALL ')}) ORDER BY ${key}`);
      let offset = 0;
      for (const [i, c] of counts.entries()) {
        await duckdb.run(`CREATE OR REPLACE TABLE ${table('input', i)} AS SELECT * FROM batch_sorted LIMIT ${Number(c.n)} OFFSET ${offset}`);
        offset += Number(c.n);
      }
      await duckdb.run('DROP TABLE batch_sorted');
    }
    const firsts: number[] = [];
    let next = input.firstSeq;
    for (const c of counts) {
      firsts.push(next);
      next += Number(c.n);
    }
    return firsts;
  }

  /** Lane `i`: its OCSF rows with each event's digest and partition, then its narrow links (the first row's link is filled at write time). */
  async function mapLane(input: BatchInput, i: number, firstSeq: number): Promise<LaneResult> {
    const db = laneDb(i);
    const positioned = `(SELECT ($1::BIGINT + rowid)::BIGINT AS seq, * FROM ${table('input', i)})`;
    // Steward's events name no cloud, so their partition is the source's own (the SQL
    // partitionSql would give the same, row by row).
    const region = input.kind === 'steward' ? '$2' : partitionSql('m.cloud.region', '$2');
    const account = input.kind === 'steward' ? '$3' : partitionSql('m.cloud.account.uid', '$3');
    const mapped = input.kind === 'steward' ? stewardEventsSql(positioned) : customEventsSql(positioned);
    // Prepared once per lane and kind: parsing the mapping (36k characters of SQL) costs more than
    // the rebinding DuckDB does when the lane's tables are new.
    const key = `${input.kind}:${i}`;
    let stmt = mapStatements.get(key);
    if (stmt === undefined) {
      stmt = await db.connection.prepare(
        `CREATE OR REPLACE TABLE ${table('events', i)} AS SELECT ${ROW_HASH_SQL} AS hash, ${region} AS region, ${account} AS accountId, ${EVENT_DAY_SQL} AS eventDay, m.* FROM (${mapped}) m`,
      );
      mapStatements.set(key, stmt);
    }
    stmt.bind([BigInt(firstSeq), input.region, input.accountId]);
    await stmt.run();
    await db.run(`DROP TABLE ${table('input', i)}`);
    await db.run(`CREATE OR REPLACE TABLE ${table('links', i)} AS SELECT seq, hash, lag(hash) OVER (ORDER BY seq) AS prev_hash, region, accountId, eventDay FROM ${table('events', i)}`);
    const [last] = await db.all<{ seq: number; hash: string; n: number }>(`SELECT seq, hash, (SELECT count(*) FROM ${table('links', i)}) AS n FROM ${table('links', i)} ORDER BY seq DESC LIMIT 1`);
    const parts = await db.all<{ region: string; accountId: string; eventDay: string; n: number }>(`SELECT region, accountId, eventDay, count(*) AS n FROM ${table('links', i)} GROUP BY ALL ORDER BY ALL`);
    return { events: Number(last?.n ?? 0), ...(last === undefined ? {} : { last: { seq: Number(last.seq), hash: last.hash } }), parts: parts.map((p) => ({ ...p, n: Number(p.n) })) };
  }

  /**
   * COPY … TO parquet of lane `i` into its staging folder, one file per partition. The mapped
   * rows and their links come out in the same (seq) order, so a positional join pairs them; the
   * WHERE proves it row by row. `prevHash` is the link of the lane's first event.
   */
  async function copyLane(i: number, result: LaneResult, prevHash: string, stagedDir: string): Promise<StagedFile[]> {
    if (result.parts.length === 0) return [];
    const db = laneDb(i);
    const dir = path.join(stagedDir, `lane-${i}`);
    await fs.mkdir(dir, { recursive: true });
    const select = `SELECT l.hash, coalesce(l.prev_hash, $1) AS prev_hash, ${['seq', ...OCSF_COLUMN_NAMES].map((c) => `m.${quoteIdent(c)}`).join(', ')}, l.region, l.accountId, l.eventDay
                 FROM ${table('events', i)} m POSITIONAL JOIN ${table('links', i)} l
                 WHERE CASE WHEN l.seq = m.seq THEN true ELSE error('security lake: mapped rows and chain links are out of step') END`;
    if (result.parts.length === 1) {
      const p = result.parts[0] as PartitionKey;
      const from = path.join(dir, 'one.parquet');
      await db.run(`COPY (SELECT * EXCLUDE (region, accountId, eventDay) FROM (${select})) TO $2 (FORMAT parquet, COMPRESSION ${compression})`, [prevHash, from]);
      return [{ lane: i, rel: `region=${p.region}/accountId=${p.accountId}/eventDay=${p.eventDay}/part_0.parquet`, from }];
    }
    await db.run(`COPY (${select}) TO $2 (FORMAT parquet, COMPRESSION ${compression}, PARTITION_BY (region, accountId, eventDay), FILENAME_PATTERN 'part_{i}', OVERWRITE)`, [prevHash, dir]);
    return (await parquetFiles(dir)).map((rel) => ({ lane: i, rel, from: path.join(dir, ...rel.split('/')) }));
  }

  /**
   * fsync, rename to `<partition>/b….parquet` (`-<lane>` after the first lane), sha256: a file
   * counts only once it is durable and whole. A retried batch may have been cut into other lanes
   * the first time: that attempt's files of this batch that this one does not replace are removed.
   */
  async function publish(lakeDir: string, input: BatchInput, staged: readonly StagedFile[], counts: ReadonlyMap<string, number>): Promise<WrittenFile[]> {
    const root = sourceDir(lakeDir, input.source);
    const targets = staged.map(({ lane, rel, from }) => {
      const m = /^region=([^/]+)\/accountId=([^/]+)\/eventDay=(\d{8})\/part_0\.parquet$/.exec(rel);
      // Defense in depth: the SQL already cleaned the values exactly like partitionValue().
      if (m === null || partitionValue(m[1], '_') !== m[1] || partitionValue(m[2], '_') !== m[2]) {
        throw new StewardError('STEWARD_E_INTERNAL', `refusing the staged file \`${rel}\``);
      }
      const dir = partitionDir(lakeDir, input.source, { region: m[1] as string, accountId: m[2] as string, eventDay: m[3] as string });
      return { from, dir, target: path.join(dir, laneFileName(input.batch, lane)), events: counts.get(`${lane}/${path.posix.dirname(rel)}`) ?? 0 };
    });
    const mine = new Set(targets.map((t) => t.target));
    const ofBatch = batchFilePattern(input.batch);
    for (const dir of new Set(targets.map((t) => t.dir))) {
      try {
        await fs.mkdir(dir, { recursive: true });
        for (const name of await fs.readdir(dir)) if (ofBatch.test(name) && !mine.has(path.join(dir, name))) await fs.rm(path.join(dir, name), { force: true });
      } catch (e) {
        throw lakeError(dir, e);
      }
    }
    return Promise.all(
      targets.map(async ({ from, dir, target, events }) => {
        try {
          // Durable before it counts: the batch is marked written only after this returns.
          await fsyncPath(from);
          await fs.rename(from, target);
        } catch (e) {
          throw lakeError(dir, e);
        }
        return { path: target, file: path.relative(root, target).split(path.sep).join('/'), sha256: await sha256File(target), events };
      }),
    );
  }

  async function writeBatch(lakeDir: string, input: BatchInput): Promise<BatchOutput> {
    const stagedDir = path.join(options.stagingDir, `${STAGING_HOST}~${process.pid}~${++counter}.out`);
    let t = now();
    const timings = { loadSeconds: 0, mapSeconds: 0, chainSeconds: 0, writeSeconds: 0 };
    const lap = (k: keyof typeof timings): void => {
      const n = now();
      timings[k] += (n - t) / 1000;
      t = n;
    };
    const parts = splitLines(input.ndjson, lanes.length, minLaneBytes);
    try {
      try {
        await fs.mkdir(stagedDir, { recursive: true });
        const files = parts.map((_, i) => path.join(stagedDir, `in-${i}.ndjson`));
        await Promise.all(parts.map((part, i) => fs.writeFile(files[i] as string, part)));
        const firsts = await load(input, files);
        await Promise.all(files.map((f) => fs.rm(f, { force: true })));
        lap('loadSeconds');
        const results = await Promise.all(firsts.map((first, i) => mapLane(input, i, first)));
        lap('mapSeconds');
        // Each lane's first link is the last digest before it: the batch's predecessor, or the previous lane's last event.
        const prevOf: string[] = [];
        let prev = input.prevHash;
        for (const r of results) {
          prevOf.push(prev);
          prev = r.last?.hash ?? prev;
        }
        lap('chainSeconds');
        const staged = (await Promise.all(results.map((r, i) => copyLane(i, r, prevOf[i] as string, stagedDir)))).flat();
        const counts = new Map(results.flatMap((r, i) => r.parts.map((c) => [`${i}/region=${c.region}/accountId=${c.accountId}/eventDay=${c.eventDay}`, c.n] as const)));
        const files2 = (await publish(lakeDir, input, staged, counts)).sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
        lap('writeSeconds');
        const last = results.reduce<LaneResult['last']>((acc, r) => r.last ?? acc, undefined);
        const events = results.reduce((n, r) => n + r.events, 0);
        return { events, lastSeq: last?.seq ?? input.firstSeq - 1, lastHash: last?.hash ?? input.prevHash, files: files2, timings };
      } catch (e) {
        if (e instanceof StewardError) throw e;
        throw lakeError(sourceDir(lakeDir, input.source), e);
      }
    } finally {
      await fs.rm(stagedDir, { recursive: true, force: true }).catch(() => {});
      const drops = lanes.map((_, i) => (['input', 'events', 'links'] as const).map((k) => `DROP TABLE IF EXISTS ${table(k, i)}`).join('; ')).join('; ');
      await duckdb.run(`${drops}; DROP TABLE IF EXISTS batch_sorted`).catch(() => {});
    }
  }

  return {
    duckdb,
    writeBatch(lakeDir, input) {
      const next = lock.then(() => writeBatch(lakeDir, input));
      lock = next.catch(() => {});
      return next;
    },
    close: () => {
      for (const stmt of mapStatements.values()) stmt.destroySync();
      duckdb.close();
    },
  };
}
