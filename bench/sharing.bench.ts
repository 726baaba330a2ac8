/**
 * Sharing benchmark (issue #14).
 *
 *     node --import tsx bench/sharing.bench.ts [--quick]
 *
 * Two workspaces, each behind its own HTTP server (embedded PGlite stores),
 * the consumer pulling on its own scheduler (1 s interval):
 *   1. first sync: a database of 10,000 tables (5 columns, a tag on every
 *      table) shared and pulled; time from trusting the producer to all
 *      tables in the consumer's catalog (goal <= 10 s);
 *   2. one tag change at the producer; time until the consumer's catalog
 *      shows it (goal <= 2 s).
 * Results go to bench/results/sharing.json (sharing-quick.json with --quick: 1,000 tables).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Change } from '../src/policy/changes.js';
import { startTestServer, type TestServer } from '../test/support/server.js';

const here = dirname(fileURLToPath(import.meta.url));
const round = (x: number, d = 0): number => Math.round(x * 10 ** d) / 10 ** d;

async function waitFor(ok: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const start = performance.now();
  while (!(await ok())) {
    if (performance.now() - start > timeoutMs) throw new Error(`not seen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - start;
}

async function call(s: TestServer, method: string, path: string, body?: unknown): Promise<any> {
  // A kept-alive connection the busy server closed meanwhile fails once with ECONNRESET: try again on a new one.
  const r = await s.call(method, path, body).catch(() => s.call(method, path, body));
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}

export async function run(options: { quick?: boolean; log?: (line: string) => void } = {}): Promise<void> {
  const tables = options.quick === true ? 1_000 : 10_000;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const producer = await startTestServer();
  const consumer = await startTestServer();
  try {
    const changes: Change[] = [
      { op: 'put', kind: 'catalog', entity: { name: 'lake' } },
      { op: 'put', kind: 'database', entity: { catalog: 'lake', name: 'big' } },
      { op: 'put', kind: 'tagKey', entity: { key: 'confidentiality', values: ['public', 'internal', 'restricted'] } },
    ];
    for (let i = 0; i < tables; i++) {
      const columns = ['id', 'region', 'amount', 'created_at', 'note'].map((name, ordinal) => ({ name, type: ordinal === 0 ? 'BIGINT' : 'VARCHAR', ordinal }));
      changes.push({ op: 'put', kind: 'table', entity: { catalog: 'lake', database: 'big', name: `t${i}`, columns, source: { kind: 'virtual' } } });
      changes.push({ op: 'put', kind: 'tagAssignment', entity: { resource: { level: 'table', catalog: 'lake', database: 'big', table: `t${i}` }, key: 'confidentiality', value: 'internal' } });
    }
    await producer.ws.services.state.change({ actor: 'bench', action: 'bench.seed', resource: 'lake', build: () => changes });
    log(`producer seeded with ${tables} tables`);
    const producerKey = (await call(producer, 'GET', '/v1/shares/identity')).publicKey;
    const consumerKey = (await call(consumer, 'GET', '/v1/shares/identity')).publicKey;
    await call(producer, 'POST', '/v1/shares/peers', { name: 'consumer', publicKey: consumerKey });
    await call(producer, 'POST', '/v1/shares', { name: 'big', to: 'consumer', objects: ['lake.big'] });

    const count = async (): Promise<number> => (await consumer.ws.services.state.snapshot()).world.tables.filter((t) => t.catalog === 'producer-big').length;
    await call(consumer, 'POST', '/v1/shares/peers', { name: 'producer', publicKey: producerKey, url: producer.url });
    const firstMs = await waitFor(async () => (await count()) === tables, 300_000);
    log(`first sync: ${Math.round(firstMs)} ms`);

    const last = `t${tables - 1}`;
    const tagged = async (): Promise<boolean> =>
      (await consumer.ws.services.state.snapshot()).world.tagAssignments.some((a) => a.resource.level === 'table' && a.resource.catalog === 'producer-big' && a.resource.table === last && a.value === 'restricted');
    // Timed from the change request, so the producer's own commit counts too.
    const change = call(producer, 'PUT', `/v1/resources/lake.big.${last}/tags/confidentiality`, { value: 'restricted' });
    const changeMs = await waitFor(tagged, 60_000);
    await change;
    log(`tag change visible: ${Math.round(changeMs)} ms`);

    const result = {
      machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, date: new Date().toISOString(), loadAverage: loadavg().map((x) => round(x, 2)) },
      tables,
      firstSync: { ms: Math.round(firstMs), goalMs: 10_000, met: firstMs <= 10_000 },
      tagChange: { ms: Math.round(changeMs), goalMs: 2_000, met: changeMs <= 2_000 },
    };
    const out = join(here, 'results', options.quick === true ? 'sharing-quick.json' : 'sharing.json');
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(
      [
        '| measure | result |',
        '|---|---|',
        `| first sync of a ${tables.toLocaleString('en-US')}-table shared database, trust to all tables at the consumer | ${result.firstSync.ms} ms (goal ≤ 10 s: ${result.firstSync.met ? 'met' : 'NOT met'}) |`,
        `| one tag change at the producer, visible at the consumer (1 s pull interval) | ${result.tagChange.ms} ms (goal ≤ 2 s: ${result.tagChange.met ? 'met' : 'NOT met'}) |`,
      ].join('\n') + '\n',
    );
  } finally {
    await consumer.close();
    await producer.close();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run({ quick: process.argv.includes('--quick') });
}
