/**
 * The security lake service: sources, ingest (with quarantine), ingest keys,
 * the outbox flusher, chain verification, retention, catalog registration,
 * and the schedules that drive them. Built once in src/workspace/open.ts.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Db } from '../store/db.js';
import { runOnce } from '../store/run-once.js';
import { compactSource, recoverCompactions, type CompactionResult } from './compaction.js';
import type { StateService } from '../workspace/state-service.js';
import type { LakeShell } from '../lake/lake-shell.js';
import { StewardError, invalid, notFound } from '../errors.js';
import { ensureParents, makeTable } from '../catalog/catalog-service.js';
import { findTable } from '../policy/model.js';
import type { Change } from '../policy/changes.js';
import { createFlusher, STEWARD_SOURCE, type FlushResult, type Flusher, type SourceRow } from './flusher.js';
import { cleanStaging, createParquetWriter, sourceDir, type ParquetWriter, type ParquetWriterOptions } from './parquet-writer.js';
import { readChainRows, unchangedFiles, verifyBatches, verifyChain, type StoredBatch, type VerifyReport } from './verify.js';
import { conform } from './lake-schema.js';
import { MAPPINGS, mapperFor, type MappingName } from './mappings/index.js';
import { recordsOf, type MapResult } from './mappings/mapping.js';
import { eventDay } from './ocsf.js';
import { SECURITY_CATALOG, SECURITY_DATABASE } from './security-sql.js';

export const MAX_INGEST_LINES = 10_000;
export const MAX_INGEST_BYTES = 5 * 1024 * 1024;
const MAX_QUARANTINED_RECORD = 64 * 1024;
const SOURCE_NAME = /^[a-z][a-z0-9_]{0,62}$/;
const KEY_PATTERN = /^sik_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface SourceInfo {
  readonly name: string;
  readonly mapping: string;
  readonly description?: string;
  readonly region: string;
  readonly accountId: string;
  readonly retentionDays?: number;
  readonly events: number;
  readonly headHash: string;
  readonly backlog: number;
  readonly table?: string;
}

export interface CreateSourceInput {
  readonly name: string;
  readonly mapping: MappingName;
  readonly description?: string;
  readonly region?: string;
  readonly accountId?: string;
  readonly retentionDays?: number;
}

export interface IngestResult {
  readonly source: string;
  readonly accepted: number;
  readonly quarantined: number;
  /** The first reasons, with their line numbers. */
  readonly problems: readonly { line: number; reason: string }[];
}

export interface QuarantineEntry {
  readonly id: number;
  readonly source: string;
  readonly receivedAt: string;
  readonly line?: number;
  readonly reason: string;
  readonly record: string;
}

export interface RetentionResult {
  readonly source: string;
  readonly removed: readonly string[];
  readonly events: number;
}

export interface AuditServiceOptions {
  readonly db: Db;
  readonly lakeDir: string;
  readonly state: StateService;
  readonly lake: Pick<LakeShell, 'inspectLake'>;
  readonly batchSize?: number;
  /** Time threshold of the flusher; 0 disables the timer (tests flush by hand). */
  readonly flushIntervalMs?: number;
  /** How often retention runs; 0 disables it. */
  readonly retentionIntervalMs?: number;
  readonly now?: () => Date;
  /** Test hooks and knobs of the flusher (flusher.ts). */
  readonly afterWrite?: (batch: number) => Promise<void> | void;
  readonly afterSlice?: (batch: number, stamped: number) => Promise<void> | void;
  readonly sliceRows?: number;
  /** The Parquet writer's lanes (parquet-writer.ts); its defaults otherwise. */
  readonly writer?: Pick<ParquetWriterOptions, 'lanes' | 'minLaneBytes'>;
}

