/**
 * The end of an experiment survives a crash, warehouse included: the built
 * `steward serve` runs on a PostgreSQL store and syncs a real PostgreSQL
 * warehouse by itself; an experiment revokes a pipeline's SELECT there; the
 * server is killed -9 while it runs and restarted after its end. Within a
 * second of the restart the deny is gone from decisions and the warehouse
 * has the grant back, and the warehouse's privileges are exactly what they
 * were before the experiment.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { serveHarness } from '../support/serve-process.js';
import { pollUntil } from '../support/poll.js';
import { dropRolesLike, roleCanRead } from '../sync/support/warehouse.js';

const tag = randomBytes(3).toString('hex');
const LOGIN = `l${tag}_`;
const PREFIX = `stw${tag}_x_`;
const ENV = `STEWARD_TEST_EXP_${tag.toUpperCase()}`;
const DEADLINE_MS = 30_000;

let wh: TestDatabase;
let state: TestDatabase;
let admin: pg.Client;
let home: string;
const serve = serveHarness(() => ({ STEWARD_HOME: home, STEWARD_DATABASE_URL: state.url, [ENV]: wh.url }));
const call = serve.call;

before(async () => {
  wh = await createTestDatabase();
  state = await createTestDatabase();
  home = await mkdtemp(path.join(os.tmpdir(), 'steward-exp-'));
  admin = new pg.Client({ connectionString: wh.url });
  await admin.connect();
  await admin.query(`CREATE SCHEMA sales`);
  await admin.query(`CREATE TABLE sales.orders (id int, region text)`);
  await admin.query(`CREATE TABLE sales.regions (region text)`);
  await admin.query(`INSERT INTO sales.orders VALUES (1, 'east')`);
  for (const u of ['etl', 'bi']) await admin.query(`CREATE ROLE "${LOGIN}${u}" LOGIN`);
});

after(async () => {
  await serve.kill9();
  await admin?.end();
  await wh?.drop();
  await state?.drop();
  await rm(home, { recursive: true, force: true });
  await dropRolesLike(wh.url, `%${tag}_%`);
});

const reads = (user: string): Promise<boolean> => roleCanRead(admin, `${LOGIN}${user}`, 'SELECT id FROM sales.orders');

/** Every privilege and membership of the roles Steward manages or logs in with: what "the same state" means. */
async function warehouseState(): Promise<string[]> {
  const grants = await admin.query<{ g: string }>(
    `SELECT grantee || ' ' || privilege_type || ' ' || table_schema || '.' || table_name AS g FROM information_schema.role_table_grants
     WHERE grantee LIKE $1 OR grantee LIKE $2 ORDER BY 1`,
    [`${PREFIX}%`, `${LOGIN}%`],
  );
  const members = await admin.query<{ g: string }>(
    `SELECT m.rolname || ' in ' || r.rolname AS g FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
     WHERE m.rolname LIKE $1 OR r.rolname LIKE $2 ORDER BY 1`,
    [`${LOGIN}%`, `${PREFIX}%`],
  );
  const usage = await admin.query<{ g: string }>(
    `SELECT r.rolname || ' USAGE ' || n.nspname AS g FROM pg_namespace n CROSS JOIN pg_roles r
     WHERE (r.rolname LIKE $1) AND n.nspname = 'sales' AND has_schema_privilege(r.oid, n.oid, 'USAGE') ORDER BY 1`,
    [`${PREFIX}%`],
  );
  return [...grants.rows, ...members.rows, ...usage.rows].map((r) => r.g);
}

const until = (what: string, ok: () => Promise<boolean>): Promise<number> => pollUntil(what, ok, DEADLINE_MS);

test('an experiment that ends while the server is killed -9 is gone from decisions and the warehouse within 1 s of the restart, and the warehouse is as before', async () => {
  // threat: a crash mid-experiment leaves a production pipeline without access, in Steward or in the warehouse, long after the end
  await serve.start();
  assert.notEqual(serve.token, '', 'the first start prints the bootstrap token');
  for (const [p, body] of [
    ['/v1/catalogs', { name: 'lake' }],
    ['/v1/databases', { catalog: 'lake', name: 'sales' }],
    ['/v1/tables/postgres', { catalog: 'lake', database: 'sales', url: wh.url, schema: 'sales' }],
    ['/v1/users', { name: 'etl' }],
    ['/v1/users', { name: 'bi' }],
    ['/v1/groups', { name: 'pipelines' }],
    ['/v1/groups/pipelines/members', { member: 'user:etl' }],
    ['/v1/groups/pipelines/members', { member: 'user:bi' }],
    ['/v1/grants', { principal: 'group:pipelines', resource: 'lake.sales', permissions: ['DESCRIBE', 'SELECT'] }],
  ] as const) {
    const r = await call('POST', p, body);
    assert.ok(r.status < 300, `${p}: ${JSON.stringify(r.json)}`);
  }
  const put = await call('PUT', '/v1/warehouse/targets/exp', { catalog: 'lake', credentials: { kind: 'env', name: ENV }, rolePrefix: PREFIX, userRoleTemplate: `${LOGIN}{user}`, auto: true });
  assert.equal(put.status, 200, JSON.stringify(put.json));
  await until('etl reading through the pipelines role', () => reads('etl'));
  await until('bi reading', () => reads('bi'));
  const before = await warehouseState();

  assert.equal((await call('PUT', '/v1/experiments/policy', { maxDuration: '1h', production: false })).status, 200);
  const t = await call('POST', '/v1/experiments/templates', { name: 'etl-loses-orders', targets: ['user:etl'], actions: ['SELECT'], scope: 'lake.sales.orders', duration: '8s', selfService: true });
  assert.equal(t.status, 201, JSON.stringify(t.json));
  const x = await call('POST', '/v1/experiments', { template: 'etl-loses-orders' });
  assert.equal(x.json.status, 'running', JSON.stringify(x.json));
  const endsAt = Date.parse(x.json.endsAt as string);
  await until('the revoke reaching the warehouse', async () => !(await reads('etl')));
  assert.ok(Date.now() < endsAt, 'the revoke reached the warehouse before the end');
  assert.equal(await reads('bi'), true, 'a principal the experiment does not target keeps reading');
  assert.equal((await call('POST', '/v1/authorize', { principal: 'user:etl', action: 'SELECT', resource: 'lake.sales.orders' })).json.decision, 'deny');

  await serve.kill9();
  await new Promise((r) => setTimeout(r, Math.max(0, endsAt - Date.now()) + 300));
  const server = await serve.start();
  const back = await until('etl reading again after the restart', () => reads('etl'));
  const lag = back - server.listeningAt;
  assert.ok(lag <= 1000, `the warehouse grant was back ${lag} ms after the server listened again (goal: 1 s)`);
  assert.equal((await call('POST', '/v1/authorize', { principal: 'user:etl', action: 'SELECT', resource: 'lake.sales.orders' })).json.decision, 'allow');
  const ended = await call('GET', `/v1/experiments/${x.json.id}`);
  assert.equal(ended.json.status, 'ended');
  await until('the warehouse back to its state before the experiment', async () => JSON.stringify(await warehouseState()) === JSON.stringify(before));
  assert.deepEqual(await warehouseState(), before);
  assert.ok(!JSON.stringify((await call('GET', '/v1/guardrails')).json).includes(x.json.id as string), 'no guardrail of the experiment is left');
});
