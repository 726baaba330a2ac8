/**
 * Trino OPA endpoint benchmark.
 *
 *     node --import tsx bench/trino.bench.ts [--quick]
 *
 * A real Steward server (embedded PGlite store, HTTP on loopback) holds the
 * tag-governed benchmark world (test/support/random-world.ts, 1,000 tables of
 * 120 columns; --quick 200). A client in its own process (as Trino's
 * coordinator is) then sends, one after the other, batch
 * requests of FilterColumns for 100 columns (what Trino asks when it lists or
 * expands a table's columns), each for a different (user, table) pair, so
 * no request repeats one before it: the engine decides cold for the pair, as
 * it would for a stream of distinct queries. Each request includes the decision-log write
 * and the HTTP round trip. Goal: p99 <= 5 ms. The same requests are also
 * decided in-process (parse + decide, no HTTP, no log) on a fresh engine, so
 * the decision's share of the HTTP time shows. Results go to
 * bench/results/trino.json.
 */
import { spawn } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { diffWorlds } from '../src/policy/changes.js';
import { createEngine } from '../src/policy/engine.js';
import { decideBatch } from '../src/trino/opa-decide.js';
import { OpaRequest } from '../src/trino/opa-input.js';
import { EMPTY_WORLD } from '../src/policy/model.js';
import { generateLargeWorld } from '../test/support/random-world.js';
import { startTestServer } from '../test/support/server.js';
import { batch, table } from '../test/trino/fixtures.js';

export interface TrinoBenchResult {
  readonly machine: { cpu: string; cores: number; node: string; date: string; loadAverage: number[] };
  readonly world: { tables: number; columnsPerTable: number; users: number };
  readonly requests: number;
  readonly columnsPerRequest: number;
  readonly latencyMs: Latency;
  /** The same requests timed inside the server, from the request's arrival to its response's end: what is left of the HTTP figure is the client, loopback and scheduling. */
  readonly serverMs: Latency;
  /** Parse + decide in-process, the same requests on a fresh engine: what the HTTP figure costs beyond the decision. */
  readonly decisionOnlyMs: Latency;
  readonly allowedShare: number;
  readonly goalP99Ms: number;
  readonly met: boolean;
}

const GOAL_P99_MS = 5;
const COLUMNS = 100;

