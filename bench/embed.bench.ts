/**
 * Embedded analytics benchmark.
 *
 *     node --import tsx bench/embed.bench.ts [--quick]
 *
 * 1. Minting embed tokens: EdDSA JWTs signed by `createEmbedTokens` (the key
 *    read once from an in-memory store), per second and per CPU-second (the
 *    goal's "one core", which a loaded machine's wall clock understates). The API adds
 *    a decision-log row per token on top.
 * 2. The row rule's overhead: the demo dashboard's dataset over the demo
 *    claims (10M rows; 1M with --quick), through the gateway with the
 *    NorthMedicaidUser session, against the same aggregate with the
 *    hand-written WHERE run directly in DuckDB (same threads), interleaved;
 *    median time ratio (goal ≤ 1.05).
 * 3. 200 embed sessions with different tags (the five users, round robin, with
 *    distinct session ids) each running the dashboard's four-visual dataset at
 *    once through the gateway: p95 of the time to all data, and every
 *    response's row count checked against that session's hand-written WHERE
 *    (a cross-session leak would show as a wrong count).
 * Results go to bench/results/embed.json (embed-quick.json with --quick).
 */
import { cpus, loadavg } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { openPglite } from '../src/store/db.js';
import { migrate } from '../src/store/migrations.js';
import { createSigningKeys } from '../src/embed/signing-keys.js';
import { createEmbedTokens } from '../src/embed/embed-tokens.js';
import { toPredicate } from '../src/embed/tag-rules.js';
import { generateDemoData } from '../src/demo/generate-data.js';
import { ANYHEALTH_RULE, ANYHEALTH_TABLE, ANYHEALTH_USERS, REVENUE_DASHBOARD } from '../src/demo/anyhealth.js';
import { openDuckDb, toPlainValue } from '../src/lake/duckdb.js';
import { createEngine } from '../src/policy/engine.js';
import { EMPTY_WORLD, type PolicyWorld } from '../src/policy/model.js';
import { createGateway, type Gateway, type SessionScope } from '../src/gateway/gateway.js';
import { parquetTable } from '../test/support/lake-table.js';
import { HAND_WRITTEN } from '../test/embed/hand-written.js';

const here = dirname(fileURLToPath(import.meta.url));
const THREADS = 2;
const percentile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;
const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;

/** Tokens per second of wall time, and per CPU-second of this process (the figure for "one core" on a shared machine). */
async function mintRate(seconds: number): Promise<{ perSecond: number; perCpuSecond: number }> {
  const db = await openPglite('memory');
  await migrate(db);
  const tokens = createEmbedTokens({ db, keys: createSigningKeys(db) });
  const input = { dashboard: 'revenue', user: 'NorthAdmin', tags: { hospital: 'North Hospital', region: '*' }, origins: ['https://app.anyhealth.example'] };
  await tokens.mint(input);
  let n = 0;
  const start = performance.now();
  const cpu = process.cpuUsage();
  while (performance.now() - start < seconds * 1000) {
    await Promise.all(Array.from({ length: 64 }, () => tokens.mint(input)));
    n += 64;
  }
  const used = process.cpuUsage(cpu);
  const wallS = (performance.now() - start) / 1000;
  await db.close();
  return { perSecond: n / wallS, perCpuSecond: n / ((used.user + used.system) / 1e6) };
}

function world(file: string): PolicyWorld {
  const cols = [['claim_id', 'BIGINT'], ['hospital', 'VARCHAR'], ['region', 'VARCHAR'], ['payor_segment', 'VARCHAR'], ['state', 'VARCHAR'], ['amount', 'DECIMAL(12,2)'], ['service_date', 'DATE']] as const;
  return {
    ...EMPTY_WORLD,
    catalogs: [{ name: 'lake' }],
    databases: [{ catalog: 'lake', name: 'claims' }],
    tables: [parquetTable('claims', 'patient_claims', file, cols)],
    users: [{ name: 'alice' }],
    grants: [{ id: 'g', principal: 'user:alice', resource: { kind: 'table', catalog: 'lake', database: 'claims', table: 'patient_claims' }, permissions: ['SELECT'], grantable: [] }],
  };
}

const session = (user: string, id: string): SessionScope => {
  const tags = ANYHEALTH_USERS[user] ?? {};
  return { rows: new Map([[ANYHEALTH_TABLE, toPredicate(ANYHEALTH_RULE, tags)]]), user, tags, id };
};

