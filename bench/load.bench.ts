/**
 * Load benchmark: one real `steward serve` (the built binary: `npm run build`
 * first; embedded store; the demo loaded) on loopback, driven by autocannon
 * from this process.
 *
 *     npm run bench -- only=load            (or: node --import tsx bench/load.bench.ts [--quick])
 *
 *   1. `POST /v1/authorize` (alice's token, about herself, the demo's claims
 *      table; each answer's decision-log row committed before it): first an
 *      unthrottled run (autocannon, 32 connections) gives the most the server
 *      answers per second, then a search over fixed offered rates (an evenly
 *      paced open-loop client, `paced`) finds the
 *      highest rate the server sustains (at least 97 % of the offered rate
 *      answered) with p99 <= 10 ms and no error; a longer run at that rate
 *      confirms it (stepping down 10 % if it does not hold).
 *   2. Governed queries (`POST /v1/query` as alice: row filter and masks
 *      applied, DuckDB over the demo's Parquet) from 50 concurrent clients,
 *      closed loop: throughput, p50, p99 and the error rate (a 2xx whose JSON
 *      ends in an `error` member counts as an error).
 *
 * Latency percentiles are computed from every 2xx response's time as
 * autocannon measured it (not its integer-millisecond histogram). Both
 * processes share the machine's cores, so the figures are for this machine
 * under whatever else runs on it (the load average is recorded).
 * Results: bench/results/load.json and bench/results/load.md (the summary,
 * also printed).
 */
import http from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { startBenchServer } from './serve-fixture.js';

const GOAL_P99_MS = 10;
const QUERY_CLIENTS = 50;
const QUERY_SQL = 'SELECT region, count(*) AS claims, sum(amount) AS total FROM claims.patient_claims GROUP BY region ORDER BY region';

export interface LoadRun {
  /** Offered requests per second; null for a closed loop (as fast as the clients go). */
  readonly offeredRps: number | null;
  readonly connections: number;
  readonly seconds: number;
  readonly answeredRps: number;
  readonly requests: number;
  readonly errors: number;
  readonly errorRate: number;
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number; readonly mean: number };
}

export interface LoadBenchResult {
  readonly machine: { cpu: string; cores: number; node: string; date: string; loadAverage: number[] };
  readonly store: 'embedded';
  readonly authorize: { readonly goalP99Ms: number; readonly unthrottled: LoadRun; readonly search: LoadRun[]; readonly sustained: LoadRun | null };
  readonly queries: LoadRun & { readonly sql: string };
}

const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/** Percentiles of answered requests' times (`times` sorted ascending), in ms. */
function latencyOf(times: readonly number[]): LoadRun['latencyMs'] {
  return {
    p50: round(quantile(times, 0.5)),
    p90: round(quantile(times, 0.9)),
    p99: round(quantile(times, 0.99)),
    max: round(times.at(-1) ?? NaN),
    mean: round(times.reduce((a, b) => a + b, 0) / Math.max(1, times.length)),
  };
}

interface RunOptions {
  readonly url: string;
  readonly token: string;
  readonly body: string;
  readonly connections: number;
  readonly seconds: number;
  readonly rate?: number;
  readonly verifyBody?: (body: string) => boolean;
}

async function measure(o: RunOptions): Promise<LoadRun> {
  const times: number[] = [];
  const instance = autocannon({
    url: o.url,
    method: 'POST',
    headers: { authorization: `Bearer ${o.token}`, 'content-type': 'application/json' },
    body: o.body,
    connections: o.connections,
    duration: o.seconds,
    timeout: 30,
    ...(o.rate === undefined ? {} : { overallRate: o.rate }),
    ...(o.verifyBody === undefined ? {} : { verifyBody: o.verifyBody }),
  });
  instance.on('response', (_client, status, _bytes, ms) => {
    if (status >= 200 && status < 300) times.push(ms);
  });
  const r = await instance;
  times.sort((a, b) => a - b);
  const errors = r.errors + r.timeouts + r.non2xx + r.mismatches;
  const requests = r['2xx'] + r.non2xx + r.errors + r.timeouts;
  return {
    offeredRps: o.rate ?? null,
    connections: o.connections,
    seconds: round(r.duration),
    answeredRps: round(r['2xx'] / r.duration, 0),
    requests,
    errors,
    errorRate: requests === 0 ? 0 : round(errors / requests, 6),
    latencyMs: latencyOf(times),
  };
}

