/**
 * Security lake benchmark.
 *
 *     node --import tsx bench/audit.bench.ts [--quick] [--ingest]
 *
 * 1. Ingest throughput into Parquet, the flusher's own code
 *    (`ParquetWriter.writeBatch`, its default two lanes: two parts of each
 *    batch on two DuckDB connections at once, one thread each) in
 *    50,000-event batches, against the writer's floor (one DuckDB thread)
 *    measured in the same run (just before and just after):
 *    a. Steward's events: raw decision-log rows (NDJSON, as the state store
 *       hands a batch over) loaded, mapped to OCSF in SQL once, chained (seq,
 *       digest, previous digest) and written as zstd Parquet, with the sha256
 *       of each file for the batch chain. Per-stage times and CPU time; the
 *       same rows again through one lane (one core); ingest / floor
 *       ratios (wall and CPU) side by side. `--ingest` runs only this part
 *       (results in audit-ingest.json).
 *    b. The state store's side of a flush: building a batch's NDJSON in
 *       PGlite (`string_agg`), reported separately.
 *    c. CloudTrail records: mapped and conformed in JavaScript at ingest (the
 *       declarative mapping), then chained and written by the same bulk path.
 * 2. Aggregates over 10M events (1M with --quick) in hive day partitions
 *    (30 days): per day over everything, and one day's partition with pruning.
 * 3. Overhead of auditing on the decision path: authorize alone vs authorize
 *    plus queuing the decision-log entry in the group-commit buffer, plus the
 *    end-to-end figure where the buffer's commits to an in-process PGlite share
 *    the same core.
 *
 * Results go to bench/results/audit.json (audit-quick.json with --quick); the
 * summary table is printed on stdout, with the load average (the machine is
 * shared: figures under load are pessimistic).
 */
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { mapperFor } from '../src/audit/mappings/index.js';
import { createParquetWriter, type BatchTimings } from '../src/audit/parquet-writer.js';
import { DECISION_COLUMNS, STEWARD_EVENTS_SQL } from '../src/audit/lake-sql.js';
import { conform, GENESIS_HASH } from '../src/audit/lake-schema.js';
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
  /** Only section 1 (ingest against the floor); results in `audit-ingest.json`. */
  readonly ingestOnly?: boolean;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const progress = (line: string): void => void process.stderr.write(`${line}\n`);
const seconds = (t0: number): number => (performance.now() - t0) / 1000;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

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

/** Decision-log rows as the state store hands a batch over (json_build_object of each row). */
export function decisionLines(n: number, from: number): string {
  const t0 = Date.UTC(2025, 2, 1);
  const out: string[] = [];
  for (let i = from; i < from + n; i++) {
    const k = i % 20;
    const at = new Date(t0 + i * 20).toISOString();
    const user = `user:u${i % 997}`;
    let row: Record<string, unknown>;
    if (k < 15) {
      const deny = k % 5 === 0;
      row = {
        actor: k === 3 ? 'user:admin' : user,
        action: 'authorize.SELECT',
        resource: `lake.db${i % 13}.t${i % 101}${k % 2 === 0 ? '.ssn' : ''}`,
        result: deny ? 'deny' : 'allow',
        reason: deny ? 'guardrail pii-requires-privacy-officer denies it' : 'granted',
        details: { principal: user, grants: deny ? [] : [`grant-${i % 50}`], guardrails: deny ? ['pii-requires-privacy-officer'] : [], ip: `10.0.${i % 256}.${(i >> 8) % 256}` },
      };
    } else if (k < 17) row = { actor: 'anonymous', action: 'auth.token', resource: 'api', result: 'deny', reason: 'invalid, expired or revoked token', details: null };
    else if (k < 18) row = { actor: 'user:admin', action: 'grant.revoke', resource: `grant-${i % 50}`, result: 'ok', reason: '1 change(s)', details: { id: `grant-${i % 50}`, grantee: user, changes: [`delete grant grant-${i % 50}`] } };
    else row = { actor: 'user:admin', action: 'catalog.create', resource: `c${i}`, result: 'ok', reason: '1 change(s)', details: { changes: [`put catalog c${i}`] } };
    out.push(JSON.stringify({ id: i + 1, at, ...row }));
  }
  return out.join('\n');
}

