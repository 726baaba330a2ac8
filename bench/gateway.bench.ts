/**
 * Gateway benchmark.
 *
 *     node --import tsx bench/gateway.bench.ts [--quick]
 *
 * Generates a Parquet table of 10M claims (1M with --quick) in bench/data/
 * (sorted by hospital, so row-group statistics can prune), and reports:
 *   1. a governed aggregate under a row filter (principal with a data filter
 *      `hospital = 'North Hospital'`, ssn hidden) against the same hand-written
 *      query run directly in DuckDB with the same threads: the time ratio, for
 *      the gateway as it runs (leakproof fast path) and with every column
 *      masked (`leakproofRewrite: false`, the rewrite before the fast path),
 *      interleaved in one run;
 *   2. small point queries: the latency parse + authorize + rewrite adds
 *      (`gateway.plan`, distinct SQL texts so nothing is cached), p50/p99, and
 *      the end-to-end difference governed (fast and masked) vs direct, with
 *      the rewritten SQL also run directly (streamed, as the gateway does) to
 *      show where the difference goes;
 *   3. row-group pruning: bytes read from the file (/proc/self/io) by the governed query
 *      with the row filter, by the same query for an unrestricted principal,
 *      and the row groups whose statistics admit the filter (parquet_metadata).
 * Results go to bench/results/gateway.json (gateway-quick.json with --quick).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { createEngine } from '../src/policy/engine.js';
import { EMPTY_WORLD, type PolicyWorld } from '../src/policy/model.js';
import { createGateway, type QueryPlan } from '../src/gateway/gateway.js';
import type { Snapshot } from '../src/workspace/state-service.js';
import { parquetTable } from '../test/support/lake-table.js';

export interface GatewayBenchOptions {
  readonly quick?: boolean;
  readonly out?: string | null;
  readonly log?: (line: string) => void;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const THREADS = 2;

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}
const median = (xs: number[]): number => percentile(xs, 50);
const fmtBytes = (b: number | null): string => (b === null ? 'n/a' : `${(b / 1024 / 1024).toFixed(1)} MiB`);
const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;

function world(file: string): PolicyWorld {
  return {
    ...EMPTY_WORLD,
    catalogs: [{ name: 'lake' }],
    databases: [{ catalog: 'lake', name: 'claims' }],
    tables: [parquetTable('claims', 'claims', file, ['claim_id', 'hospital', 'region', 'amount', 'ssn'].map((name) => [name, name === 'claim_id' ? 'BIGINT' : name === 'amount' ? 'DOUBLE' : 'VARCHAR'] as const))],
    users: [{ name: 'north' }, { name: 'officer' }],
    filters: [
      {
        name: 'north_only',
        catalog: 'lake',
        database: 'claims',
        table: 'claims',
        rowFilter: "hospital = 'North Hospital'",
        predicate: { k: 'cmp', op: '=', left: { k: 'col', name: 'hospital' }, right: { k: 'lit', value: 'North Hospital' } },
        excludedColumns: ['ssn'],
      },
    ],
    grants: [
      { id: 'north', principal: 'user:north', resource: { kind: 'filter', catalog: 'lake', database: 'claims', table: 'claims', filter: 'north_only' }, permissions: ['SELECT'], grantable: [] },
      { id: 'officer', principal: 'user:officer', resource: { kind: 'table', catalog: 'lake', database: 'claims', table: 'claims' }, permissions: ['SELECT'], grantable: [] },
    ],
  };
}

async function generate(file: string, rows: number, log: (l: string) => void): Promise<void> {
  if (fs.existsSync(file)) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  log(`generating ${rows.toLocaleString()} rows into ${path.relative(process.cwd(), file)} …`);
  const inst = await DuckDBInstance.create(':memory:', { threads: String(THREADS) });
  const con = await inst.connect();
  const tmp = `${file}.tmp`;
  await con.run(`COPY (
      SELECT range AS claim_id,
             (['North Hospital', 'South Hospital', 'Downtown Hospital'])[1 + (hash(range) % 3)::INTEGER] AS hospital,
             (['East', 'West', 'North', 'South'])[1 + (hash(range + 7) % 4)::INTEGER] AS region,
             round((hash(range + 13) % 100000) / 100.0, 2)::DOUBLE AS amount,
             printf('%03d-%02d-%04d', hash(range) % 1000, hash(range + 1) % 100, hash(range + 2) % 10000) AS ssn
      FROM range(${rows})
      ORDER BY hospital, claim_id
    ) TO '${tmp.replaceAll("'", "''")}' (FORMAT parquet, ROW_GROUP_SIZE 122880)`);
  con.closeSync();
  inst.closeSync();
  fs.renameSync(tmp, file);
}

interface Profile {
  bytesRead: number | null;
  latencyMs: number;
}

export async function run(options: GatewayBenchOptions = {}): Promise<Record<string, unknown>> {
  const quick = options.quick === true;
  const log = options.log ?? ((line: string) => console.log(line));
  const rows = quick ? 1_000_000 : 10_000_000;
  const file = path.join(here, 'data', `gateway-claims-${rows}.parquet`);
  await generate(file, rows, (l) => process.stderr.write(`${l}\n`));

  const w = world(file);
  const snap: Snapshot = { version: 1, world: w, engine: createEngine(w) };
  const gateway = await createGateway({
    snapshot: async () => snap,
    log: async () => {},
    limits: { threads: THREADS, memoryLimit: '2GB', maxRows: 1_000_000, timeoutMs: 600_000 },
  });
  const masked = await createGateway({
    snapshot: async () => snap,
    log: async () => {},
    limits: { threads: THREADS, memoryLimit: '2GB', maxRows: 1_000_000, timeoutMs: 600_000 },
    leakproofRewrite: false,
  });
  const planner = await createGateway({ snapshot: async () => snap, log: async () => {} });
  const direct = await DuckDBInstance.create(':memory:', { threads: String(THREADS), memory_limit: '2GB' });
  const dcon = await direct.connect();
  const lit = `'${file.replaceAll("'", "''")}'`;

  const runGoverned = async (principal: 'user:north' | 'user:officer', sql: string, via = gateway): Promise<number> => {
    const t = performance.now();
    const st = await via.open({ principal, actor: 'bench', sql });
    for await (const _ of st.batches());
    return performance.now() - t;
  };
  const runDirect = async (sql: string): Promise<number> => {
    const t = performance.now();
    const r = await dcon.runAndReadAll(sql);
    r.getRows();
    return performance.now() - t;
  };
  // As the gateway executes: a fresh connection, the statement prepared (with the plan's binds: lake locations are
  // parameters), then streamed.
  const runStreamed = async (sql: string, binds?: QueryPlan['binds']): Promise<number> => {
    const t = performance.now();
    const c = await direct.connect();
    const ps = await c.prepare(sql);
    if (binds !== undefined) ps.bind(binds);
    const r = await ps.stream();
    ps.destroySync();
    for (let chunk = await r.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await r.fetchChunk()) chunk.getRows();
    c.closeSync();
    return performance.now() - t;
  };

  // 1. Governed aggregate under the row filter vs hand-written.
  const governedAgg = 'SELECT region, count(*) AS n, sum(amount) AS total, avg(amount) AS mean FROM claims.claims GROUP BY region ORDER BY region';
  const directAgg = `SELECT region, count(*) AS n, sum(amount) AS total, avg(amount) AS mean FROM read_parquet(${lit}) WHERE hospital = 'North Hospital' GROUP BY region ORDER BY region`;
  const reps = quick ? 7 : 21;
  const g: number[] = [];
  const gm: number[] = [];
  const d: number[] = [];
  const dm: number[] = [];
  // Two phases, each interleaving one gateway with the hand-written query (the order alternates, so drift in the
  // machine's load favours no side): the fast path against direct, then the masked rewrite against direct.
  const alternate = async (a: () => Promise<void>, b: () => Promise<void>): Promise<void> => {
    await a();
    await b();
    for (let i = 0; i < reps; i++) {
      if (i % 2 === 0) {
        await a();
        await b();
      } else {
        await b();
        await a();
      }
    }
  };
  let warm = true;
  await alternate(
    async () => void (warm ? await runGoverned('user:north', governedAgg) : g.push(await runGoverned('user:north', governedAgg))),
    async () => {
      if (warm) await runDirect(directAgg);
      else d.push(await runDirect(directAgg));
      warm = false;
    },
  );
  warm = true;
  await alternate(
    async () => void (warm ? await runGoverned('user:north', governedAgg, masked) : gm.push(await runGoverned('user:north', governedAgg, masked))),
    async () => {
      if (warm) await runDirect(directAgg);
      else dm.push(await runDirect(directAgg));
      warm = false;
    },
  );
  const aggregate = {
    rows,
    reps,
    governedMs: round(median(g)),
    directMs: round(median(d)),
    ratio: round(median(g) / median(d)),
    maskedMs: round(median(gm)),
    maskedDirectMs: round(median(dm)),
    maskedRatio: round(median(gm) / median(dm)),
    fastPath: (await gateway.plan('user:north', governedAgg)).leakproof,
    goal: 1.05,
  };

  // 2. Point queries: parse + authorize + rewrite, distinct texts.
  const n = quick ? 300 : 1000;
  const planMs: number[] = [];
  for (let i = 0; i < n; i++) {
    const id = Math.floor(Math.random() * rows);
    const t = performance.now();
    await gateway.plan('user:north', `SELECT claim_id, region, amount FROM claims.claims WHERE claim_id = ${id}`);
    planMs.push(performance.now() - t);
  }
  const cachedMs: number[] = [];
  const paramSql = 'SELECT claim_id, region, amount FROM claims.claims WHERE claim_id = $id';
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await gateway.plan('user:north', paramSql, { id: Math.floor(Math.random() * rows) });
    cachedMs.push(performance.now() - t);
  }
  const e2eG: number[] = [];
  const e2eM: number[] = [];
  const e2eD: number[] = [];
  const e2eS: number[] = [];
  const e2eP: number[] = [];
  const e2eH: number[] = [];
  const m = quick ? 30 : 100;
  for (let i = 0; i < m; i++) {
    const id = Math.floor(Math.random() * rows);
    const sql = `SELECT claim_id, region, amount FROM claims.claims WHERE claim_id = ${id}`;
    const hand = `SELECT claim_id, region, amount FROM read_parquet(${lit}) WHERE hospital = 'North Hospital' AND claim_id = ${id}`;
    // The rewrite the gateway will run, from a second gateway (so the measured one still plans a new text).
    const rewritten = await planner.plan('user:north', sql);
    const contenders = [
      async (): Promise<void> => void e2eG.push(await runGoverned('user:north', sql)),
      async (): Promise<void> => void e2eD.push(await runDirect(hand)),
      // Where the governed time goes: the rewritten SQL and the hand-written one, executed as the gateway executes.
      async (): Promise<void> => void e2eS.push(await runStreamed(rewritten.sql, rewritten.binds)),
      async (): Promise<void> => void e2eH.push(await runStreamed(hand)),
    ];
    for (let k = 0; k < contenders.length; k++) await (contenders[(i + k) % contenders.length] as () => Promise<void>)();
    const t = performance.now();
    await gateway.plan('user:north', `${sql} AND ${id} = ${id}`);
    e2eP.push(performance.now() - t);
  }
  // The masked rewrite in its own loop (each query scans every North row group: it would crowd the loop above).
  const e2eMD: number[] = [];
  for (let i = 0; i < Math.ceil(m / 3); i++) {
    const id = Math.floor(Math.random() * rows);
    e2eM.push(await runGoverned('user:north', `SELECT claim_id, region, amount FROM claims.claims WHERE claim_id = ${id}`, masked));
    e2eMD.push(await runDirect(`SELECT claim_id, region, amount FROM read_parquet(${lit}) WHERE hospital = 'North Hospital' AND claim_id = ${id}`));
  }
  const point = {
    planned: n,
    planP50Ms: round(median(planMs)),
    planP99Ms: round(percentile(planMs, 99)),
    parameterizedP50Ms: round(median(cachedMs)),
    parameterizedP99Ms: round(percentile(cachedMs, 99)),
    goalP50Ms: 2,
    endToEnd: {
      queries: m,
      governedP50Ms: round(median(e2eG)),
      directP50Ms: round(median(e2eD)),
      addedP50Ms: round(median(e2eG) - median(e2eD)),
      maskedP50Ms: round(median(e2eM)),
      maskedAddedP50Ms: round(median(e2eM) - median(e2eMD)),
      rewrittenStreamedP50Ms: round(median(e2eS)),
      handWrittenPreparedStreamedP50Ms: round(median(e2eH)),
      planP50Ms: round(median(e2eP)),
    },
  };

  // 3. Row-group pruning evidence.
  // Bytes DuckDB reads from the file (rchar of this process, Linux), with DuckDB's file cache off so every read is a syscall.
  const rchar = (): number | null => {
    try {
      const m = /rchar: (\d+)/.exec(fs.readFileSync('/proc/self/io', 'utf8'));
      return m ? Number(m[1]) : null;
    } catch {
      return null;
    }
  };
  await dcon.run('SET enable_external_file_cache = false').catch(() => undefined);
  const profile = async (sql: string, binds?: QueryPlan['binds']): Promise<Profile> => {
    const before = rchar();
    const t = performance.now();
    const r = await dcon.runAndReadAll(sql, binds);
    r.getRows();
    const latencyMs = performance.now() - t;
    const after = rchar();
    return { bytesRead: before === null || after === null ? null : after - before, latencyMs: round(latencyMs) };
  };
  const filtered = await gateway.plan('user:north', 'SELECT count(*), sum(amount) FROM claims.claims');
  const filteredMasked = await masked.plan('user:north', 'SELECT count(*), sum(amount) FROM claims.claims');
  const unfiltered = await gateway.plan('user:officer', 'SELECT count(*), sum(amount) FROM claims.claims');
  const meta = await dcon.runAndReadAll(
    `SELECT count(DISTINCT row_group_id) AS groups,
            count(DISTINCT row_group_id) FILTER (WHERE stats_min_value <= 'North Hospital' AND stats_max_value >= 'North Hospital') AS admitting,
            sum(total_compressed_size) AS bytes,
            sum(total_compressed_size) FILTER (WHERE stats_min_value <= 'North Hospital' AND stats_max_value >= 'North Hospital') AS admitting_bytes
     FROM parquet_metadata(${lit}) WHERE path_in_schema = 'hospital'`,
  );
  const mrow = meta.getRows()[0] ?? [];
  const pruning = {
    rowGroups: Number(mrow[0]),
    rowGroupsAdmittingFilter: Number(mrow[1]),
    withFilter: await profile(filtered.sql, filtered.binds),
    withFilterMasked: await profile(filteredMasked.sql, filteredMasked.binds),
    withoutFilter: await profile(unfiltered.sql, unfiltered.binds),
    handWrittenWithFilter: await profile(`SELECT count(*), sum(amount) FROM read_parquet(${lit}) WHERE hospital = 'North Hospital'`),
  };

  dcon.closeSync();
  direct.closeSync();
  await gateway.close();
  await masked.close();
  await planner.close();

  const result = {
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version, loadavg: os.loadavg().map((x) => round(x, 2)), date: new Date().toISOString() },
    quick,
    aggregate,
    point,
    pruning,
  };
  const out = options.out === undefined ? path.join(here, 'results', quick ? 'gateway-quick.json' : 'gateway.json') : options.out;
  if (out !== null) {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  }
  log(`Table: ${rows.toLocaleString()} rows of Parquet, ${pruning.rowGroups} row groups, sorted by hospital; ${THREADS} threads on both sides.`);
  log('');
  log('| measurement | result | goal |');
  log('|---|---|---|');
  log(`| governed aggregate under a row filter vs hand-written (median of ${reps}) | ${aggregate.governedMs} ms vs ${aggregate.directMs} ms, ratio **${aggregate.ratio}** (fast path: ${aggregate.fastPath}) | ≤ 1.05 |`);
  log(`| same, every column masked (the rewrite without the fast path), next phase of the same run | ${aggregate.maskedMs} ms vs ${aggregate.maskedDirectMs} ms, ratio ${aggregate.maskedRatio} | |`);
  log(`| parse + authorize + rewrite, point query (${n} distinct texts) | p50 **${point.planP50Ms} ms**, p99 ${point.planP99Ms} ms | p50 ≤ 2 ms |`);
  log(`| same, parameterized query (\`claim_id = $id\`, rewrite cached per text, principal and policy version) | p50 **${point.parameterizedP50Ms} ms**, p99 ${point.parameterizedP99Ms} ms | p50 ≤ 2 ms |`);
  log(`| point query end to end, governed vs direct (p50 of ${m}) | ${point.endToEnd.governedP50Ms} ms vs ${point.endToEnd.directP50Ms} ms (+${point.endToEnd.addedP50Ms} ms) | |`);
  log(`| same, every column masked, same run (own loop) | ${point.endToEnd.maskedP50Ms} ms (+${point.endToEnd.maskedAddedP50Ms} ms) | |`);
  log(
    `| where it goes: rewritten SQL / hand-written SQL, each prepared and streamed on a fresh connection as the gateway does / planning a new text | ${point.endToEnd.rewrittenStreamedP50Ms} ms / ${point.endToEnd.handWrittenPreparedStreamedP50Ms} ms / ${point.endToEnd.planP50Ms} ms | |`,
  );
  log(
    `| bytes read by \`count(*), sum(amount)\`: governed with row filter / same, masked / governed without / hand-written with filter | ${fmtBytes(pruning.withFilter.bytesRead)} / ${fmtBytes(pruning.withFilterMasked.bytesRead)} / ${fmtBytes(pruning.withoutFilter.bytesRead)} / ${fmtBytes(pruning.handWrittenWithFilter.bytesRead)} | filter keeps pruning |`,
  );
  log(`| row groups whose statistics admit the filter | ${pruning.rowGroupsAdmittingFilter} of ${pruning.rowGroups} | |`);
  return result;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run({ quick: process.argv.includes('--quick') });
}
