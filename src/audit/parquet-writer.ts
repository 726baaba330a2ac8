/**
 * Writes one flush batch to Parquet with DuckDB, in bulk:
 *
 *   NDJSON staging file (made by the state store) → read_json (positions
 *   given on the narrow rows) → OCSF columns in SQL (lake-sql.ts), each
 *   event's digest and partition, in one pass into a temp table → previous
 *   digests (a window over the narrow digests) → one partitioned COPY … TO
 *   parquet into a staging folder → fsync → rename each file to
 *   `<partition>/b42.parquet` → sha256 of it.
 *
 * Mapping is most of the work (docs/security-lake.md, "How ingest works"), so
 * it runs once per batch; the wide mapped rows of one batch are what memory
 * holds, bounded by the flusher's batch size.
 *
 * Paths are bound parameters of constant SQL. The rename makes a file appear
 * whole or not at all, and the deterministic name (one per batch and
 * partition) makes a retried batch overwrite its own file instead of adding a
 * second copy (a file appears whole or not at all: it is renamed only once
 * complete). One batch at a time per writer (its DuckDB temp tables are
 * shared).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fsyncPath, isPidAlive } from '../store/workspace.js';
import { openDuckDb, type DuckDb } from '../lake/duckdb.js';
import { StewardError } from '../errors.js';
import { CUSTOM_EVENTS_SQL, DECISION_COLUMNS, EVENT_COLUMNS, OCSF_COLUMN_NAMES, partitionSql, quoteIdent, ROW_HASH_SQL, STEWARD_EVENTS_SQL } from './lake-sql.js';

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
  readonly duckdb: DuckDb;
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

/**
 * How a batch is mapped:
 * - `single-pass` (the default): the OCSF columns, each event's digest and
 *   partition are computed once into a temp table, which the write then reads;
 * - `two-pass`: the previous plan, which mapped once for the digests and again
 *   while writing (less memory, about twice the mapping work). Kept as the
 *   reference the property test and the benchmark compare the default with.
 */
export type MapPlan = 'single-pass' | 'two-pass';

/** A staged Parquet file: `rel` is `region=…/accountId=…/eventDay=…/part_0.parquet`. */
interface StagedFile {
  readonly rel: string;
  readonly from: string;
}