interface StageFigures extends BatchTimings { readonly events: number; readonly seconds: number; readonly perSecond: number; readonly cpuSeconds: number; readonly perCpuSecond: number; readonly parquetBytes: number }

/** Runs batches through the production writer; input generation is not timed. */
async function writerBench(
  n: number,
  dir: string,
  kind: 'steward' | 'events',
  input: (count: number, from: number) => { ndjson: string; extraSeconds: number },
  lanes?: number,
): Promise<StageFigures & { inputSeconds: number }> {
  const writer = await createParquetWriter({ stagingDir: path.join(dir, '.staging'), ...(lanes === undefined ? {} : { lanes }) });
  const batch = 50_000;
  const t = { loadSeconds: 0, mapSeconds: 0, chainSeconds: 0, writeSeconds: 0 };
  let inputS = 0;
  let cpu = 0;
  let wall = 0;
  let bytes = 0;
  let head = { seq: 0, hash: GENESIS_HASH };
  for (let i = 0, b = 1; i < n; i += batch, b++) {
    const made = input(Math.min(batch, n - i), i);
    inputS += made.extraSeconds;
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    const out = await writer.writeBatch(dir, { kind, source: 'bench', batch: b, ndjson: made.ndjson, firstSeq: head.seq + 1, prevHash: head.hash, region: 'local', accountId: 'steward' });
    wall += (performance.now() - w0) / 1000;
    const c = process.cpuUsage(c0);
    cpu += (c.user + c.system) / 1e6;
    head = { seq: out.lastSeq, hash: out.lastHash };
    for (const k of Object.keys(t) as (keyof BatchTimings)[]) t[k] += out.timings[k];
    for (const f of out.files) bytes += statSync(f.path).size;
  }
  writer.close();
  // The whole call, cleanup included (the stages' laps leave out dropping the batch's tables).
  const seconds = wall;
  return { events: n, seconds, perSecond: n / seconds, cpuSeconds: cpu, perCpuSecond: n / cpu, parquetBytes: bytes, ...t, inputSeconds: inputS };
}

async function stewardIngestBench(n: number, dir: string, lanes?: number): Promise<StageFigures> {
  const r = await writerBench(n, dir, 'steward', (count, from) => ({ ndjson: decisionLines(count, from), extraSeconds: 0 }), lanes);
  const { inputSeconds: _unused, ...rest } = r;
  return rest;
}

/** CloudTrail: JSON.parse + declarative mapping + conform in JS (the ingest step), then the bulk writer. */
async function cloudTrailIngestBench(n: number, dir: string): Promise<StageFigures & { jsMapSeconds: number; jsMapPerSecond: number; endToEndPerSecond: number }> {
  const map = mapperFor('cloudtrail');
  let ord = 0;
  const r = await writerBench(n, dir, 'events', (count, from) => {
    const lines = cloudTrailLines(count, from);
    const t = performance.now();
    const out: string[] = [];
    for (const l of lines) {
      const m = map(JSON.parse(l));
      if (m.ok) out.push(JSON.stringify({ ...conform(m.event).event, ord: ++ord }));
    }
    return { ndjson: out.join('\n'), extraSeconds: seconds(t) };
  });
  const { inputSeconds, ...rest } = r;
  return { ...rest, jsMapSeconds: inputSeconds, jsMapPerSecond: n / inputSeconds, endToEndPerSecond: n / (inputSeconds + rest.seconds) };
}

