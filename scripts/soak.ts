/**
 * `npm run soak [-- --minutes N]` (default 30): mixed traffic against one
 * real `steward serve` (the built binary, embedded store, demo workspace) on
 * loopback, then an audit of what it accepted. Not part of `npm test`.
 *
 * Traffic, each kind in its own closed loop, every answer counted:
 * - authorize: 4 clients, alice asking about herself on three resources;
 * - governed queries: 2 clients, alice, two SQL texts (row filter and masks);
 * - JIT: alice requests `read-with-pii` on `lake.claims` for 20 s, carol
 *   approves, the grant expires through the scheduler, then the next one;
 * - policy changes: a user created and deleted, over and over.
 *
 * Every 15 s the server (through a probe loaded with `--import`, see
 * scripts/soak-probe.mjs) reports its heap after a full GC and its RSS; the
 * slope (least squares, after the first fifth of the run) is reported in
 * MiB per minute, and called flat when the growth it predicts over the
 * measured window is under 10 % of the mean.
 *
 * At the end: the outbox is flushed and the security lake must hold exactly
 * one event per accepted authorize, query and change, every accepted JIT
 * request and approval, nothing left in the outbox, and `steward audit
 * verify` (the CLI against the server) must pass. Exit 1 when anything is
 * lost, any request failed, verify fails or memory is not flat.
 * Results: bench/results/soak.json and soak.md.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startBenchServer, type BenchServer } from '../bench/serve-fixture.js';
import { BIN } from '../test/support/cli.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PROBE = pathToFileURL(path.join(root, 'scripts', 'soak-probe.mjs')).href;
const SAMPLE_MS = 15_000;

interface Counts {
  authorize: number;
  query: number;
  change: number;
  jitRequest: number;
  jitApprove: number;
  failed: number;
}

interface Sample {
  readonly minute: number;
  readonly heapMiB: number;
  readonly rssMiB: number;
}

function parseMinutes(argv: readonly string[]): number {
  const i = argv.indexOf('--minutes');
  if (i < 0) return 30;
  const n = Number(argv[i + 1]);
  if (!Number.isFinite(n) || n <= 0 || n > 24 * 60) {
    process.stderr.write(`error: --minutes: expected a number of minutes from 0 to 1440, got \`${argv[i + 1] ?? ''}\`\n`);
    process.exit(1);
  }
  return n;
}

/** Least-squares slope of y over x, and the mean of y. */
function fit(xs: readonly number[], ys: readonly number[]): { slope: number; mean: number } {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
    den += ((xs[i] as number) - mx) ** 2;
  }
  return { slope: den === 0 ? 0 : num / den, mean: my };
}

const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;

function memory(server: BenchServer): Promise<{ heapUsed: number; rss: number }> {
  const child = server.process.child;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not answer the memory probe')), 30_000);
    child.once('message', (m) => {
      clearTimeout(timer);
      resolve(m as { heapUsed: number; rss: number });
    });
    child.send('memory');
  });
}