export async function createParquetWriter(options: { stagingDir: string; compression?: 'zstd' | 'snappy'; plan?: MapPlan }): Promise<ParquetWriter> {
  const duckdb = await openDuckDb({ config: { threads: '1' } });
  const compression = options.compression ?? 'zstd';
  const plan = options.plan ?? 'single-pass';
  let counter = 0;
  let lock: Promise<unknown> = Promise.resolve();

  /** The batch's input rows as a temp table (`decisions` or `outbox_events`) with their positions. */
  async function load(input: BatchInput, staging: string): Promise<void> {
    await fs.mkdir(options.stagingDir, { recursive: true });
    await fs.writeFile(staging, input.ndjson);
    const columns = input.kind === 'steward' ? DECISION_COLUMNS : `{'ord': 'BIGINT', ${EVENT_COLUMNS.slice(1)}`;
    const table = input.kind === 'steward' ? 'decisions' : 'outbox_events';
    const key = input.kind === 'steward' ? 'id' : 'ord';
    // The state store hands rows over in key order, so they are numbered as they come (a window
    // over the wide rows would sort and copy them all); a narrow check proves the order, and a
    // batch out of order (or with a repeated key) is numbered by key instead, as it always was.
    await duckdb.run(
      `CREATE OR REPLACE TEMP TABLE ${table} AS
       SELECT ($1::BIGINT + row_number() OVER () - 1)::BIGINT AS seq, * FROM read_json($2, format = 'newline_delimited', columns = ${columns})`,
      [BigInt(input.firstSeq), staging],
    );
    const [check] = await duckdb.all<{ n: number }>(
      `SELECT count(*) AS n FROM (SELECT seq, ${key} AS k, lag(${key}) OVER (ORDER BY seq) AS prev FROM ${table}) WHERE seq > $1 AND (k <= prev OR k IS NULL OR prev IS NULL)`,
      [BigInt(input.firstSeq)],
    );
    if (Number(check?.n ?? 0) > 0) {
      await duckdb.run(`CREATE OR REPLACE TEMP TABLE ${table} AS SELECT ($1::BIGINT + row_number() OVER (ORDER BY ${key}) - 1)::BIGINT AS seq, * EXCLUDE (seq) FROM ${table}`, [BigInt(input.firstSeq)]);
    }
  }

  /**
   * Maps the batch and links it: `batch_links` (seq, hash, prev_hash, partition) in seq order,
   * and the SELECT that pairs each mapped event with its link for the write.
   */
  async function mapAndLink(input: BatchInput): Promise<string> {
    const mapped = input.kind === 'steward' ? STEWARD_EVENTS_SQL : CUSTOM_EVENTS_SQL;
    const digestAndPartition = `${ROW_HASH_SQL} AS hash, ${partitionSql('m.cloud.region', '$1')} AS region,
                        ${partitionSql('m.cloud.account.uid', '$2')} AS accountId, ${EVENT_DAY_SQL} AS eventDay`;
    const linked = (events: string, prevHashParam: string): string => `CREATE OR REPLACE TEMP TABLE batch_links AS
           SELECT seq, hash, coalesce(lag(hash) OVER (ORDER BY seq), ${prevHashParam}) AS prev_hash, region, accountId, eventDay FROM ${events}`;
    // The mapped rows and their links come out in the same (seq) order, so a positional join pairs
    // them; the WHERE proves it row by row.
    const pair = (events: string): string => `SELECT l.hash, l.prev_hash, ${['seq', ...OCSF_COLUMN_NAMES].map((c) => `m.${quoteIdent(c)}`).join(', ')}, l.region, l.accountId, l.eventDay
                 FROM ${events} m POSITIONAL JOIN batch_links l
                 WHERE CASE WHEN l.seq = m.seq THEN true ELSE error('security lake: mapped rows and chain links are out of step') END`;
    if (plan === 'two-pass') {
      await duckdb.run(linked(`(SELECT seq, ${digestAndPartition} FROM (${mapped}) m)`, '$3'), [input.region, input.accountId, input.prevHash]);
      return pair(`(${mapped})`);
    }
    // Mapped once: the wide rows of one batch stay in memory until written (bounded by the batch size).
    await duckdb.run(`CREATE OR REPLACE TEMP TABLE batch_events AS SELECT ${digestAndPartition}, m.* FROM (${mapped}) m`, [input.region, input.accountId]);
    await duckdb.run(`DROP TABLE IF EXISTS ${input.kind === 'steward' ? 'decisions' : 'outbox_events'}`);
    await duckdb.run(linked('batch_events', '$1'), [input.prevHash]);
    return pair('batch_events');
  }

  /** COPY … TO parquet into the staging folder: one file per partition. */
  async function copyToStaging(select: string, parts: readonly PartitionKey[], stagedDir: string): Promise<StagedFile[]> {
    if (parts.length === 0) return [];
    if (parts.length === 1) {
      const p = parts[0] as PartitionKey;
      const from = path.join(stagedDir, 'one.parquet');
      await fs.mkdir(stagedDir, { recursive: true });
      await duckdb.run(`COPY (SELECT * EXCLUDE (region, accountId, eventDay) FROM (${select})) TO $1 (FORMAT parquet, COMPRESSION ${compression})`, [from]);
      return [{ rel: `region=${p.region}/accountId=${p.accountId}/eventDay=${p.eventDay}/part_0.parquet`, from }];
    }
    await duckdb.run(`COPY (${select}) TO $1 (FORMAT parquet, COMPRESSION ${compression}, PARTITION_BY (region, accountId, eventDay), FILENAME_PATTERN 'part_{i}', OVERWRITE)`, [stagedDir]);
    return (await parquetFiles(stagedDir)).map((rel) => ({ rel, from: path.join(stagedDir, ...rel.split('/')) }));
  }

  /** fsync, rename to `<partition>/b….parquet`, sha256: a file counts only once it is durable and whole. */
  async function publish(lakeDir: string, input: BatchInput, staged: readonly StagedFile[], counts: ReadonlyMap<string, number>): Promise<WrittenFile[]> {
    const root = sourceDir(lakeDir, input.source);
    const name = batchFileName(input.batch);
    const files: WrittenFile[] = [];
    for (const { rel, from } of staged) {
      const m = /^region=([^/]+)\/accountId=([^/]+)\/eventDay=(\d{8})\/part_0\.parquet$/.exec(rel);
      // Defense in depth: the SQL already cleaned the values exactly like partitionValue().
      if (m === null || partitionValue(m[1], '_') !== m[1] || partitionValue(m[2], '_') !== m[2]) {
        throw new StewardError('STEWARD_E_INTERNAL', `refusing the staged file \`${rel}\``);
      }
      const p = { region: m[1] as string, accountId: m[2] as string, eventDay: m[3] as string };
      const dir = partitionDir(lakeDir, input.source, p);
      const target = path.join(dir, name);
      try {
        // Durable before it counts: the batch is marked written only after this returns.
        await fsyncPath(from);
        await fs.mkdir(dir, { recursive: true });
        await fs.rename(from, target);
      } catch (e) {
        throw lakeError(dir, e);
      }
      files.push({ path: target, file: path.relative(root, target).split(path.sep).join('/'), sha256: await sha256File(target), events: counts.get(path.posix.dirname(rel)) ?? 0 });
    }
    return files;
  }

  async function writeBatch(lakeDir: string, input: BatchInput): Promise<BatchOutput> {
    const id = `${STAGING_HOST}~${process.pid}~${++counter}`;
    const staging = path.join(options.stagingDir, `${id}.ndjson`);
    const stagedDir = path.join(options.stagingDir, `${id}.out`);
    let t = now();
    const timings = { loadSeconds: 0, mapSeconds: 0, chainSeconds: 0, writeSeconds: 0 };
    const lap = (k: keyof typeof timings): void => {
      const n = now();
      timings[k] += (n - t) / 1000;
      t = n;
    };
    try {
      try {
        await load(input, staging);
        lap('loadSeconds');
        const select = await mapAndLink(input);
        lap('mapSeconds');
        const [last] = await duckdb.all<{ seq: number; hash: string; n: number }>('SELECT seq, hash, (SELECT count(*) FROM batch_links) AS n FROM batch_links ORDER BY seq DESC LIMIT 1');
        lap('chainSeconds');
        const parts = await duckdb.all<{ region: string; accountId: string; eventDay: string; n: number }>(
          'SELECT region, accountId, eventDay, count(*) AS n FROM batch_links GROUP BY ALL ORDER BY ALL',
        );
        const staged = await copyToStaging(select, parts, stagedDir);
        const counts = new Map(parts.map((c) => [`region=${c.region}/accountId=${c.accountId}/eventDay=${c.eventDay}`, Number(c.n)]));
        const files = await publish(lakeDir, input, staged, counts);
        lap('writeSeconds');
        const out = last === undefined ? { seq: input.firstSeq - 1, hash: input.prevHash, n: 0 } : last;
        return { events: Number(out.n), lastSeq: Number(out.seq), lastHash: out.hash, files, timings };
      } catch (e) {
        if (e instanceof StewardError) throw e;
        throw lakeError(sourceDir(lakeDir, input.source), e);
      }
    } finally {
      await fs.rm(staging, { force: true }).catch(() => {});
      await fs.rm(stagedDir, { recursive: true, force: true }).catch(() => {});
      await duckdb.run('DROP TABLE IF EXISTS decisions; DROP TABLE IF EXISTS outbox_events; DROP TABLE IF EXISTS batch_events; DROP TABLE IF EXISTS batch_links').catch(() => {});
    }
  }

  return {
    duckdb,
    writeBatch(lakeDir, input) {
      const next = lock.then(() => writeBatch(lakeDir, input));
      lock = next.catch(() => {});
      return next;
    },
    close: () => duckdb.close(),
  };
}