/**
 * The writer's floor: DuckDB (1 thread) copying batches that are already mapped
 * (a temp table of OCSF rows) to zstd Parquet, and copying them into another
 * temp table. Nothing of Steward's runs in the timed part: it bounds what any
 * pipeline that stores these OCSF columns through DuckDB can reach on one core.
 * Wall time and CPU time (the process's, DuckDB's threads included): on a shared
 * machine the CPU figure moves less with the load.
 */
async function writerFloor(n: number, dir: string): Promise<FloorFigures> {
  const db = await openDuckDb({ config: { threads: '1' } });
  mkdirSync(dir, { recursive: true });
  const staging = path.join(dir, 'in.ndjson');
  writeFileSync(staging, decisionLines(n, 0));
  await db.run(`CREATE TEMP TABLE decisions AS SELECT id AS seq, * FROM read_json($1, format = 'newline_delimited', columns = ${DECISION_COLUMNS})`, [staging]);
  await db.run(`CREATE TEMP TABLE mapped AS ${STEWARD_EVENTS_SQL}`);
  const parquet: number[] = [];
  const parquetCpu: number[] = [];
  const copy: number[] = [];
  for (let i = 0; i < 3; i++) {
    let t = performance.now();
    const c0 = process.cpuUsage();
    await db.run(`COPY mapped TO '${path.join(dir, 'floor.parquet').replace(/'/g, "''")}' (FORMAT parquet, COMPRESSION zstd)`);
    const c = process.cpuUsage(c0);
    parquet.push(seconds(t));
    parquetCpu.push((c.user + c.system) / 1e6);
    t = performance.now();
    await db.run('CREATE OR REPLACE TEMP TABLE copied AS SELECT * FROM mapped');
    copy.push(seconds(t));
  }
  db.close();
  return { events: n, parquetPerSecond: n / median(parquet), parquetPerCpuSecond: n / median(parquetCpu), tableCopyPerSecond: n / median(copy) };
}

interface FloorFigures { readonly events: number; readonly parquetPerSecond: number; readonly parquetPerCpuSecond: number; readonly tableCopyPerSecond: number }

/** The floor measured just before and just after the ingest runs (the load moves), each a median of 3. */
function meanFloor(a: FloorFigures, b: FloorFigures): FloorFigures {
  const mean = (x: number, y: number): number => (x + y) / 2;
  return { events: a.events, parquetPerSecond: mean(a.parquetPerSecond, b.parquetPerSecond), parquetPerCpuSecond: mean(a.parquetPerCpuSecond, b.parquetPerCpuSecond), tableCopyPerSecond: mean(a.tableCopyPerSecond, b.tableCopyPerSecond) };
}

/** Ingest against the floor of the same run: the goal is ≥ 0.7 (wall), the CPU ratio is the load-robust view. */
function ratioToFloor(ingest: StageFigures, floor: FloorFigures): { wall: number; cpu: number } {
  return { wall: ingest.perSecond / floor.parquetPerSecond, cpu: ingest.perCpuSecond / floor.parquetPerCpuSecond };
}

/**
 * Section 1 alone (`--ingest`): the floor, the ingest with the default lanes and with one
 * lane, the floor again; the ratios side by side.
 */
async function ingestSection(n: number, tmp: string) {
  const load0 = os.loadavg();
  progress('ingest: the writer floor (DuckDB copying mapped rows), before');
  const floorBefore = await writerFloor(200_000, path.join(tmp, 'floor-before'));
  progress('ingest: decision-log rows mapped, chained and written to Parquet in DuckDB (two lanes)');
  const ingest = await stewardIngestBench(n, path.join(tmp, 'ingest'));
  progress('ingest: the same rows through one lane');
  const oneLane = await stewardIngestBench(n, path.join(tmp, 'ingest-one-lane'), 1);
  progress('ingest: the writer floor, after');
  const floorAfter = await writerFloor(200_000, path.join(tmp, 'floor-after'));
  const load1 = os.loadavg();
  const floor = meanFloor(floorBefore, floorAfter);
  return {
    ingest,
    ingestOneLane: oneLane,
    floor,
    floorBefore,
    floorAfter,
    ratio: { lanes: ratioToFloor(ingest, floor), oneLane: ratioToFloor(oneLane, floor), goal: 0.7 },
    ingestLoad: [load0[0] ?? 0, load1[0] ?? 0],
  };
}