/**
 * An open-loop client at a fixed rate: request i is sent at start + i / rate,
 * whether or not earlier ones have been answered, on keep-alive connections
 * (as many as are busy at once). Latency counts from the scheduled send time,
 * so a server that falls behind is charged for the wait (no coordinated
 * omission). autocannon's `overallRate` sends each second's requests as a
 * burst, which measured the burst's queue, not the server (20 req/s: p50 49 ms).
 */
async function paced(o: RunOptions & { readonly rate: number }): Promise<LoadRun> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const target = new URL(o.url);
  const headers = { authorization: `Bearer ${o.token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(o.body) };
  const send = (): Promise<number> =>
    new Promise((resolve) => {
      const req = http.request({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers, agent, timeout: 30_000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', () => resolve(0));
      req.on('timeout', () => req.destroy());
      req.end(o.body);
    });
  const interval = 1000 / o.rate;
  const total = Math.round(o.rate * o.seconds);
  const times: number[] = [];
  let errors = 0;
  const inflight: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    inflight.push(
      send().then((status) => {
        if (status >= 200 && status < 300) times.push(performance.now() - due);
        else errors++;
      }),
    );
  }
  await Promise.all(inflight);
  const seconds = (performance.now() - start) / 1000;
  agent.destroy();
  times.sort((a, b) => a - b);
  return {
    offeredRps: o.rate,
    connections: 0,
    seconds: round(seconds),
    answeredRps: round(times.length / seconds, 0),
    requests: total,
    errors,
    errorRate: total === 0 ? 0 : round(errors / total, 6),
    latencyMs: latencyOf(times),
  };
}

/** Sustained: the offered rate was answered, fast enough, without errors. */
const holds = (r: LoadRun): boolean => r.errors === 0 && r.latencyMs.p99 <= GOAL_P99_MS && r.offeredRps !== null && r.answeredRps >= 0.97 * r.offeredRps;

export async function runLoadBench(opts: { quick?: boolean; out?: string | null; log?: (l: string) => void } = {}): Promise<LoadBenchResult> {
  const log = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const step = opts.quick ? 3 : 5;
  const confirmSeconds = opts.quick ? 5 : 15;
  const server = await startBenchServer();
  try {
    const authorize = { url: `${server.url}/v1/authorize`, token: server.aliceToken, body: JSON.stringify({ principal: 'user:alice', action: 'SELECT', resource: 'lake.claims.patient_claims' }) };
    const probe = await server.call('POST', '/v1/authorize', JSON.parse(authorize.body), server.aliceToken);
    if (probe.status !== 200) throw new Error(`authorize: ${probe.status} ${JSON.stringify(probe.json)}`);
    const query = { url: `${server.url}/v1/query`, token: server.aliceToken, body: JSON.stringify({ sql: QUERY_SQL }) };
    const q = await server.call('POST', '/v1/query', { sql: QUERY_SQL }, server.aliceToken);
    if (q.status !== 200 || q.json.error !== undefined) throw new Error(`query: ${q.status} ${JSON.stringify(q.json)}`);

    await measure({ ...authorize, connections: 32, seconds: 2 }); // warm-up: JIT, connections, the engine
    const unthrottled = await measure({ ...authorize, connections: 32, seconds: step });
    log(`- authorize unthrottled (32 connections): ${unthrottled.answeredRps} req/s, p99 ${unthrottled.latencyMs.p99} ms`);

    // Each paced run starts with the security lake caught up, so no run digests an earlier run's decisions (the
    // unthrottled run leaves ~100k rows). During a run the server's own 5 s flushes handle that run's rows: the
    // steady state at its rate.
    const settle = async (): Promise<void> => {
      const f = await server.call('POST', '/v1/audit/flush', {});
      if (f.status !== 200) throw new Error(`audit flush: ${f.status} ${JSON.stringify(f.json)}`);
    };

    // Bisect the offered rate between 0 and the unthrottled throughput.
    const search: LoadRun[] = [];
    let lo = 0;
    let hi = unthrottled.answeredRps;
    for (let i = 0; i < (opts.quick ? 4 : 6); i++) {
      const rate = Math.max(10, Math.round((lo + hi) / 2 / 10) * 10);
      await settle();
      const r = await paced({ ...authorize, connections: 0, seconds: step, rate });
      search.push(r);
      log(`  - offered ${rate} req/s: answered ${r.answeredRps}, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, errors ${r.errors} → ${holds(r) ? 'holds' : 'does not hold'}`);
      if (holds(r)) lo = rate;
      else hi = rate;
    }
    let sustained: LoadRun | null = null;
    for (let rate = lo, tries = 0; rate >= 10 && tries < 6 && sustained === null; rate = Math.round((rate * (tries < 2 ? 0.9 : 0.7)) / 10) * 10, tries++) {
      await settle();
      const r = await paced({ ...authorize, connections: 0, seconds: confirmSeconds, rate });
      search.push(r);
      if (holds(r)) sustained = r;
    }

    await measure({ ...query, connections: QUERY_CLIENTS, seconds: 2 }); // warm-up: sandboxes, plan cache
    const queries = await measure({ ...query, connections: QUERY_CLIENTS, seconds: opts.quick ? 5 : 15, verifyBody: (b) => !b.includes('"error":') });

    const result: LoadBenchResult = {
      machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, date: new Date().toISOString(), loadAverage: loadavg() },
      store: 'embedded',
      authorize: { goalP99Ms: GOAL_P99_MS, unthrottled, search, sustained },
      queries: { ...queries, sql: QUERY_SQL },
    };
    const summary = markdown(result);
    log(summary);
    if (opts.out !== null) {
      const base = opts.out ?? join(dirname(fileURLToPath(import.meta.url)), 'results', opts.quick ? 'load-quick.json' : 'load.json');
      mkdirSync(dirname(base), { recursive: true });
      writeFileSync(base, `${JSON.stringify(result, null, 2)}\n`);
      writeFileSync(base.replace(/\.json$/, '.md'), `${summary}\n`);
    }
    return result;
  } finally {
    await server.close();
  }
}

export function markdown(r: LoadBenchResult): string {
  const s = r.authorize.sustained;
  const q = r.queries;
  // When no rate held, the lowest one tried shows how far off the goal the server was.
  const lowest = [...r.authorize.search].sort((a, b) => (a.offeredRps ?? 0) - (b.offeredRps ?? 0) || a.latencyMs.p99 - b.latencyMs.p99)[0];
  const lines = [
    `One \`steward serve\` (embedded store, demo workspace) and the autocannon client on the same ${r.machine.cores}-core machine (${r.machine.cpu}), loopback, load average ${r.machine.loadAverage.map((l) => l.toFixed(1)).join(' ')} at the end.`,
    '',
    '| load | throughput | p50 | p99 | errors |',
    '|---|---|---|---|---|',
    s === null
      ? `| \`POST /v1/authorize\`: no offered rate held p99 <= ${r.authorize.goalP99Ms} ms (goal **not met**); best run at the lowest rate tried, ${lowest?.offeredRps ?? 'n/a'} req/s offered | ${lowest?.answeredRps ?? 'n/a'} req/s | ${lowest?.latencyMs.p50 ?? 'n/a'} ms | ${lowest?.latencyMs.p99 ?? 'n/a'} ms | ${lowest?.errors ?? 'n/a'} |`
      : `| \`POST /v1/authorize\` at the highest rate held with p99 <= ${r.authorize.goalP99Ms} ms (${s.seconds} s, evenly paced, open loop) | ${s.answeredRps} req/s | ${s.latencyMs.p50} ms | ${s.latencyMs.p99} ms | ${s.errors} |`,
    `| \`POST /v1/authorize\` unthrottled (32 connections) | ${r.authorize.unthrottled.answeredRps} req/s | ${r.authorize.unthrottled.latencyMs.p50} ms | ${r.authorize.unthrottled.latencyMs.p99} ms | ${r.authorize.unthrottled.errors} |`,
    `| governed query as alice (row filter, masks), ${QUERY_CLIENTS} concurrent clients (${q.seconds} s) | ${q.answeredRps} queries/s | ${q.latencyMs.p50} ms | ${q.latencyMs.p99} ms | ${q.errors} (${(q.errorRate * 100).toFixed(2)} %) |`,
    '',
    'Every authorize answer includes its committed decision-log row. Reproduce: `npm run build && npm run bench -- only=load`.',
  ];
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await runLoadBench({ quick: process.argv.includes('--quick') });
  // The error rate must be zero: a failing run says so in its exit code.
  if (r.queries.errors > 0 || r.authorize.sustained === null) process.exitCode = 1;
}
