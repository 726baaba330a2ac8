/**
 * Clean-room benchmark.
 *
 *     node --expose-gc --import tsx bench/cleanroom.bench.ts [--quick]
 *
 * 1. The cost of checking a query against the analysis rules
 *    (`checkRoomQuery` on DuckDB's tree), p50 and p99 over distinct queries,
 *    and the same with DuckDB's parse included. Goal: p50 ≤ 2 ms.
 * 2. The Scope 3 reference query at 1M rows per member (100k with --quick),
 *    Parquet in bench/data/, through the whole clean-room path (parse, check,
 *    plan, the gateway's sandbox, output constraints), against the same query
 *    hand-written without rules in DuckDB with the same threads. Goal: ratio ≤ 1.2.
 * Results go to bench/results/cleanroom.json (cleanroom-quick.json with --quick).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { createEngine } from '../src/policy/engine.js';
import { EMPTY_WORLD, type PolicyWorld } from '../src/policy/model.js';
import { createGateway } from '../src/gateway/gateway.js';
import { parseQuery } from '../src/gateway/parse.js';
import { createPrinter } from '../src/gateway/rewrite.js';
import { checkRoomQuery, type RoomTable } from '../src/cleanroom/cleanroom-checker.js';
import { checkRule, RuleInputSchema } from '../src/cleanroom/cleanroom-rules.js';
import { planRoomQuery } from '../src/cleanroom/cleanroom-plan.js';
import { runRoomPlan } from '../src/cleanroom/cleanroom-run.js';
import type { Snapshot } from '../src/workspace/state-service.js';
import { parquetTable } from '../test/support/lake-table.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const THREADS = 2;
const percentile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;
const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;

const RULES = {
  reporting: { type: 'aggregation', joinColumns: ['ingredient'], dimensionColumns: ['product'], outputConstraints: [{ column: 'ingredient', minimum: 2 }] },
  purchase: { type: 'aggregation', aggregateColumns: [{ column: 's3_upstream_purchased_good', functions: ['SUM'] }], joinColumns: ['item'], joinRequired: true, outputConstraints: [{ column: 'item', minimum: 2 }] },
  transportation: { type: 'aggregation', aggregateColumns: [{ column: 's3_upstream_transportation', functions: ['SUM'] }], joinColumns: ['item'], joinRequired: true, dimensionColumns: ['unit'], outputConstraints: [{ column: 'item', minimum: 2 }] },
} as const;
const COLUMNS = { reporting: ['product', 'ingredient'], purchase: ['item', 's3_upstream_purchased_good'], transportation: ['item', 's3_upstream_transportation', 'unit'] } as const;
const MEMBERS = { reporting: 'reporting', purchase: 'purchased-goods', transportation: 'transportation' } as const;
const ROOM_QUERY = 'SELECT r.product, SUM(p.s3_upstream_purchased_good) AS goods, SUM(t.s3_upstream_transportation) AS transport FROM reporting r JOIN purchase p ON r.ingredient = p.item JOIN transportation t ON p.item = t.item GROUP BY r.product';

function roomTables(): Map<string, RoomTable> {
  return new Map(
    (['reporting', 'purchase', 'transportation'] as const).map((name) => {
      const base = { name, member: MEMBERS[name], columns: [...COLUMNS[name]] };
      return [name, { ...base, rule: checkRule(base, RuleInputSchema.parse(RULES[name])) }];
    }),
  );
}

/** Three Parquet tables: `rows` recipe lines over `rows / 10` products, and `rows` items for each supplier. */
async function generate(dir: string, rows: number): Promise<Record<'reporting' | 'purchase' | 'transportation', string>> {
  fs.mkdirSync(dir, { recursive: true });
  const files = { reporting: path.join(dir, `reporting-${rows}.parquet`), purchase: path.join(dir, `purchase-${rows}.parquet`), transportation: path.join(dir, `transportation-${rows}.parquet`) };
  if (Object.values(files).every((f) => fs.existsSync(f))) return files;
  const inst = await DuckDBInstance.create(':memory:', { threads: String(THREADS) });
  const con = await inst.connect();
  const q = (f: string) => `'${f.replaceAll("'", "''")}'`;
  await con.run(`COPY (SELECT 'p' || (range // 10) AS product, 'i' || (hash(range) % ${rows}) AS ingredient FROM range(${rows})) TO ${q(files.reporting)} (FORMAT parquet)`);
  await con.run(`COPY (SELECT 'i' || range AS item, (['north','south','east','west'])[1 + (range % 4)::INTEGER] AS origin_region, (hash(range) % 1000) / 100.0 AS s3_upstream_purchased_good FROM range(${rows})) TO ${q(files.purchase)} (FORMAT parquet)`);
  await con.run(`COPY (SELECT 'i' || range AS item, (['truck','rail','ship'])[1 + (range % 3)::INTEGER] AS transport_mode, (hash(range + 7) % 500) / 100.0 AS s3_upstream_transportation, 'kgCO2e' AS unit FROM range(${rows})) TO ${q(files.transportation)} (FORMAT parquet)`);
  con.closeSync();
  inst.closeSync();
  return files;
}