type IngestSection = Awaited<ReturnType<typeof ingestSection>>;

function ingestRows(s: IngestSection): [string, string][] {
  const f = (x: number, d = 0): string => x.toFixed(d);
  const { ingest, ingestOneLane: one, floor, ratio } = s;
  return [
    [
      'ingest into Parquet, Steward events (2 lanes on 2 cores: load + map + chain + write, DuckDB)',
      `${f(ingest.perSecond / 1000)}k events/s over ${ingest.events} events (${f(ingest.perCpuSecond / 1000)}k per CPU-second; load ${f(ingest.loadSeconds, 2)} s, map + digests + links ${f(ingest.mapSeconds, 2)} s, head ${f(ingest.chainSeconds, 2)} s, write ${f(ingest.writeSeconds, 2)} s; load average ${f(s.ingestLoad[0] ?? 0, 1)} → ${f(s.ingestLoad[1] ?? 0, 1)})`,
    ],
    [
      '… the same rows through one lane (1 core)',
      `${f(one.perSecond / 1000)}k events/s (${f(one.perCpuSecond / 1000)}k per CPU-second; load ${f(one.loadSeconds, 2)} s, map + digests + links ${f(one.mapSeconds, 2)} s, write ${f(one.writeSeconds, 2)} s)`,
    ],
    [
      '… floor: DuckDB alone writing already-mapped OCSF rows (1 thread; mean of before and after)',
      `${f(floor.parquetPerSecond / 1000)}k events/s to zstd Parquet (${f(floor.parquetPerCpuSecond / 1000)}k per CPU-second); ${f(floor.tableCopyPerSecond / 1000)}k events/s copying them to another in-memory table (${floor.events} events, medians of 3)`,
    ],
    [
      '… ingest / floor, same run',
      `**${f(ratio.lanes.wall, 2)}** wall (CPU ${f(ratio.lanes.cpu, 2)}); one lane ${f(ratio.oneLane.wall, 2)} wall (CPU ${f(ratio.oneLane.cpu, 2)}) — goal ≥ ${ratio.goal}`,
    ],
  ];
}

/** The state store's half of a flush: one batch of decision-log rows as NDJSON, in PGlite. */
async function exportBench(n: number): Promise<{ events: number; seconds: number; perSecond: number }> {
  const db = await openPglite('memory');
  await migrate(db);
  const log = createDecisionLog(db);
  const lines = decisionLines(n, 0).split('\n').map((l) => JSON.parse(l) as DecisionLogEntry);
  for (let i = 0; i < lines.length; i += 5_000) await log.appendDecisions(lines.slice(i, i + 5_000).map(({ actor, action, resource, result, reason, details }) => ({ actor, action, resource, result, reason, ...(details === null || details === undefined ? {} : { details }) })));
  await db.query('UPDATE steward.decision_log SET audit_batch = 1');
  const t0 = performance.now();
  const { rows } = await db.query<{ lines: string }>(
    `SELECT string_agg(json_build_object('id', id, 'at', at, 'actor', actor, 'action', action, 'resource', resource, 'result', result, 'reason', reason, 'details', details)::text, E'\\n' ORDER BY id) AS lines
     FROM steward.decision_log WHERE audit_batch = 1`,
  );
  const s = seconds(t0);
  if ((rows[0]?.lines.length ?? 0) === 0) throw new Error('no export');
  await db.close();
  return { events: n, seconds: s, perSecond: n / s };
}

// --------------------------------------------------------------- 2. aggregate