async function request(server: BenchServer, method: string, route: string, body: unknown, token: string, as?: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`${server.url}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(as === undefined ? {} : { 'x-steward-as': as }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? null : JSON.parse(text) };
}

const RESOURCES = ['lake.claims.patient_claims', 'lake.claims.patient_claims.ssn', 'lake.finance.revenue'];
const QUERIES = [
  'SELECT region, count(*) AS claims, sum(amount) AS total FROM claims.patient_claims GROUP BY region ORDER BY region',
  'SELECT claim_id, hospital, amount FROM claims.patient_claims ORDER BY claim_id LIMIT 50',
];

function traffic(server: BenchServer, until: () => boolean, counts: Counts, failures: string[], jit: { requests: string[]; approvals: string[] }): Promise<void>[] {
  const failed = (what: string, r: { status: number; json: any }): void => {
    counts.failed++;
    if (failures.length < 20) failures.push(`${what}: ${r.status} ${JSON.stringify(r.json).slice(0, 300)}`);
  };
  const loop = async (body: (i: number) => Promise<void>, pauseMs: number): Promise<void> => {
    for (let i = 0; !until(); i++) {
      try {
        await body(i);
      } catch (e) {
        failed('exception', { status: 0, json: String(e) });
      }
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  };
  const authorize = (w: number) => async (i: number) => {
    const r = await request(server, 'POST', '/v1/authorize', { principal: 'user:alice', action: 'SELECT', resource: RESOURCES[(i + w) % RESOURCES.length] }, server.aliceToken);
    if (r.status === 200) counts.authorize++;
    else failed('authorize', r);
  };
  const query = (w: number) => async (i: number) => {
    const r = await request(server, 'POST', '/v1/query', { sql: QUERIES[(i + w) % QUERIES.length] }, server.aliceToken);
    if (r.status === 200 && r.json?.error === undefined) counts.query++;
    else failed('query', r);
  };
  const change = async (i: number) => {
    const name = `soak_u${i}`;
    const put = await request(server, 'POST', '/v1/users', { name }, server.adminToken);
    if (put.status === 200 || put.status === 201) counts.change++;
    else return failed('user.put', put);
    const del = await request(server, 'DELETE', `/v1/users/${name}`, undefined, server.adminToken);
    if (del.status === 200) counts.change++;
    else failed('user.delete', del);
  };
  const access = async () => {
    const r = await request(server, 'POST', '/v1/access/requests', { scope: 'lake.claims', permissionSet: 'read-with-pii', duration: '20s', justification: 'soak' }, server.adminToken, 'user:alice');
    if (r.status !== 201) return failed('access.request', r);
    counts.jitRequest++;
    const id = r.json.id as string;
    jit.requests.push(id);
    const a = await request(server, 'POST', `/v1/access/requests/${id}/approve`, {}, server.adminToken, 'user:carol');
    if (a.status !== 200) return failed('access.approve', a);
    counts.jitApprove++;
    jit.approvals.push(id);
    // The next request only once this grant has expired through the scheduler.
    for (;;) {
      if (until()) return;
      await new Promise((res) => setTimeout(res, 2_000));
      const s = await request(server, 'GET', `/v1/access/requests/${id}`, undefined, server.adminToken);
      if (s.status !== 200) return failed('access.get', s);
      if (s.json.status !== 'active' && s.json.status !== 'approved') return;
    }
  };
  return [
    ...[0, 1, 2, 3].map((w) => loop(authorize(w), 0)),
    ...[0, 1].map((w) => loop(query(w), 0)),
    loop(change, 250),
    loop(access, 0),
  ];
}

async function lakeCount(server: BenchServer, where: string): Promise<number> {
  const r = await request(server, 'POST', '/v1/audit/query', { sql: `SELECT count(*) AS n FROM steward.security.steward WHERE ${where}` }, server.adminToken);
  if (r.status !== 200) throw new Error(`lake query: ${r.status} ${JSON.stringify(r.json)}`);
  return Number(r.json.rows[0].n);
}

/** `<action> <resource>` of every lake event with one of these actions (the OCSF message starts with both). */
async function lakeEvents(server: BenchServer, actions: readonly string[]): Promise<Set<string>> {
  const list = actions.map((a) => `'${a}'`).join(', ');
  const r = await request(server, 'POST', '/v1/audit/query', { sql: `SELECT DISTINCT split_part(message, ': ', 1) AS e FROM steward.security.steward WHERE metadata.event_code IN (${list})`, limit: 10_000 }, server.adminToken);
  if (r.status !== 200) throw new Error(`lake query: ${r.status} ${JSON.stringify(r.json)}`);
  return new Set((r.json.rows as { e: string }[]).map((x) => x.e));
}

function verifyCli(server: BenchServer): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'audit', 'verify'], {
      env: { PATH: process.env['PATH'], HOME: server.home, STEWARD_URL: server.url, STEWARD_TOKEN: server.adminToken },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

async function main(): Promise<void> {
  const minutes = parseMinutes(process.argv.slice(2));
  const log = (l: string): void => void process.stdout.write(`${l}\n`);
  const server = await startBenchServer({ nodeArgs: ['--expose-gc', '--import', PROBE], ipc: true });
  const counts: Counts = { authorize: 0, query: 0, change: 0, jitRequest: 0, jitApprove: 0, failed: 0 };
  const failures: string[] = [];
  const jit = { requests: [] as string[], approvals: [] as string[] };
  const samples: Sample[] = [];
  const started = Date.now();
  const end = started + minutes * 60_000;
  try {
    const sample = async (): Promise<void> => {
      const m = await memory(server);
      samples.push({ minute: round((Date.now() - started) / 60_000), heapMiB: round(m.heapUsed / 2 ** 20, 1), rssMiB: round(m.rss / 2 ** 20, 1) });
      const s = samples.at(-1) as Sample;
      log(`  ${s.minute.toFixed(1)} min: heap ${s.heapMiB} MiB, rss ${s.rssMiB} MiB; accepted ${counts.authorize} authorize, ${counts.query} queries, ${counts.change} changes, ${counts.jitRequest} JIT; ${counts.failed} failed`);
    };
    await sample();
    const loops = traffic(server, () => Date.now() >= end, counts, failures, jit);
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, Math.min(SAMPLE_MS, Math.max(0, end - Date.now()))));
      await sample();
    }
    await Promise.all(loops);

    // Everything accepted must now be in the decision log and, flushed, in the lake.
    const flushed = await request(server, 'POST', '/v1/audit/flush', {}, server.adminToken);
    if (flushed.status !== 200) throw new Error(`flush: ${flushed.status} ${JSON.stringify(flushed.json)}`);
    const sources = await request(server, 'GET', '/v1/audit/sources', undefined, server.adminToken);
    const steward = (sources.json.sources as { name: string; backlog: number; events: number }[]).find((s) => s.name === 'steward');
    const inLake = {
      authorize: await lakeCount(server, "metadata.event_code LIKE 'authorize.%'"),
      query: await lakeCount(server, "metadata.event_code = 'query.run' AND status_id = 1"),
      change: await lakeCount(server, "metadata.event_code IN ('user.put', 'user.delete') AND message LIKE '% user:soak_u%'"),
      total: await lakeCount(server, 'true'),
    };
    const jitEvents = await lakeEvents(server, ['access.request', 'access.approve']);
    const lostJit = [
      ...jit.requests.filter((id) => !jitEvents.has(`access.request access-request:${id}`)),
      ...jit.approvals.filter((id) => !jitEvents.has(`access.approve access-request:${id}`)),
    ];
    const verify = await verifyCli(server);

    const window = samples.filter((s) => s.minute >= minutes / 5);
    const heap = fit(window.map((s) => s.minute), window.map((s) => s.heapMiB));
    const rss = fit(window.map((s) => s.minute), window.map((s) => s.rssMiB));
    const span = (window.at(-1)?.minute ?? 0) - (window[0]?.minute ?? 0);
    const flat = (f: { slope: number; mean: number }): boolean => Math.abs(f.slope * span) < 0.1 * f.mean;
    const lost = {
      authorize: counts.authorize - inLake.authorize,
      query: counts.query - inLake.query,
      change: counts.change - inLake.change,
      jit: lostJit.length,
      outbox: steward?.backlog ?? -1,
    };
    const ok = Object.values(lost).every((n) => n === 0) && counts.failed === 0 && verify.code === 0 && flat(heap) && flat(rss);
    const result = {
      machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, date: new Date().toISOString(), loadAverage: loadavg() },
      minutes,
      accepted: counts,
      inLake: { ...inLake, lakeEvents: steward?.events, jitEvents: jitEvents.size },
      lost,
      failures,
      verify: { code: verify.code, output: verify.out.trim().slice(0, 2000) },
      memory: {
        heapSlopeMiBPerMin: round(heap.slope),
        rssSlopeMiBPerMin: round(rss.slope),
        heapMeanMiB: round(heap.mean, 1),
        rssMeanMiB: round(rss.mean, 1),
        heapFlat: flat(heap),
        rssFlat: flat(rss),
        samples,
      },
      ok,
    };
    const perMin = (n: number): number => Math.round(n / minutes);
    const md = [
      `Soak, ${minutes} min against one \`steward serve\` (embedded store, demo workspace) on ${result.machine.cores} cores (${result.machine.cpu}), load average ${result.machine.loadAverage.map((l) => l.toFixed(1)).join(' ')} at the end:`,
      '',
      `- accepted: ${counts.authorize} authorize (${perMin(counts.authorize)}/min), ${counts.query} governed queries (${perMin(counts.query)}/min), ${counts.change} policy changes, ${counts.jitRequest} JIT requests approved and expired; ${counts.failed} failed requests`,
      `- lost: ${lost.authorize} authorize, ${lost.query} queries, ${lost.change} changes, ${lost.jit} JIT events; ${lost.outbox} left in the outbox; the lake holds ${inLake.total} events`,
      `- \`steward audit verify\`: ${verify.code === 0 ? 'passed' : `FAILED (exit ${verify.code})`}`,
      `- heap after GC: slope ${round(heap.slope)} MiB/min around a mean of ${round(heap.mean, 1)} MiB (${flat(heap) ? 'flat' : 'NOT flat'}); RSS: slope ${round(rss.slope)} MiB/min around ${round(rss.mean, 1)} MiB (${flat(rss) ? 'flat' : 'NOT flat'}); fitted after the first fifth of the run, ${samples.length} samples`,
      `- verdict: ${ok ? 'pass' : 'FAIL'}`,
    ].join('\n');
    log(md);
    for (const f of failures) log(`  failure: ${f}`);
    const out = path.join(root, 'bench', 'results', 'soak.json');
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(out.replace(/\.json$/, '.md'), `${md}\n`);
    process.exitCode = ok ? 0 : 1;
  } finally {
    await server.close();
  }
}

await main();