async function drain(g: Gateway, user: string, id: string): Promise<number> {
  const st = await g.open({ principal: 'user:alice', actor: 'bench', sql: REVENUE_DASHBOARD.datasets.claims.sql, session: session(user, id) });
  let claims = 0;
  const idx = st.columns.findIndex((c) => c.name === 'claims');
  for await (const b of st.batches()) for (const r of b) claims += Number(toPlainValue(r[idx]!));
  return claims;
}

export async function run(options: { quick?: boolean; log?: (l: string) => void } = {}): Promise<void> {
  const quick = options.quick === true;
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const mint = await mintRate(quick ? 2 : 5);
  log(`mint: ${Math.round(mint.perSecond)} tokens/s, ${Math.round(mint.perCpuSecond)} per CPU-second`);

  const rows = quick ? 1_000_000 : 10_000_000;
  const dir = join(here, 'data', `embed-${rows}`);
  const data = await generateDemoData(dir, { claims: rows });
  const file = data.files.patientClaims;
  const w = world(file);
  const gateway = await createGateway({ snapshot: async () => ({ version: 1, world: w, engine: createEngine(w) }), log: async () => {}, limits: { threads: THREADS, maxConcurrent: 8, maxPerPrincipal: 8, maxQueue: 256, maxWaitMs: 600_000, timeoutMs: 600_000 } });
  const duck = await openDuckDb({ config: { threads: String(THREADS) } });
  const handSql = REVENUE_DASHBOARD.datasets.claims.sql.replace(' FROM lake.claims.patient_claims ', ` FROM read_parquet('${file}') WHERE ${HAND_WRITTEN['NorthMedicaidUser']} `);
  const ratios: number[] = [];
  const rounds = quick ? 5 : 7;
  await drain(gateway, 'NorthMedicaidUser', 'warm');
  await duck.all(handSql);
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await drain(gateway, 'NorthMedicaidUser', `r${i}`);
    const t1 = performance.now();
    await duck.all(handSql);
    const t2 = performance.now();
    ratios.push((t1 - t0) / (t2 - t1));
  }
  const overhead = percentile(ratios, 50);
  log(`row rule overhead (median of ${rounds}): ${round(overhead)}x`);

  const expected = new Map<string, number>();
  for (const user of Object.keys(ANYHEALTH_USERS)) expected.set(user, Number((await duck.all<{ n: number }>(`SELECT count(*)::BIGINT AS n FROM read_parquet('${file}') WHERE ${HAND_WRITTEN[user]}`))[0]?.n));
  const users = Object.keys(ANYHEALTH_USERS);
  const sessions = quick ? 50 : 200;
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: sessions }, async (_, i) => {
      const user = users[i % users.length] as string;
      const t0 = performance.now();
      const claims = await drain(gateway, user, `s${i}`);
      return { user, ms: performance.now() - t0, ok: claims === expected.get(user) };
    }),
  );
  const wall = performance.now() - started;
  const leaks = results.filter((r) => !r.ok).length;
  const p95 = percentile(results.map((r) => r.ms), 95);
  log(`${sessions} sessions: p95 ${Math.round(p95)} ms, wall ${Math.round(wall)} ms, ${leaks} wrong results`);
  duck.close();
  await gateway.close();

  const result = {
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, date: new Date().toISOString(), loadAverage: loadavg().map((x) => round(x, 2)) },
    mint: { perSecond: Math.round(mint.perSecond), perCpuSecond: Math.round(mint.perCpuSecond), goal: 20_000, met: mint.perCpuSecond >= 20_000 },
    overhead: { rows, ratio: round(overhead), ratios: ratios.map((r) => round(r)), goal: 1.05, met: overhead <= 1.05 },
    sessions: { count: sessions, p95Ms: Math.round(p95), wallMs: Math.round(wall), wrong: leaks },
  };
  const out = join(here, 'results', quick ? 'embed-quick.json' : 'embed.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(
    [
      '| measure | result |',
      '|---|---|',
      `| embed tokens minted (EdDSA, one process) | ${result.mint.perCpuSecond}/CPU-s, ${result.mint.perSecond}/s wall at load average ${result.machine.loadAverage[0]} (goal ≥ 20k/s on one core: ${result.mint.met ? 'met' : 'NOT met'}) |`,
      `| row rule vs hand-written WHERE, dashboard dataset over ${rows.toLocaleString('en-US')} claims | ${result.overhead.ratio}× (goal ≤ 1.05: ${result.overhead.met ? 'met' : 'NOT met'}) |`,
      `| ${sessions} concurrent embed sessions, different tags | p95 ${result.sessions.p95Ms} ms to all data; ${leaks} responses not matching their session's rule |`,
    ].join('\n') + '\n',
  );
  if (leaks > 0) process.exitCode = 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run({ quick: process.argv.includes('--quick') });
}