interface AggregateFigures {
  events: number;
  days: number;
  generateSeconds: number;
  groups: number;
  oneDayTop: number;
  /** Medians of 5 runs, on one thread and on every core (the gateway's setting for governed queries). */
  oneThread: { groupByDaySeconds: number; oneDaySeconds: number };
  allCores: { threads: number; groupByDaySeconds: number; oneDaySeconds: number };
}

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
  const perDaySql = `SELECT eventDay, class_uid, count(*) AS events, count(*) FILTER (WHERE status_id = 2) AS refused, count(DISTINCT actor.user.uid) AS principals
     FROM read_parquet($1, hive_partitioning = true) GROUP BY ALL ORDER BY ALL`;
  const oneDaySql = `SELECT actor.user.uid AS principal, count(*) FILTER (WHERE status_id = 2) AS refused, count(*) AS events
     FROM read_parquet($1, hive_partitioning = true) WHERE eventDay = '20250315' GROUP BY 1 ORDER BY 2 DESC LIMIT 10`;
  let groups = 0;
  let top = 0;
  const timeQueries = async (threads: number): Promise<{ groupByDaySeconds: number; oneDaySeconds: number }> => {
    await db.run(`SET threads = ${threads}`);
    const perDay: number[] = [];
    const oneDay: number[] = [];
    for (let i = 0; i < 5; i++) {
      t = performance.now();
      groups = (await db.all(perDaySql, [glob])).length;
      perDay.push(seconds(t));
      t = performance.now();
      top = (await db.all(oneDaySql, [glob])).length;
      oneDay.push(seconds(t));
    }
    return { groupByDaySeconds: median(perDay), oneDaySeconds: median(oneDay) };
  };
  const cores = os.cpus().length;
  const oneThread = await timeQueries(1);
  const allCores = { threads: cores, ...(await timeQueries(cores)) };
  db.close();
  return { events: n, days, generateSeconds: generateS, groups, oneDayTop: top, oneThread, allCores };
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

export async function overheadBench(quick: boolean): Promise<OverheadFigures> {
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
  // Every decision once before timing, so both sides read the engine's memo alike (the first pass
  // over a request builds its memo entry, which would be charged to whichever side ran first).
  for (const r of reqs) engine.authorize(r);
  const collect = (globalThis as { gc?: () => void }).gc;

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
  // Decision path: decide, then queue the request and its decision; the entry is built in the drain
  // (durability is not awaited inline).
  const timeWithAudit = (): number => {
    const t = performance.now();
    let allow = 0;
    // Acts on each decision as the side without audit does (reading it is a memory access of its own).
    for (const r of reqs) {
      const d = engine.authorize(r);
      if (d.decision === 'allow') allow++;
      buffer.pushWith(entryOf, r, d);
    }
    if (allow < 0) throw new Error('unreachable');
    return seconds(t);
  };
  const alone: number[] = [];
  const audited: number[] = [];
  let drainS = 0;
  for (let round = 0; round < 6; round++) {
    // A full collection before each side, so neither pays for garbage the other (or the drain) left;
    // the order alternates, so neither always runs on the caches the collection just disturbed.
    const sides = round % 2 === 0 ? [timeAlone, timeWithAudit] : [timeWithAudit, timeAlone];
    for (const side of sides) {
      collect?.();
      (side === timeAlone ? alone : audited).push(side());
    }
    const t = performance.now();
    await buffer.drain();
    drainS += seconds(t);
  }
  await db.close();
  const a = median(alone);
  const b = median(audited);
  return {
    decisions: n,
    authorizeSeconds: a,
    authorizeAuditSeconds: b,
    ratio: b / a,
    authorizePerSecond: n / a,
    commitSecondsPerRound: drainS / 6,
    endToEndRatio: (b + drainS / 6) / a,
    committedRows: committed,
  };
}

const machineOf = () => ({ cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version, load: os.loadavg()[0], date: new Date().toISOString() });