export interface AuditService {
  readonly flusher: Flusher;
  flush(source?: string): Promise<FlushResult[]>;
  /**
   * Checks one source's chain, after recovery: a batch a killed flush left
   * pending is completed first and dead writers' staging files are removed,
   * so a crash leftover is repaired, not reported.
   */
  verify(source: string): Promise<VerifyReport>;
  /** `verify` of every source, in name order. */
  verifyAll(): Promise<VerifyReport[]>;
  listSources(): Promise<SourceInfo[]>;
  sourceNames(): Promise<string[]>;
  createSource(input: CreateSourceInput): Promise<SourceInfo>;
  setRetention(source: string, days: number | null): Promise<void>;
  deleteSource(source: string): Promise<void>;
  ingest(source: string, lines: readonly string[]): Promise<IngestResult>;
  listQuarantine(source?: string, limit?: number): Promise<QuarantineEntry[]>;
  createIngestKey(source: string, name: string): Promise<{ id: string; key: string; source: string }>;
  /** The source a presented ingest key may write to, or null. */
  verifyIngestKey(text: string): Promise<{ id: string; source: string } | null>;
  revokeIngestKey(id: string): Promise<void>;
  listIngestKeys(): Promise<{ id: string; source: string; name: string; createdAt: string; lastUsedAt?: string; revokedAt?: string }[]>;
  applyRetention(source?: string): Promise<RetentionResult[]>;
  /** Merges the small files of each closed day partition into one, recorded in the chain (compaction.ts). */
  compact(source?: string): Promise<CompactionResult[]>;
  /** Makes sure `steward.security` exists, so grants (the demo's auditors) can name it. */
  ensureSecurityDatabase(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export async function createAuditService(options: AuditServiceOptions): Promise<AuditService> {
  const { db, lakeDir, state } = options;
  const now = options.now ?? ((): Date => new Date());
  const stagingDir = path.join(lakeDir, 'security', '.staging');
  let writer: ParquetWriter | undefined;
  const getWriter = async (): Promise<ParquetWriter> => (writer ??= await createParquetWriter({ ...options.writer, stagingDir }));
  const compiled = new Map<string, (r: unknown) => MapResult>();
  const mapperOf = (mapping: string): ((r: unknown) => MapResult) => {
    let f = compiled.get(mapping);
    if (f === undefined) {
      if (MAPPINGS[mapping as MappingName] === undefined) throw new StewardError('STEWARD_E_CONFIG', `unknown mapping \`${mapping}\``);
      compiled.set(mapping, (f = mapperFor(mapping as MappingName)));
    }
    return f;
  };

  async function ensureSecurityDatabase(): Promise<void> {
    const snap = await state.snapshot();
    if (snap.world.databases.some((d) => d.catalog === SECURITY_CATALOG && d.name === SECURITY_DATABASE)) return;
    await state.change({
      actor: 'system',
      action: 'audit.init',
      resource: `${SECURITY_CATALOG}.${SECURITY_DATABASE}`,
      build: (world) => ensureParents(world, SECURITY_CATALOG, SECURITY_DATABASE),
    });
  }

  /** Registers (or refreshes) `steward.security.<source>` as a hive-partitioned Parquet table. */
  async function register(source: string): Promise<void> {
    const inspected = await options.lake.inspectLake({ location: `${sourceDir(lakeDir, source)}/`, format: 'parquet', hivePartitioning: true });
    const table = makeTable({ catalog: SECURITY_CATALOG, database: SECURITY_DATABASE, table: source }, inspected.columns, inspected.source);
    await state.change({
      actor: 'system',
      action: 'audit.register',
      resource: `${SECURITY_CATALOG}.${SECURITY_DATABASE}.${source}`,
      build: (world): Change[] => {
        const existing = findTable(world, { catalog: SECURITY_CATALOG, database: SECURITY_DATABASE, table: source });
        if (existing !== undefined && JSON.stringify(existing.columns) === JSON.stringify(table.columns)) return [];
        return [...ensureParents(world, SECURITY_CATALOG, SECURITY_DATABASE), { op: 'put', kind: 'table', entity: table }];
      },
    });
    await db.query('UPDATE steward.audit_sources SET registered = true WHERE name = $1', [source]);
  }

  const flusher = createFlusher({
    db,
    lakeDir,
    writer: {
      get duckdb() {
        if (writer === undefined) throw new StewardError('STEWARD_E_INTERNAL', 'the parquet writer is not open');
        return writer.duckdb;
      },
      writeBatch: async (dir, input) => (await getWriter()).writeBatch(dir, input),
      close: () => writer?.close(),
    },
    ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
    ...(options.afterWrite === undefined ? {} : { afterWrite: options.afterWrite }),
    ...(options.afterSlice === undefined ? {} : { afterSlice: options.afterSlice }),
    ...(options.sliceRows === undefined ? {} : { sliceRows: options.sliceRows }),
    onFirstFiles: register,
  });

  async function sourceRow(name: string): Promise<SourceRow> {
    const { rows } = await db.query<SourceRow>('SELECT * FROM steward.audit_sources WHERE name = $1', [name]);
    const row = rows[0];
    if (row === undefined) throw notFound('audit source', name);
    return row;
  }

  async function listSources(): Promise<SourceInfo[]> {
    const { rows } = await db.query<SourceRow>('SELECT * FROM steward.audit_sources ORDER BY name');
    const backlog = await flusher.backlog();
    const snap = await state.snapshot();
    return rows.map((r) => {
      const table = findTable(snap.world, { catalog: SECURITY_CATALOG, database: SECURITY_DATABASE, table: r.name });
      return {
        name: r.name,
        mapping: r.mapping,
        ...(r.description === null ? {} : { description: r.description }),
        region: r.region,
        accountId: r.account_id,
        ...(r.retention_days === null ? {} : { retentionDays: r.retention_days }),
        events: Number(r.head_seq),
        headHash: r.head_hash,
        backlog: backlog[r.name] ?? 0,
        ...(table === undefined ? {} : { table: `${SECURITY_CATALOG}.${SECURITY_DATABASE}.${r.name}` }),
      };
    });
  }

  async function ingest(source: string, lines: readonly string[]): Promise<IngestResult> {
    if (lines.length > MAX_INGEST_LINES) {
      throw new StewardError('STEWARD_E_PAYLOAD_TOO_LARGE', `an ingest batch holds at most ${MAX_INGEST_LINES} lines, got ${lines.length}; split it`);
    }
    let bytes = 0;
    for (const l of lines) bytes += l.length;
    if (bytes > MAX_INGEST_BYTES) throw new StewardError('STEWARD_E_PAYLOAD_TOO_LARGE', `an ingest batch holds at most ${MAX_INGEST_BYTES} bytes; split it`);
    const src = await sourceRow(source);
    if (src.name === STEWARD_SOURCE) throw new StewardError('STEWARD_E_FORBIDDEN', 'the `steward` source holds only steward\u2019s own events');
    const map = mapperOf(src.mapping);
    const events: unknown[] = [];
    const quarantine: { line: number; reason: string; record: string }[] = [];
    lines.forEach((text, i) => {
      const line = i + 1;
      if (text.trim() === '') return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text) as unknown;
      } catch (e) {
        quarantine.push({ line, reason: `not JSON: ${(e as Error).message}`, record: cut(text, MAX_QUARANTINED_RECORD) });
        return;
      }
      const records = recordsOf(MAPPINGS[src.mapping as MappingName] ?? {}, parsed);
      for (const rec of records) {
        const r = map(rec);
        // Stored conformed: the flush reads outbox events with the schema's column types.
        if (r.ok) events.push(conform(r.event).event);
        else quarantine.push({ line, reason: r.reason, record: cut(JSON.stringify(rec) ?? text, MAX_QUARANTINED_RECORD) });
      }
    });
    await db.transaction(async (tx) => {
      if (events.length > 0) {
        await tx.query(
          `INSERT INTO steward.audit_outbox (source, event) SELECT $1, e FROM jsonb_array_elements($2::jsonb) AS e`,
          [source, JSON.stringify(events).replace(/\\u0000/g, '\\ufffd')],
        );
      }
      if (quarantine.length > 0) {
        await tx.query(
          `INSERT INTO steward.audit_quarantine (source, line, reason, record)
           SELECT $1, line, reason, record FROM jsonb_to_recordset($2::jsonb) AS x(line integer, reason text, record text)`,
          [source, JSON.stringify(quarantine).replace(/\\u0000/g, '\\ufffd')],
        );
      }
    });
    const backlog = (await flusher.backlog())[source] ?? 0;
    if (backlog >= (options.batchSize ?? 50_000)) inBackground(flusher.flush(source).catch((e: unknown) => console.error('[steward] audit flush failed:', (e as Error).message)));
    return { source, accepted: events.length, quarantined: quarantine.length, problems: quarantine.slice(0, 20).map((q) => ({ line: q.line, reason: q.reason })) };
  }

