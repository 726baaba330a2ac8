/**
 * Two Steward processes on one PostgreSQL (two workspaces, each with its own
 * experiment service and state cache) race to end the same experiment: it is
 * ended once, logged once, and both then decide without its deny.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import { openWorkspace, type Workspace } from '../../src/workspace/open.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

let db: TestDatabase | undefined;
const workspaces: Workspace[] = [];
const homes: string[] = [];

after(async () => {
  for (const w of workspaces) await w.close();
  await db?.drop();
  for (const h of homes) await fs.rm(h, { recursive: true, force: true });
});

const ADMIN = { principal: 'user:admin', admin: true } as const;

test('two processes racing for the end of one experiment end it exactly once, and both stop denying', { timeout: 120_000 }, async () => {
  // threat: two servers both end (and log, and re-grant) the same run, or one keeps denying from its stale world
  db = await createTestDatabase();
  for (let i = 0; i < 2; i++) {
    const home = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-exp-pg-'));
    homes.push(home);
    // `cli` purpose: no background scheduler, so the test decides when each process ticks
    workspaces.push(await openWorkspace(loadConfig({}, { home, databaseUrl: db.url }), { purpose: 'cli' }));
  }
  const [a, b] = workspaces as [Workspace, Workspace];
  await a.services.state.change({
    actor: 'test',
    action: 'seed',
    resource: 'lake',
    build: () => [
      { op: 'put', kind: 'catalog', entity: { name: 'lake' } },
      { op: 'put', kind: 'database', entity: { catalog: 'lake', name: 'sales' } },
      { op: 'put', kind: 'table', entity: { catalog: 'lake', database: 'sales', name: 'orders', columns: [{ name: 'id', type: 'INTEGER', ordinal: 0 }], source: { kind: 'virtual' } } },
      { op: 'put', kind: 'user', entity: { name: 'etl' } },
      { op: 'put', kind: 'grant', entity: { id: 'etl-read', principal: 'user:etl', resource: { kind: 'database', catalog: 'lake', database: 'sales' }, permissions: ['SELECT'], grantable: [] } },
    ],
  });
  const ex = a.services.experiments;
  assert.ok(ex !== undefined && b.services.experiments !== undefined);
  await ex.putPolicy(ADMIN, { maxDuration: 3600, excluded: [], production: false });
  await ex.createTemplate(ADMIN, { name: 'race', targets: ['user:etl'], actions: ['SELECT'], scope: 'lake.sales', share: 100, duration: 1, stopConditions: [], excluded: [], selfService: true, approverGroups: [], minApprovals: 1 });
  const x = await ex.start(ADMIN, 'race');
  const decide = async (w: Workspace) =>
    (await w.services.state.snapshot()).engine.authorize({ principal: 'user:etl', action: 'SELECT', resource: { level: 'table', catalog: 'lake', database: 'sales', table: 'orders' }, now: Date.parse(x.startedAt as string) + 10 }).decision;
  assert.equal(await decide(a), 'deny');
  assert.equal(await decide(b), 'deny');
  await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(x.endsAt as string) - Date.now()) + 50));

  const counts = await Promise.all([ex.runDue(), b.services.experiments.runDue(), ex.runDue(), b.services.experiments.runDue()]);
  assert.equal(counts.reduce((n, c) => n + c, 0), 1, `ended ${JSON.stringify(counts)}`);
  const { rows } = await a.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM steward.decision_log WHERE action = 'experiment.end' AND resource = $1`, [`experiment:${x.id}`]);
  assert.equal(rows[0]?.n, 1);
  assert.equal((await ex.get(x.id)).status, 'ended');
  assert.equal(await decide(a), 'allow');
  assert.equal(await decide(b), 'allow');
});