function writeResult(out: string | null, result: unknown): void {
  if (out === null) return;
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
}

const table = (rows: readonly [string, string][]): string => ['| measure | result |', '|---|---|', ...rows.map(([a, b]) => `| ${a} | ${b} |`)].join('\n');

export async function run(opts: AuditBenchOptions = {}): Promise<Record<string, unknown>> {
  const quick = opts.quick === true;
  const log = opts.log ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const tmp = path.join(os.tmpdir(), `steward-audit-bench-${process.pid}`);
  mkdirSync(tmp, { recursive: true });
  try {
    const ingestFigures = await ingestSection(quick ? 200_000 : 1_000_000, tmp);
    if (opts.ingestOnly === true) {
      const result = { machine: machineOf(), quick, ...ingestFigures };
      writeResult(opts.out === undefined ? path.join(root, 'bench', 'results', quick ? 'audit-ingest-quick.json' : 'audit-ingest.json') : opts.out, result);
      log(table(ingestRows(ingestFigures)));
      return result;
    }
    progress('ingest: a batch exported by the state store (PGlite)');
    const exported = await exportBench(50_000);
    progress('ingest: CloudTrail mapped in JS, written in DuckDB');
    const cloudtrail = await cloudTrailIngestBench(quick ? 50_000 : 200_000, path.join(tmp, 'cloudtrail'));
    progress('aggregate: generating and querying day partitions');
    const aggregate = await aggregateBench(quick ? 1_000_000 : 10_000_000, path.join(tmp, 'aggregate'));
    progress('overhead: authorize vs authorize + audit');
    const overhead = await overheadBench(quick);
    const result = {
      machine: machineOf(),
      quick,
      ...ingestFigures,
      exported,
      cloudtrail,
      aggregate,
      overhead,
      goals: { ingestToFloor: 0.7, aggregateSeconds: 1, overheadRatio: 1.2 },
    };
    writeResult(opts.out === undefined ? path.join(root, 'bench', 'results', quick ? 'audit-quick.json' : 'audit.json') : opts.out, result);
    const f = (x: number, d = 0): string => x.toFixed(d);
    const rows: [string, string][] = [
      ...ingestRows(ingestFigures),
      ['… the state store exporting a batch (PGlite string_agg)', `${f(exported.perSecond / 1000)}k events/s`],
      [
        'ingest into Parquet, CloudTrail (JS mapping at ingest + DuckDB chain + write)',
        `${f(cloudtrail.endToEndPerSecond / 1000)}k events/s end to end (JS map + conform ${f(cloudtrail.jsMapSeconds, 2)} s = ${f(cloudtrail.jsMapPerSecond / 1000)}k/s; DuckDB ${f(cloudtrail.perSecond / 1000)}k/s)`,
      ],
      [
        `aggregate per day over ${aggregate.events} events (${aggregate.days} day partitions; median of 5)`,
        `${f(aggregate.allCores.groupByDaySeconds, 3)} s on ${aggregate.allCores.threads} threads, as the gateway runs governed queries (${f(aggregate.oneThread.groupByDaySeconds, 3)} s on 1 thread, as monitors run) — goal ≤ 1 s`,
      ],
      ['one day partition, top refused principals', `${f(aggregate.allCores.oneDaySeconds, 3)} s on ${aggregate.allCores.threads} threads (${f(aggregate.oneThread.oneDaySeconds, 3)} s on 1)`],
      ['authorize + audit / authorize (decision path)', `${f(overhead.ratio, 3)} (${f(overhead.authorizePerSecond / 1000)}k decisions/s alone) — goal ≤ 1.2`],
      ['… including the group commits on the same core', `${f(overhead.endToEndRatio, 2)}`],
    ];
    log(table(rows));
    return result;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run({ quick: process.argv.includes('--quick'), ingestOnly: process.argv.includes('--ingest') });
}