  /** Size-threshold flushes run beside the request; stop() waits for them, so a one-shot CLI never closes the store under one. */
  const background = new Set<Promise<unknown>>();
  function inBackground(work: Promise<unknown>): void {
    background.add(work);
    void work.finally(() => background.delete(work));
  }

  /**
   * Once across servers at a time (store/run-once.ts): two servers pruning the
   * same partition would record its positions twice (a doubled `expired`
   * count) and race on the files. The one that waited finds nothing left.
   */
  async function applyRetention(source?: string): Promise<RetentionResult[]> {
    return maintenance('retention', () => pruneExpired(source));
  }

  /** Retention and compaction rewrite the same partitions: one of them, on one server, at a time. */
  async function maintenance<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const r = await runOnce(db, 'audit.maintenance', fn);
    if (!r.ran) throw new StewardError('STEWARD_E_CONFLICT', `${what}: lake maintenance (retention or compaction) is already running on this or another server; retry when it ends`);
    return r.value;
  }

  /** Merges the small files of each closed day partition (compaction.ts), recorded in the chain. */
  async function compact(source?: string): Promise<CompactionResult[]> {
    return maintenance('compaction', async () => {
      const w = await getWriter();
      const out: CompactionResult[] = [];
      for (const name of source === undefined ? await sourceNames() : [(await sourceRow(source)).name]) {
        const r = await compactSource({ db, duckdb: w.duckdb, root: sourceDir(lakeDir, name), source: name, today: eventDay(now().getTime()) });
        if (r.partitions.length > 0) {
          await state.log([{ actor: 'system', action: 'audit.compact', resource: name, result: 'ok', reason: `merged ${r.filesBefore} file(s) of ${r.partitions.length} day partition(s), ${r.events} event(s)` }]);
        }
        if (r.refused.length > 0) {
          await state.log([{ actor: 'system', action: 'audit.compact', resource: name, result: 'error', reason: `left ${r.refused.length} partition(s) as they were: a file no longer matches the chain (run verify): ${r.refused.join(', ')}`.slice(0, 2000) }]);
        }
        out.push(r);
      }
      return out;
    });
  }

  async function pruneExpired(source?: string): Promise<RetentionResult[]> {
    const { rows } = await db.query<SourceRow>(
      `SELECT * FROM steward.audit_sources WHERE retention_days IS NOT NULL ${source === undefined ? '' : 'AND name = $1'} ORDER BY name`,
      source === undefined ? [] : [source],
    );
    const out: RetentionResult[] = [];
    const w = await getWriter();
    for (const src of rows) {
      const cutoff = eventDay(now().getTime() - (src.retention_days ?? 0) * 86_400_000);
      const root = sourceDir(lakeDir, src.name);
      const dirs = await w.duckdb.all<{ file: string }>('SELECT DISTINCT parse_dirpath(file) AS file FROM glob($1)', [`${root}/region=*/accountId=*/eventDay=*/*.parquet`]);
      const removed: string[] = [];
      let events = 0;
      for (const { file: dir } of dirs) {
        const m = /eventDay=(\d{8})$/.exec(dir);
        if (m === null || (m[1] as string) >= cutoff) continue;
        const seqs = await w.duckdb.all<{ seq: number }>('SELECT seq FROM read_parquet($1) ORDER BY seq', [`${dir}/*.parquet`]);
        const ranges: [number, number][] = [];
        for (const { seq } of seqs) {
          const last = ranges[ranges.length - 1];
          if (last !== undefined && seq === last[1] + 1) last[1] = seq;
          else ranges.push([seq, seq]);
        }
        const partition = path.relative(root, dir);
        // Record first, then delete: a crash in between leaves a record of events that still exist, never silent gaps.
        await db.query(
          `INSERT INTO steward.audit_pruned (source, partition, seq_ranges, events) VALUES ($1, $2, $3::jsonb, $4)
           ON CONFLICT (source, partition) DO UPDATE SET seq_ranges = steward.audit_pruned.seq_ranges || EXCLUDED.seq_ranges, events = steward.audit_pruned.events + EXCLUDED.events, pruned_at = now()`,
          [src.name, partition, JSON.stringify(ranges), seqs.length],
        );
        await fs.rm(dir, { recursive: true, force: true });
        removed.push(partition);
        events += seqs.length;
      }
      if (removed.length > 0) {
        await state.log([
          { actor: 'system', action: 'audit.retention', resource: src.name, result: 'ok', reason: `removed ${removed.length} day partition(s), ${events} event(s) older than ${cutoff}` },
        ]);
      }
      out.push({ source: src.name, removed, events });
    }
    return out;
  }

  const sourceNames = async (): Promise<string[]> => (await db.query<{ name: string }>('SELECT name FROM steward.audit_sources ORDER BY name')).rows.map((r) => r.name);

  async function verify(source: string): Promise<VerifyReport> {
    const src0 = await sourceRow(source);
    // Recovery first: complete a batch a killed flush left pending (its files may already be in the lake)
    // and remove dead writers' staging files, so verify judges the lake as recovery leaves it.
    if (src0.pending !== null) await flusher.recover(source);
    await cleanStaging(stagingDir);
    // Finish a compaction a crash interrupted; skipped while one runs (its files are then in motion).
    await runOnce(db, 'audit.maintenance', () => recoverCompactions(db, sourceDir(lakeDir, source), source));
    const src = src0.pending === null ? src0 : await sourceRow(source);
    const w = await getWriter();
    const root = sourceDir(lakeDir, source);
    const glob = `${root}/**/*.parquet`;
    const { rows: batches } = await db.query<{
      batch: number;
      first_seq: number;
      last_seq: number;
      last_hash: string;
      files: { file: string; sha256: string; events: number }[];
      prev_hash: string;
      hash: string;
    }>('SELECT batch, first_seq, last_seq, last_hash, files, prev_hash, hash FROM steward.audit_batches WHERE source = $1 ORDER BY batch', [source]);
    const stored: StoredBatch[] = batches.map((b) => ({
      source,
      batch: Number(b.batch),
      firstSeq: Number(b.first_seq),
      lastSeq: Number(b.last_seq),
      lastHash: b.last_hash,
      files: b.files,
      prevHash: b.prev_hash,
      hash: b.hash,
    }));
    // Files still matching their batch's sha256 are intact as a whole; event digests are checked in the others.
    const memo = new Map<string, string | undefined>();
    const unchanged = await unchangedFiles(root, stored, memo);
    const rows = (await readChainRows(w.duckdb, glob)).map((r) => (r.file !== undefined && unchanged.has(path.resolve(r.file)) ? { ...r, intact: true } : r));
    const pruned = await db.query<{ partition: string; seq_ranges: [number, number][] }>('SELECT partition, seq_ranges FROM steward.audit_pruned WHERE source = $1', [source]);
    const expired = pruned.rows.flatMap((r) => r.seq_ranges);
    const report = verifyChain(source, rows, { seq: Number(src.head_seq), hash: src.head_hash }, expired);
    const present = (await w.duckdb.all<{ file: string }>('SELECT file FROM glob($1)', [glob])).map((r) => r.file);
    const more = await verifyBatches(
      root,
      stored,
      { batchHash: src.batch_hash, ...(src.pending === null ? {} : { pendingBatch: src.pending.batch }) },
      present,
      new Set(pruned.rows.map((r) => r.partition.split(path.sep).join('/'))),
      report.problems,
      memo,
    );
    return more.length === 0 ? report : { ...report, ok: false, problems: [...report.problems, ...more] };
  }

  let flushTimer: NodeJS.Timeout | undefined;
  let retentionTimer: NodeJS.Timeout | undefined;
  let flushing: Promise<unknown> | undefined;
  let lastFlushError = '';

  return {
    flusher,
    flush: (source) => flusher.flush(source),
    verify,
    async verifyAll() {
      const out: VerifyReport[] = [];
      for (const name of await sourceNames()) out.push(await verify(name));
      return out;
    },
    listSources,
    sourceNames,
    async createSource(input) {
      if (!SOURCE_NAME.test(input.name)) throw invalid('name', 'must be a lowercase identifier (letters, digits, underscores), starting with a letter');
      if (MAPPINGS[input.mapping] === undefined) throw invalid('mapping', `unknown mapping \`${input.mapping}\`; one of ${Object.keys(MAPPINGS).join(', ')}`);
      try {
        await db.query(
          `INSERT INTO steward.audit_sources (name, mapping, description, region, account_id, retention_days) VALUES ($1, $2, $3, $4, $5, $6)`,
          [input.name, input.mapping, input.description ?? null, input.region ?? 'global', input.accountId ?? 'external', input.retentionDays ?? null],
        );
      } catch (e) {
        if ((e as { code?: string }).code === '23505') throw new StewardError('STEWARD_E_ALREADY_EXISTS', `audit source \`${input.name}\` already exists`);
        if ((e as { code?: string }).code === '23514') throw invalid('source', 'region and account must be 1 to 64 of `A-Z a-z 0-9 _ . -`');
        throw e;
      }
      const info = (await listSources()).find((s) => s.name === input.name);
      if (info === undefined) throw notFound('audit source', input.name);
      return info;
    },
    async setRetention(source, days) {
      await sourceRow(source);
      await db.query('UPDATE steward.audit_sources SET retention_days = $2 WHERE name = $1', [source, days]);
    },
    async deleteSource(source) {
      if (source === STEWARD_SOURCE) throw new StewardError('STEWARD_E_FORBIDDEN', 'the `steward` source cannot be deleted');
      await sourceRow(source);
      await db.query('DELETE FROM steward.audit_sources WHERE name = $1', [source]);
    },
    ingest,
    async listQuarantine(source, limit = 100) {
      const { rows } = await db.query<{ id: number; source: string; received_at: Date; line: number | null; reason: string; record: string }>(
        `SELECT id, source, received_at, line, reason, record FROM steward.audit_quarantine ${source === undefined ? '' : 'WHERE source = $2'} ORDER BY id DESC LIMIT $1`,
        source === undefined ? [limit] : [limit, source],
      );
      return rows.map((r) => ({
        id: Number(r.id),
        source: r.source,
        receivedAt: r.received_at.toISOString(),
        ...(r.line === null ? {} : { line: r.line }),
        reason: r.reason,
        record: r.record,
      }));
    },
    async createIngestKey(source, name) {
      const src = await sourceRow(source);
      if (src.name === STEWARD_SOURCE) throw new StewardError('STEWARD_E_FORBIDDEN', 'the `steward` source does not accept ingest');
      const id = randomBytes(8).toString('hex');
      const secret = randomBytes(32).toString('base64url');
      await db.query('INSERT INTO steward.audit_ingest_keys (id, source, name, secret_hash) VALUES ($1, $2, $3, $4)', [id, source, name, sha256Hex(secret)]);
      return { id, key: `sik_${id}_${secret}`, source };
    },
    async verifyIngestKey(text) {
      const m = KEY_PATTERN.exec(text);
      if (m === null) return null;
      const [, id, secret] = m as unknown as [string, string, string];
      const { rows } = await db.query<{ id: string; source: string; secret_hash: string; revoked_at: Date | null; last_used_at: Date | null }>(
        'SELECT id, source, secret_hash, revoked_at, last_used_at FROM steward.audit_ingest_keys WHERE id = $1',
        [id],
      );
      const row = rows[0];
      if (row === undefined || row.revoked_at !== null) return null;
      const a = Buffer.from(sha256Hex(secret), 'hex');
      const b = Buffer.from(row.secret_hash, 'hex');
      if (a.length !== b.length || !timingSafeEqual(a, b)) return null;
      if (row.last_used_at === null || now().getTime() - row.last_used_at.getTime() > 60_000) {
        await db.query('UPDATE steward.audit_ingest_keys SET last_used_at = $2::timestamptz WHERE id = $1', [id, now().toISOString()]);
      }
      return { id: row.id, source: row.source };
    },
    async revokeIngestKey(id) {
      const { rows } = await db.query<{ id: string }>('UPDATE steward.audit_ingest_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING id', [id]);
      if (rows.length === 0) throw notFound('ingest key', id);
    },
    async listIngestKeys() {
      const { rows } = await db.query<{ id: string; source: string; name: string; created_at: Date; last_used_at: Date | null; revoked_at: Date | null }>(
        'SELECT id, source, name, created_at, last_used_at, revoked_at FROM steward.audit_ingest_keys ORDER BY created_at, id',
      );
      return rows.map((r) => ({
        id: r.id,
        source: r.source,
        name: r.name,
        createdAt: r.created_at.toISOString(),
        ...(r.last_used_at === null ? {} : { lastUsedAt: r.last_used_at.toISOString() }),
        ...(r.revoked_at === null ? {} : { revokedAt: r.revoked_at.toISOString() }),
      }));
    },
    applyRetention,
    compact,
    ensureSecurityDatabase,
    async start() {
      await ensureSecurityDatabase();
      await cleanStaging(stagingDir).catch((e: unknown) => console.error(`[steward] audit staging cleanup failed: ${(e as Error).message}`));
      const interval = options.flushIntervalMs ?? 5_000;
      if (interval > 0) {
        flushTimer = setInterval(() => {
          if (flushing !== undefined) return;
          flushing = flusher
            .flush()
            .then(() => {
              lastFlushError = '';
            })
            .catch((e: unknown) => {
              // Say it once per distinct failure, not every few seconds.
              const msg = (e as Error).message;
              if (msg !== lastFlushError) console.error(`[steward] audit flush failed: ${msg}`);
              lastFlushError = msg;
            })
            .finally(() => {
              flushing = undefined;
            });
        }, interval);
        flushTimer.unref();
      }
      const retention = options.retentionIntervalMs ?? 3_600_000;
      if (retention > 0) {
        retentionTimer = setInterval(() => {
          void applyRetention()
            .then(() => compact())
            .catch((e: unknown) => {
            // Another server running it this hour is the normal case of several servers, not a failure.
              if (!(e instanceof StewardError && e.code === 'STEWARD_E_CONFLICT')) console.error(`[steward] audit maintenance failed: ${(e as Error).message}`);
            });
        }, retention);
        retentionTimer.unref();
      }
    },
    async stop() {
      if (flushTimer !== undefined) clearInterval(flushTimer);
      if (retentionTimer !== undefined) clearInterval(retentionTimer);
      await flushing?.catch(() => {});
      await Promise.all([...background]);
      writer?.close();
      writer = undefined;
    },
  };
}
