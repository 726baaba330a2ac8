/**
 * Scheduled work runs once across servers (docs/scale-out.md): three
 * workspaces on one PostgreSQL and one lake folder, as three servers would
 * be, each running the same schedule at the same moment. Each counts runs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../../src/config.js';
import { openWorkspace, type Workspace } from '../../src/workspace/open.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { pollUntil } from '../support/poll.js';

const golden = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'audit', 'golden');
const cloudtrail = readFileSync(path.join(golden, 'cloudtrail.input.jsonl'), 'utf8');

let db: TestDatabase;
let lakeDir: string;
const homes: string[] = [];
const servers: Workspace[] = [];

before(async () => {
  db = await createTestDatabase();
  lakeDir = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-once-lake-'));
  for (let i = 0; i < 3; i++) {
    const home = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-once-'));
    homes.push(home);
    // `cli`: no timers of their own, so the test decides when each "server" runs its schedule.
    servers.push(await openWorkspace(loadConfig({}, { home, databaseUrl: db.url, lakeDir }), { purpose: 'cli' }));
  }
});

after(async () => {
  for (const w of servers) await w.close();
  await db?.drop();
  for (const h of [...homes, lakeDir]) await fs.rm(h, { recursive: true, force: true });
});

const audit = (w: Workspace) => {
  const a = w.services.audit;
  assert.ok(a !== undefined);
  return a;
};

const logged = async (action: string, resource?: string): Promise<{ reason: string; details: Record<string, unknown> | null }[]> =>
  (
    await (servers[0] as Workspace).db.query<{ reason: string; details: Record<string, unknown> | null }>(
      'SELECT reason, details FROM steward.decision_log WHERE action = $1 AND ($2::text IS NULL OR resource = $2) ORDER BY id',
      [action, resource ?? null],
    )
  ).rows;

describe('scheduled work runs once across three servers', () => {
  it('evaluates a due monitor on one server only when three run their schedule at once', async () => {
    // threat: every server evaluates and alerts on the same schedule, tripling pages (or, unthrottled, firing three times)
    const hits: string[] = [];
    const receiver = http.createServer((req, res) => {
      hits.push(req.url ?? '');
      req.resume();
      req.on('end', () => res.writeHead(200).end('ok'));
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    try {
      const [a] = servers as [Workspace];
      await a.services.state.log([{ actor: 'test', action: 'seed', resource: 'lake', result: 'ok', reason: 'an event for the lake' }]);
      await audit(a).service.flush();
      await audit(a).monitors.create({
        name: 'once',
        sql: 'SELECT count(*) AS n FROM steward.security.steward',
        scheduleSeconds: 3600,
        throttleSeconds: 0,
        severity: 'warning',
        enabled: true,
        condition: { column: 'n', op: '>', value: 0 },
        action: { kind: 'webhook', url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook` },
      });
      const ran = await Promise.all(servers.map((w) => audit(w).monitors.runDue()));
      assert.deepEqual(ran.flat(), ['once'], `runs per server: ${JSON.stringify(ran)}`);
      await pollUntil('the firing delivered', async () => hits.length > 0);
      // A second round inside the schedule finds nothing due anywhere.
      assert.deepEqual((await Promise.all(servers.map((w) => audit(w).monitors.runDue()))).flat(), []);
      assert.equal(hits.length, 1);
      assert.equal((await logged('monitor.fire', 'once')).length, 1);
    } finally {
      await new Promise<void>((r) => receiver.close(() => r()));
    }
  });

  it('prunes an expired day partition once when three servers run retention at once, so verify counts each expired event once', async () => {
    // threat: two servers record the same pruned positions twice (verify then reports a wrong expired count) and race on the files
    const [a] = servers as [Workspace];
    await audit(a).service.createSource({ name: 'trail', mapping: 'cloudtrail', retentionDays: 30 });
    const ingested = await audit(a).service.ingest('trail', cloudtrail.split('\n').filter((l) => l.trim() !== ''));
    assert.equal(ingested.accepted, 8);
    await audit(a).service.flush('trail');
    const results = await Promise.allSettled(servers.map((w) => audit(w).service.applyRetention('trail')));
    const done = results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    for (const e of refused) assert.match(e.message, /lake maintenance \(retention or compaction\) is already running on this or another server/);
    assert.equal(done.reduce((n, r) => n + r.events, 0), 8, JSON.stringify(done));
    const { rows } = await a.db.query<{ events: number }>(`SELECT coalesce(sum(events), 0)::int AS events FROM steward.audit_pruned WHERE source = 'trail'`);
    assert.equal(rows[0]?.events, 8);
    assert.equal((await logged('audit.retention', 'trail')).length, 1);
    const v = await audit(servers[2] as Workspace).service.verify('trail');
    assert.equal(v.ok, true, JSON.stringify(v.problems));
    assert.equal(v.expired, 8);
  });

  describe('warehouse sync', () => {
    const tag = randomBytes(3).toString('hex');
    const env = `STEWARD_TEST_ONCE_${tag.toUpperCase()}`;
    let wh: TestDatabase;
    const stops: (() => Promise<void>)[] = [];
    before(async () => {
      wh = await createTestDatabase();
      process.env[env] = wh.url;
      const c = new pg.Client({ connectionString: wh.url });
      await c.connect();
      await c.query('CREATE SCHEMA sales; CREATE TABLE sales.orders (id int)');
      await c.end();
    });
    after(async () => {
      for (const s of stops) await s();
      delete process.env[env];
      await wh?.drop();
      const c = new pg.Client({ connectionString: wh.url.replace(/\/[^/]*$/, '/postgres') });
      await c.connect();
      const { rows } = await c.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname LIKE $1', [`o${tag}_%`]);
      for (const r of rows) await c.query(`DROP ROLE IF EXISTS "${r.rolname}"`).catch(() => undefined);
      await c.end();
    });

    it('applies each policy version to the warehouse once when three servers watch the same target', { timeout: 120_000 }, async () => {
      // threat: three watchers apply the same GRANTs and REVOKEs at once: triple load, interleaved statements, a log that says it synced three times
      const [a] = servers as [Workspace];
      const sync = (w: Workspace) => {
        assert.ok(w.services.sync !== undefined);
        return w.services.sync;
      };
      await a.services.state.change({
        actor: 'test',
        action: 'seed',
        resource: 'lake',
        build: () => [
          { op: 'put', kind: 'catalog', entity: { name: 'wh' } },
          { op: 'put', kind: 'database', entity: { catalog: 'wh', name: 'sales' } },
          { op: 'put', kind: 'table', entity: { catalog: 'wh', database: 'sales', name: 'orders', columns: [{ name: 'id', type: 'INTEGER', ordinal: 0 }], source: { kind: 'virtual' } } },
          { op: 'put', kind: 'group', entity: { name: 'readers' } },
          { op: 'put', kind: 'grant', entity: { id: 'readers-orders', principal: 'group:readers', resource: { kind: 'table', catalog: 'wh', database: 'sales', table: 'orders' }, permissions: ['SELECT'], grantable: [] } },
        ],
      });
      await sync(a).targets.put({ name: 'once', catalog: 'wh', credentials: { kind: 'env', name: env }, rolePrefix: `o${tag}_`, userRoleTemplate: `l${tag}_{user}`, auto: true } as never);
      for (const w of servers) stops.push(sync(w).watch({ intervalMs: 50, debounceMs: 0 }));
      const applied = async (version: number) => (await logged('sync.apply', 'once')).filter((r) => r.details?.['version'] === version);
      const v1 = (await a.services.state.snapshot()).version;
      await pollUntil('the first sync', async () => (await applied(v1)).length > 0);
      const v2 = (
        await a.services.state.change({
          actor: 'test',
          action: 'grant.revoke',
          resource: 'readers-orders',
          build: () => [{ op: 'delete', kind: 'grant', key: 'readers-orders' }],
        })
      ).version;
      await pollUntil('the second sync', async () => (await applied(v2)).length > 0);
      // Let every watcher tick a few more times before counting.
      await new Promise((r) => setTimeout(r, 600));
      assert.equal((await applied(v1)).length, 1, 'version 1 synced once');
      assert.equal((await applied(v2)).length, 1, 'version 2 synced once');
    });
  });
});