function world(files: Record<'reporting' | 'purchase' | 'transportation', string>): PolicyWorld {
  const col = (names: readonly string[]) => names.map((n) => [n, n.startsWith('s3_') ? 'DOUBLE' : 'VARCHAR'] as const);
  return {
    ...EMPTY_WORLD,
    catalogs: [{ name: 'lake' }],
    databases: ['reporting', 'purchase', 'transport'].map((name) => ({ catalog: 'lake', name })),
    tables: [
      parquetTable('reporting', 'reporting', files.reporting, col(['product', 'ingredient'])),
      parquetTable('purchase', 'purchase', files.purchase, col(['item', 'origin_region', 's3_upstream_purchased_good'])),
      parquetTable('transport', 'transportation', files.transportation, col(['item', 'transport_mode', 's3_upstream_transportation', 'unit'])),
    ],
  };
}

export async function run(options: { quick?: boolean; log?: (l: string) => void } = {}): Promise<void> {
  const quick = options.quick === true;
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const rows = quick ? 100_000 : 1_000_000;
  const files = await generate(path.join(here, 'data'), rows);
  const w = world(files);
  const snap: Snapshot = { version: 1, world: w, engine: createEngine(w) };
  const gateway = await createGateway({ snapshot: async () => snap, log: async () => {}, limits: { threads: THREADS, memoryLimit: '2GB', maxRows: 1_000_000, timeoutMs: 600_000 } });
  const print = createPrinter(gateway.parser);
  const tables = roomTables();

  // 1. Check cost over distinct queries (different filters and dimensions), parsed once, checked many times.
  const variants = Array.from({ length: 200 }, (_, i) => `${ROOM_QUERY.replace('GROUP BY', `WHERE r.product <> 'p${i}' ${i % 2 === 0 ? `AND t.unit = 'u${i}' ` : ''}GROUP BY`)}`);
  const parsed = [];
  const parseAndCheck: number[] = [];
  for (const sql of variants) {
    const t0 = performance.now();
    const st = await parseQuery(gateway.parser, sql, sql);
    checkRoomQuery({ statement: st, tables });
    parseAndCheck.push(performance.now() - t0);
    parsed.push(st);
  }
  const check: number[] = [];
  for (let round_ = 0; round_ < 10; round_++) {
    for (const st of parsed) {
      const t0 = performance.now();
      checkRoomQuery({ statement: st, tables });
      check.push(performance.now() - t0);
    }
  }
  log(`check: p50 ${round(percentile(check, 50))} ms, p99 ${round(percentile(check, 99))} ms; with DuckDB's parse: p50 ${round(percentile(parseAndCheck, 50))} ms`);

  // 2. The Scope 3 query through the clean room vs hand-written in DuckDB, interleaved.
  const direct = await DuckDBInstance.create(':memory:', { threads: String(THREADS), memory_limit: '2GB' });
  const dcon = await direct.connect();
  const q = (f: string) => `'${f.replaceAll("'", "''")}'`;
  const handWritten = `SELECT r.product, SUM(p.s3_upstream_purchased_good) AS goods, SUM(t.s3_upstream_transportation) AS transport
    FROM read_parquet(${q(files.reporting)}) r JOIN read_parquet(${q(files.purchase)}) p ON r.ingredient = p.item JOIN read_parquet(${q(files.transportation)}) t ON p.item = t.item GROUP BY r.product`;
  // One count(DISTINCT) per constraint: how the constraints were checked before "at least 2" became max > min (cleanroom-plan.ts).
  const handCounted = handWritten.replace(' AS transport', ' AS transport, count(DISTINCT r.ingredient), count(DISTINCT p.item), count(DISTINCT t.item)');
  const viaRoom = async (): Promise<number> => {
    const st = await parseQuery(gateway.parser, ROOM_QUERY, ROOM_QUERY);
    const checked = checkRoomQuery({ statement: st, tables });
    const planned = await planRoomQuery({ parser: gateway.parser, print, snapshot: snap, principal: 'user:rita', statement: st, checked, catalogTables: new Map([['reporting', 'lake.reporting.reporting'], ['purchase', 'lake.purchase.purchase'], ['transportation', 'lake.transport.transportation']]), params: {} });
    const out = await runRoomPlan(gateway, { principal: 'user:rita', actor: 'bench', sql: ROOM_QUERY }, planned);
    return out.rows.length + out.removed;
  };
  const viaDirect = async (): Promise<number> => {
    const r = await dcon.runAndReadAll(handWritten);
    return r.getRows().length;
  };
  const expected = await viaDirect();
  const got = await viaRoom();
  if (expected !== got) throw new Error(`row counts differ: direct ${expected}, clean room ${got} (kept + removed)`);
  const roomMs: number[] = [];
  const directMs: number[] = [];
  const countedMs: number[] = [];
  // Each sample starts on a collected heap: otherwise a run pays for the garbage of the one before it (100k rows).
  const settle = (): void => (globalThis as { gc?: () => void }).gc?.();
  const timed = async (into: number[], fn: () => Promise<unknown>): Promise<void> => {
    settle();
    const t0 = performance.now();
    await fn();
    into.push(performance.now() - t0);
  };
  for (let i = 0; i < (quick ? 5 : 9); i++) {
    await timed(directMs, viaDirect);
    await timed(roomMs, viaRoom);
    await timed(countedMs, () => dcon.runAndReadAll(handCounted));
  }
  const countedRatio = percentile(roomMs, 50) / percentile(countedMs, 50);
  const ratio = percentile(roomMs, 50) / percentile(directMs, 50);
  log(`scope 3 query at ${rows} rows per member: clean room ${Math.round(percentile(roomMs, 50))} ms, hand-written ${Math.round(percentile(directMs, 50))} ms, ratio ${round(ratio)}; hand-written with a count(DISTINCT) per constraint ${Math.round(percentile(countedMs, 50))} ms, ratio ${round(countedRatio)}`);
  dcon.closeSync();
  direct.closeSync();
  await gateway.close();

  const result = {
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version, date: new Date().toISOString(), loadAverage: os.loadavg().map((x) => round(x, 2)) },
    check: { p50Ms: round(percentile(check, 50)), p99Ms: round(percentile(check, 99)), withParseP50Ms: round(percentile(parseAndCheck, 50)), goal: 2, met: percentile(check, 50) <= 2 },
    scope3: { rowsPerMember: rows, cleanRoomMs: roomMs.map((x) => Math.round(x)), handWrittenMs: directMs.map((x) => Math.round(x)), ratio: round(ratio), goal: 1.2, met: ratio <= 1.2, handWrittenWithCountsMs: countedMs.map((x) => Math.round(x)), ratioToCounted: round(countedRatio) },
  };
  const out = path.join(here, 'results', quick ? 'cleanroom-quick.json' : 'cleanroom.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(
    [
      '| measure | result |',
      '|---|---|',
      `| checking a query against the analysis rules (DuckDB tree) | p50 ${result.check.p50Ms} ms, p99 ${result.check.p99Ms} ms; with the parse p50 ${result.check.withParseP50Ms} ms (goal p50 ≤ 2 ms: ${result.check.met ? 'met' : 'NOT met'}) |`,
      `| Scope 3 query, ${rows.toLocaleString('en-US')} rows per member, clean room vs hand-written | ${result.scope3.ratio}× (goal ≤ 1.2: ${result.scope3.met ? 'met' : 'NOT met'}); ${result.scope3.ratioToCounted}× against hand-written with a count(DISTINCT) per constraint |`,
    ].join('\n') + '\n',
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run({ quick: process.argv.includes('--quick') });
}
