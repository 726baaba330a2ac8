/**
 * Security lake benchmark.
 *
 *     node --import tsx bench/audit.bench.ts [--quick]
 *
 * 1. Ingest throughput into Parquet on one core: CloudTrail JSON lines parsed,
 *    mapped to OCSF, conformed, hash-chained and written to Parquet by DuckDB
 *    (threads = 1) in flush-sized batches, i.e. the flusher's work without the
 *    outbox round trip (reported separately: outbox insert rate into PGlite).
 * 2. Aggregates over 10M events (1M with --quick) in hive day partitions
 *    (30 days): per day over everything, and one day's partition with pruning.
 * 3. Overhead of auditing on the decision path: authorize alone vs authorize
 *    plus queuing the decision-log entry in the group-commit buffer, plus the
 *    end-to-end figure where the buffer's commits to an in-process PGlite share
 *    the same core.
 *
 * Results go to bench/results/audit.json (audit-quick.json with --quick); the
 * summary table is printed on stdout.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { mapperFor } from '../src/audit/mappings/index.js';
import { chainEvents } from '../src/audit/flusher.js';
import { createParquetWriter } from '../src/audit/parquet-writer.js';
import { GENESIS_HASH } from '../src/audit/lake-schema.js';
import type { OcsfEvent } from '../src/audit/ocsf.js';
import { createAuditBuffer } from '../src/audit/audit-buffer.js';
import { openDuckDb } from '../src/lake/duckdb.js';
import { openPglite } from '../src/store/db.js';
import { migrate } from '../src/store/migrations.js';
import { createDecisionLog, type DecisionLogEntry } from '../src/store/decision-log.js';
import { createEngine } from '../src/policy/engine.js';
import type { AuthorizeRequest } from '../src/policy/decision.js';
import type { Permission, PolicyWorld, ResourceRef } from '../src/policy/model.js';
import { createRng, generateLargeWorld } from '../test/support/random-world.js';

export interface AuditBenchOptions {
  readonly quick?: boolean;
  readonly out?: string | null;
  readonly log?: (line: string) => void;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const progress = (line: string): void => void process.stderr.write(`${line}\n`);
const seconds = (t0: number): number => (performance.now() - t0) / 1000;

// ------------------------------------------------------------------ 1. ingest

const EVENT_NAMES = ['DescribeInstances', 'GetObject', 'PutObject', 'AssumeRole', 'ConsoleLogin', 'CreateUser', 'AttachUserPolicy', 'DeleteBucket', 'ListBuckets', 'RunInstances'];

function cloudTrailLines(n: number, from = 0): string[] {
  const rng = createRng(42 + from).next;
  const t0 = Date.UTC(2025, 2, 1);
  const out: string[] = [];
  for (let i = from; i < from + n; i++) {
    const user = `user${Math.floor(rng() * 500)}`;
    const name = EVENT_NAMES[Math.floor(rng() * EVENT_NAMES.length)] as string;
    const failed = rng() < 0.05;
    out.push(
      JSON.stringify({
        eventVersion: '1.08',
        userIdentity: { type: 'IAMUser', principalId: `AIDA${i % 9973}`, arn: `arn:aws:iam::111122223333:user/${user}`, accountId: '111122223333', accessKeyId: 'AKIAEXAMPLE', userName: user },
        eventTime: new Date(t0 + i * 50).toISOString(),
        eventSource: 'ec2.amazonaws.com',
        eventName: name,
        awsRegion: rng() < 0.5 ? 'us-east-1' : 'eu-west-1',
        sourceIPAddress: `198.51.${i % 256}.${(i >> 8) % 256}`,
        userAgent: 'aws-cli/2.15.0',
        ...(failed ? { errorCode: 'AccessDenied', errorMessage: 'Access Denied' } : {}),
        requestParameters: { instanceId: `i-${i.toString(16)}` },
        responseElements: null,
        requestID: `req-${i}`,
        eventID: `evt-${i}`,
        readOnly: true,
        eventType: 'AwsApiCall',
        managementEvent: true,
        recipientAccountId: '111122223333',
        eventCategory: 'Management',
      }),
    );
  }
  return out;
}

interface IngestFigures { events: number; seconds: number; perSecond: number; mapSeconds: number; chainSeconds: number; writeSeconds: number; writePerSecond: number }

async function ingestBench(n: number, dir: string): Promise<IngestFigures> {
  const map = mapperFor('cloudtrail');
  const writer = await createParquetWriter({ stagingDir: path.join(dir, '.staging') });
  const batch = 50_000;
  let mapS = 0;
  let chainS = 0;
  let writeS = 0;
  let head = { seq: 0, hash: GENESIS_HASH };
  const t0 = performance.now();
  let generateS = 0;
  for (let i = 0; i < n; i += batch) {
    // Input is generated per batch and not timed (a million lines held at once only measure the GC).
    let t = performance.now();
    const lines = cloudTrailLines(Math.min(batch, n - i), i);
    generateS += seconds(t);
    t = performance.now();
    const events: OcsfEvent[] = [];
    for (const l of lines) {
      const r = map(JSON.parse(l));
      if (r.ok) events.push(r.event);
    }
    mapS += seconds(t);
    t = performance.now();
    const chained = chainEvents(events, head);
    head = { seq: chained.headSeq, hash: chained.headHash };
    chainS += seconds(t);
    t = performance.now();
    await writer.write(path.join(dir, 'ext', 'cloudtrail', 'region=us-east-1', 'accountId=111122223333', 'eventDay=20250301'), `b${i}.parquet`, chained.lines);
    writeS += seconds(t);
  }
  const total = seconds(t0) - generateS;
  writer.close();
  return { events: n, seconds: total, perSecond: n / total, mapSeconds: mapS, chainSeconds: chainS, writeSeconds: writeS, writePerSecond: n / writeS };
}

async function outboxBench(n: number): Promise<{ events: number; seconds: number; perSecond: number }> {
  const db = await openPglite('memory');
  await migrate(db);
  await db.query("INSERT INTO steward.audit_sources (name, mapping) VALUES ('bench', 'ocsf')");
  const map = mapperFor('cloudtrail');
  const events = cloudTrailLines(n).map((l) => {
    const r = map(JSON.parse(l));
    return r.ok ? r.event : null;
  });
  const t0 = performance.now();
  for (let i = 0; i < events.length; i += 10_000) {
    await db.query("INSERT INTO steward.audit_outbox (source, event) SELECT 'bench', e FROM jsonb_array_elements($1::jsonb) AS e", [JSON.stringify(events.slice(i, i + 10_000))]);
  }
  const s = seconds(t0);
  await db.close();
  return { events: n, seconds: s, perSecond: n / s };
}

// --------------------------------------------------------------- 2. aggregate

interface AggregateFigures { events: number; days: number; generateSeconds: number; groupByDaySeconds: number; groups: number; oneDaySeconds: number; oneDayTop: number; threads: number }

async function aggregateBench(n: number, dir: string): Promise<AggregateFigures> {
  const db = await openDuckDb({ config: { threads: '1' } });
  const days = 30;
  const start = Date.UTC(2025, 2, 1);
  const span = days * 86_400_000;
  let t = performance.now();
  // Generated by DuckDB itself (same layout and column types as the flusher writes, fewer optional attributes).
  await db.run(
    `COPY (
       SELECT i AS seq, md5(i::VARCHAR) || md5((i + 1)::VARCHAR) AS hash, md5((i - 1)::VARCHAR) || md5(i::VARCHAR) AS prev_hash,
              (CASE WHEN i % 10 < 7 THEN 2 ELSE 1 END)::INTEGER AS activity_id,
              struct_pack("user" := struct_pack(uid := 'user:u' || (hash(i) % 2000)::VARCHAR, name := 'u' || (hash(i) % 2000)::VARCHAR)) AS actor,
              struct_pack(operation := 'authorize.SELECT') AS api,
              (CASE WHEN i % 50 = 0 THEN 3002 ELSE 6003 END)::INTEGER AS class_uid,
              struct_pack(product := struct_pack(name := 'Steward', vendor_name := 'Steward'), uid := 'steward-' || i::VARCHAR, version := '1.1.0') AS metadata,
              (CASE WHEN hash(i) % 20 = 0 THEN 2 ELSE 1 END)::INTEGER AS severity_id,
              struct_pack(svc_name := 'steward-api') AS src_endpoint,
              (CASE WHEN hash(i) % 20 = 0 THEN 2 ELSE 1 END)::INTEGER AS status_id,
              ($2::BIGINT + (i * $3::BIGINT) // $1::BIGINT)::BIGINT AS time,
              'local' AS region, 'steward' AS accountId,
              strftime(make_timestamp((($2::BIGINT + (i * $3::BIGINT) // $1::BIGINT) * 1000)::BIGINT), '%Y%m%d') AS eventDay
       FROM range($1::BIGINT) r(i)
     ) TO '${dir.replace(/'/g, "''")}' (FORMAT parquet, PARTITION_BY (region, accountId, eventDay), COMPRESSION zstd)`,
    [n, start, span],
  );
  const generateS = seconds(t);
  const glob = `${dir}/**/*.parquet`;
  // Warm the file list and metadata cache once, as a running monitor would.
  await db.all('SELECT count(*) FROM read_parquet($1, hive_partitioning = true)', [glob]);
  t = performance.now();
  const perDay = await db.all(
    `SELECT eventDay, class_uid, count(*) AS events, count(*) FILTER (WHERE status_id = 2) AS refused, count(DISTINCT actor.user.uid) AS principals
     FROM read_parquet($1, hive_partitioning = true) GROUP BY ALL ORDER BY ALL`,
    [glob],
  );
  const allDaysS = seconds(t);
  t = performance.now();
  const oneDay = await db.all(
    `SELECT actor.user.uid AS principal, count(*) FILTER (WHERE status_id = 2) AS refused, count(*) AS events
     FROM read_parquet($1, hive_partitioning = true) WHERE eventDay = '20250315' GROUP BY 1 ORDER BY 2 DESC LIMIT 10`,
    [glob],
  );
  const oneDayS = seconds(t);
  db.close();
  return { events: n, days, generateSeconds: generateS, groupByDaySeconds: allDaysS, groups: perDay.length, oneDaySeconds: oneDayS, oneDayTop: oneDay.length, threads: 1 };
}

// ---------------------------------------------------------------- 3. overhead

function decisionRequests(world: PolicyWorld, n: number): AuthorizeRequest[] {
  const rng = createRng(7).next;
  const users = world.users.map((u) => `user:${u.name}` as const);
  const tables = world.tables;
  const out: AuthorizeRequest[] = [];
  for (let i = 0; i < n; i++) {
    const t = tables[Math.floor(rng() * tables.length)];
    if (t === undefined) break;
    const col = t.columns[Math.floor(rng() * t.columns.length)];
    const resource: ResourceRef =
      rng() < 0.5 || col === undefined
        ? { level: 'table', catalog: t.catalog, database: t.database, table: t.name }
        : { level: 'column', catalog: t.catalog, database: t.database, table: t.name, column: col.name };
    out.push({ principal: users[Math.floor(rng() * users.length)] ?? 'user:nobody', action: 'SELECT' as Permission, resource });
  }
  return out;
}

interface OverheadFigures { decisions: number; authorizeSeconds: number; authorizeAuditSeconds: number; ratio: number; authorizePerSecond: number; commitSecondsPerRound: number; endToEndRatio: number; committedRows: number }

async function overheadBench(quick: boolean): Promise<OverheadFigures> {
  const world = generateLargeWorld({ tables: quick ? 1_000 : 10_000, columnsPerTable: 10, principals: quick ? 200 : 2_000, tagGrants: quick ? 50 : 500, guardrails: 10, seed: 3 });
  const engine = createEngine(world);
  const n = quick ? 100_000 : 300_000;
  const reqs = decisionRequests(world, n);
  const entryOf = (r: AuthorizeRequest, d: ReturnType<typeof engine.authorize>): DecisionLogEntry => ({
    actor: r.principal,
    action: `authorize.${r.action}`,
    resource: r.resource.level === 'table' ? `${r.resource.catalog}.${r.resource.database}.${r.resource.table}` : 'column',
    result: d.decision,
    reason: d.reasons[0]?.message ?? d.decision,
    details: { principal: r.principal, grants: d.matchedGrants, guardrails: d.deniedBy },
  });
  // Warm both paths.
  for (const r of reqs.slice(0, 20_000)) engine.authorize(r);

  const timeAlone = (): number => {
    const t = performance.now();
    let allow = 0;
    for (const r of reqs) if (engine.authorize(r).decision === 'allow') allow++;
    if (allow < 0) throw new Error('unreachable');
    return seconds(t);
  };

  const db = await openPglite('memory');
  await migrate(db);
  const log = createDecisionLog(db);
  let committed = 0;
  const buffer = createAuditBuffer(
    async (entries) => {
      await log.appendDecisions(entries);
      committed += entries.length;
    },
    { maxBatch: 5_000, maxDelayMs: 5 },
  );
  // Decision path: decide, then queue the entry, built lazily in the drain (durability is not awaited inline).
  const timeWithAudit = (): number => {
    const t = performance.now();
    for (const r of reqs) {
      const d = engine.authorize(r);
      buffer.push(() => entryOf(r, d));
    }
    return seconds(t);
  };
  const alone: number[] = [];
  const audited: number[] = [];
  let drainS = 0;
  for (let round = 0; round < 3; round++) {
    alone.push(timeAlone());
    audited.push(timeWithAudit());
    const t = performance.now();
    await buffer.drain();
    drainS += seconds(t);
  }
  await db.close();
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const a = median(alone);
  const b = median(audited);
  return {
    decisions: n,
    authorizeSeconds: a,
    authorizeAuditSeconds: b,
    ratio: b / a,
    authorizePerSecond: n / a,
    commitSecondsPerRound: drainS / 3,
    endToEndRatio: (b + drainS / 3) / a,
    committedRows: committed,
  };
}

export async function run(opts: AuditBenchOptions = {}): Promise<Record<string, unknown>> {
  const quick = opts.quick === true;
  const log = opts.log ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const tmp = path.join(os.tmpdir(), `steward-audit-bench-${process.pid}`);
  mkdirSync(tmp, { recursive: true });
  try {
    progress('ingest: mapping, chaining and writing CloudTrail events to Parquet');
    const ingest = await ingestBench(quick ? 200_000 : 1_000_000, path.join(tmp, 'ingest'));
    progress('ingest: outbox inserts into PGlite');
    const outbox = await outboxBench(quick ? 50_000 : 200_000);
    progress('aggregate: generating and querying day partitions');
    const aggregate = await aggregateBench(quick ? 1_000_000 : 10_000_000, path.join(tmp, 'aggregate'));
    progress('overhead: authorize vs authorize + audit');
    const overhead = await overheadBench(quick);
    const result = {
      machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version, load: os.loadavg()[0], date: new Date().toISOString() },
      quick,
      ingest,
      outbox,
      aggregate,
      overhead,
      goals: { ingestPerSecond: 200_000, aggregateSeconds: 1, overheadRatio: 1.2 },
    };
    const out = opts.out === undefined ? path.join(root, 'bench', 'results', quick ? 'audit-quick.json' : 'audit.json') : opts.out;
    if (out !== null) {
      mkdirSync(path.dirname(out), { recursive: true });
      writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    }
    const f = (x: number, d = 0): string => x.toFixed(d);
    const rows: [string, string][] = [
      ['ingest into Parquet (1 core, map + chain + write)', `${f(ingest.perSecond / 1000)}k events/s over ${ingest.events} events (map ${f(ingest.mapSeconds, 2)} s, chain ${f(ingest.chainSeconds, 2)} s, Parquet ${f(ingest.writeSeconds, 2)} s = ${f(ingest.writePerSecond / 1000)}k/s) — goal ≥ 200k/s`],
      ['outbox insert (PGlite, in process)', `${f(outbox.perSecond / 1000)}k events/s`],
      [`aggregate per day over ${aggregate.events} events (${aggregate.days} day partitions, 1 thread)`, `${f(aggregate.groupByDaySeconds, 3)} s — goal ≤ 1 s`],
      ['one day partition, top refused principals', `${f(aggregate.oneDaySeconds, 3)} s`],
      ['authorize + audit / authorize (decision path)', `${f(overhead.ratio, 3)} (${f(overhead.authorizePerSecond / 1000)}k decisions/s alone) — goal ≤ 1.2`],
      ['… including the group commits on the same core', `${f(overhead.endToEndRatio, 2)}`],
    ];
    log(['| measure | result |', '|---|---|', ...rows.map(([a, b]) => `| ${a} | ${b} |`)].join('\n'));
    return result;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run({ quick: process.argv.includes('--quick') });
}