interface Latency {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
const round = (n: number): number => Math.round(n * 1000) / 1000;

function latency(times: readonly number[]): Latency {
  const sorted = [...times].sort((a, b) => a - b);
  return {
    p50: round(quantile(sorted, 0.5)),
    p90: round(quantile(sorted, 0.9)),
    p99: round(quantile(sorted, 0.99)),
    max: round(sorted[sorted.length - 1] ?? NaN),
    mean: round(times.reduce((a, b) => a + b, 0) / times.length),
  };
}

/**
 * The client runs in a process of its own, as Trino's coordinator does: its
 * request building, HTTP client and garbage collection do not share the
 * server's event loop. Requests go one after the other on one keep-alive
 * connection; the first `warmUp` are not timed.
 */
async function sendFromClientProcess(url: string, token: string, bodies: readonly string[], warmUp: number): Promise<{ times: number[]; allowed: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'steward-trino-bench-'));
  try {
    const file = join(dir, 'bodies.json');
    writeFileSync(file, JSON.stringify(bodies));
    // node:http with one keep-alive socket, as a JVM client such as Trino's holds its connection (undici's fetch adds ~0.3 ms a call).
    const client = `
      const http = require('node:http');
      const [url, token, file, warmUp] = process.argv.slice(1);
      const bodies = JSON.parse(require('node:fs').readFileSync(file, 'utf8'));
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const post = (body) => new Promise((resolve, reject) => {
        const req = http.request(url, { agent, method: 'POST', headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
          const chunks = [];
          res.on('data', (d) => chunks.push(d));
          res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
      });
      (async () => {
        const times = []; let allowed = 0;
        for (let i = 0; i < bodies.length; i++) {
          const start = performance.now();
          const { status, json } = await post(bodies[i]);
          const ms = performance.now() - start;
          if (status !== 200) throw new Error('status ' + status + ': ' + JSON.stringify(json));
          if (i >= Number(warmUp)) { times.push(ms); allowed += json.result.length; }
        }
        process.stdout.write(JSON.stringify({ times, allowed }));
      })().catch((e) => { process.stderr.write(String(e) + '\\n'); process.exit(1); });`;
    const child = spawn(process.execPath, ['-e', client, url, token, file, String(warmUp)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    if (code !== 0) throw new Error(`the client process exited ${code}`);
    return JSON.parse(out) as { times: number[]; allowed: number };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Times every request the in-process server handles, from its arrival to its response's end (Node's HTTP diagnostics channels). */
function serverTimes(): { readonly times: number[]; stop(): void } {
  const times: number[] = [];
  const started = new WeakMap<object, number>();
  const onStart = (m: unknown): void => void started.set((m as { request: object }).request, performance.now());
  const onFinish = (m: unknown): void => {
    const t = started.get((m as { request: object }).request);
    if (t !== undefined) times.push(performance.now() - t);
  };
  diagnostics.subscribe('http.server.request.start', onStart);
  diagnostics.subscribe('http.server.response.finish', onFinish);
  return {
    times,
    stop() {
      diagnostics.unsubscribe('http.server.request.start', onStart);
      diagnostics.unsubscribe('http.server.response.finish', onFinish);
    },
  };
}

export async function runTrinoBench(opts: { quick?: boolean; out?: string | null; log?: (l: string) => void } = {}): Promise<TrinoBenchResult> {
  const log = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const tables = opts.quick ? 200 : 1000;
  const world = generateLargeWorld({ tables, columnsPerTable: 120, principals: 300, tagGrants: 300, guardrails: 10, seed: 16 });
  const s = await startTestServer({ config: () => ({ trinoPrincipals: ['user:trino'] }) });
  try {
    await s.ws.services.state.change({ actor: 'bench', action: 'bench.load', resource: 'world', build: () => diffWorlds(EMPTY_WORLD, world) });
    const token = (await s.ws.services.tokens.createToken({ name: 'trino', principal: 'user:trino', role: 'user' })).token;
    const users = world.users.map((u) => u.name);
    const wide = world.tables.filter((t) => t.columns.length >= COLUMNS);
    const requestBody = (i: number): string => {
      // Pairs walk users and tables with co-prime strides: no pair repeats within the run.
      const u = users[i % users.length] as string;
      const t = wide[(i * 7) % wide.length] as (typeof wide)[number];
      return JSON.stringify(batch(u, 'FilterColumns', [table(t.catalog, t.database, t.name, t.columns.slice(0, COLUMNS).map((c) => c.name))]));
    };
    const n = opts.quick ? 1000 : 3000;
    // 200 warm-up requests (JIT, connection, the snapshot's engine), then the timed ones.
    const bodies = [...Array.from({ length: 200 }, (_, i) => requestBody(1_000_000 + i)), ...Array.from({ length: n }, (_, i) => requestBody(i))];
    const server = serverTimes();
    const { times, allowed } = await sendFromClientProcess(`${s.url}/v1/trino/opa/batch`, token, bodies, 200);
    server.stop();
    const latencyMs = latency(times);
    const serverMs = latency(server.times.slice(200));
    const engine = createEngine(world);
    const now = Date.now();
    const local: number[] = [];
    for (let i = 0; i < n; i++) {
      const body = JSON.parse(requestBody(i)) as unknown;
      const start = performance.now();
      decideBatch({ world, engine, now }, OpaRequest.parse(body).input);
      local.push(performance.now() - start);
    }
    const decisionOnlyMs = latency(local);
    const result: TrinoBenchResult = {
      machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, date: new Date().toISOString(), loadAverage: loadavg() },
      world: { tables, columnsPerTable: 120, users: users.length },
      requests: n,
      columnsPerRequest: COLUMNS,
      latencyMs,
      serverMs,
      decisionOnlyMs,
      allowedShare: round(allowed / (n * COLUMNS)),
      goalP99Ms: GOAL_P99_MS,
      met: latencyMs.p99 <= GOAL_P99_MS,
    };
    log(`- FilterColumns batch of ${COLUMNS} columns over HTTP (loopback, decision log written), ${n} distinct (user, table) requests, ${tables} tables x 120 columns, ${users.length} users`);
    log(`- latency p50 ${latencyMs.p50} ms, p90 ${latencyMs.p90} ms, p99 ${latencyMs.p99} ms, max ${latencyMs.max} ms (goal p99 <= ${GOAL_P99_MS} ms: ${result.met ? 'met' : 'NOT met'}); ${Math.round(result.allowedShare * 100)} % of columns allowed`);
    log(`- inside the server (arrival to response end): p50 ${serverMs.p50} ms, p90 ${serverMs.p90} ms, p99 ${serverMs.p99} ms`);
    log(`- the same requests decided in-process (parse + decide, no HTTP, no log): p50 ${decisionOnlyMs.p50} ms, p99 ${decisionOnlyMs.p99} ms`);
    log(`- load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} on ${cpus().length} cores`);
    if (opts.out !== null) {
      const out = opts.out ?? join(dirname(fileURLToPath(import.meta.url)), 'results', opts.quick ? 'trino-quick.json' : 'trino.json');
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    }
    return result;
  } finally {
    await s.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runTrinoBench({ quick: process.argv.includes('--quick') });
}
