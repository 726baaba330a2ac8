/**
 * Three real `steward serve` processes on one real PostgreSQL and one lake
 * folder (docs/scale-out.md): a change through one is decided by the others;
 * a just-in-time expiry and a monitor fire once; one server killed -9 under
 * load loses no acknowledged event, and the security lake's chain verifies.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import { openWorkspace } from '../../src/workspace/open.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { callServe, kill9, startServeProcess, type ServeProcess } from '../support/serve-process.js';
import { steward } from '../support/cli.js';
import { pollUntil } from '../support/poll.js';
import { ACCESS_DOC, ADMIN, seedChanges, transitionsOf } from '../access/harness.js';
import { openPostgres, type Db } from '../../src/store/db.js';

let db: TestDatabase;
let store: Db;
let lakeDir: string;
let token = '';
const homes: string[] = [];
const servers: ServeProcess[] = [];
const hooks: { path: string; body: Record<string, unknown> }[] = [];
let receiver: http.Server;
let hookBase = '';

before(async () => {
  receiver = http.createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      hooks.push({ path: req.url ?? '', body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  hookBase = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  db = await createTestDatabase();
  store = await openPostgres(db.url);
  lakeDir = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-multi-lake-'));
  for (let i = 0; i < 3; i++) homes.push(await fs.mkdtemp(path.join(os.tmpdir(), 'steward-multi-')));
  // Seed once (world, access configuration with a webhook, an admin token), then let the servers run.
  const seed = await openWorkspace(loadConfig({}, { home: homes[0] as string, databaseUrl: db.url, lakeDir }), { purpose: 'cli' });
  try {
    await seed.services.state.change({ actor: 'test', action: 'seed', resource: 'lake', build: () => seedChanges() });
    await seed.services.access?.putConfig(ADMIN, { ...ACCESS_DOC, notifications: { webhooks: [{ url: `${hookBase}/access` }] } });
    token = (await seed.services.tokens.createToken({ name: 'test-admin', principal: 'user:admin', role: 'admin' })).token;
  } finally {
    await seed.close();
  }
  for (const home of homes) servers.push(await startServeProcess({ STEWARD_HOME: home, STEWARD_DATABASE_URL: db.url, STEWARD_LAKE_DIR: lakeDir }));
});

after(async () => {
  // kill9 waits for an exit: skip the server the test already killed.
  for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) await kill9(s);
  await store?.close();
  await db?.drop();
  for (const d of [...homes, lakeDir]) await fs.rm(d, { recursive: true, force: true });
  await new Promise<void>((r) => (receiver === undefined ? r() : receiver.close(() => r())));
});

const call = (i: number, method: string, p: string, body?: unknown) => callServe(servers[i], token, method, p, body);
const decide = async (i: number, principal: string, resource: string): Promise<string> => {
  const r = await call(i, 'POST', '/v1/authorize', { principal, action: 'SELECT', resource });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json.decision as string;
};

describe('three steward serve processes on one PostgreSQL', () => {
  it('decides a grant made through one server on the other two at once, and its revocation too', async () => {
    // threat: a revoked grant keeps allowing on the servers that did not make the change
    assert.equal(await decide(1, 'user:bob', 'lake.claims.payments'), 'deny');
    const g = await call(0, 'POST', '/v1/grants', { id: 'bob-payments', principal: 'user:bob', resource: 'lake.claims.payments', permissions: ['SELECT'] });
    assert.equal(g.status, 201, JSON.stringify(g.json));
    assert.equal(await decide(1, 'user:bob', 'lake.claims.payments'), 'allow');
    assert.equal(await decide(2, 'user:bob', 'lake.claims.payments'), 'allow');
    assert.equal((await call(2, 'DELETE', '/v1/grants/bob-payments')).status, 200);
    assert.equal(await decide(0, 'user:bob', 'lake.claims.payments'), 'deny');
    assert.equal(await decide(1, 'user:bob', 'lake.claims.payments'), 'deny');
  });

  it('refuses a token revoked through one server on the others within a second, though they had verified it', async () => {
    // threat: a server that remembered a verified token keeps accepting it after the token was revoked elsewhere
    const made = await call(0, 'POST', '/v1/tokens', { name: 'revoked-elsewhere', principal: 'user:ops', role: 'user' });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    const { id, token: theirs } = made.json as { id: string; token: string };
    for (const i of [0, 1, 2]) assert.equal((await callServe(servers[i], theirs, 'GET', '/v1/me')).status, 200);
    assert.equal((await call(2, 'DELETE', `/v1/tokens/${id}`)).status, 200);
    assert.equal((await callServe(servers[2], theirs, 'GET', '/v1/me')).status, 401, 'the server that revoked it');
    const started = Date.now();
    await pollUntil('the other servers refuse the revoked token', async () => (await callServe(servers[0], theirs, 'GET', '/v1/me')).status === 401 && (await callServe(servers[1], theirs, 'GET', '/v1/me')).status === 401, 5_000);
    assert.ok(Date.now() - started < 1_000, `took ${Date.now() - started} ms`);
  });

  it('ends a just-in-time grant once and notifies once, with three schedulers racing', { timeout: 120_000 }, async () => {
    // threat: three schedulers each end the grant: three ends in the log, three notifications, or one server still allowing
    const req = await fetch(`${servers[0]?.url}/v1/access/requests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-steward-as': 'user:amy' },
      body: JSON.stringify({ scope: 'lake.claims', permissionSet: 'read', duration: '2s', justification: 'three servers' }),
    });
    const created = (await req.json()) as { id: string };
    assert.equal(req.status, 201, JSON.stringify(created));
    const ok = await fetch(`${servers[1]?.url}/v1/access/requests/${created.id}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-steward-as': 'user:carol' },
      body: '{}',
    });
    assert.equal(((await ok.json()) as { status: string }).status, 'active');
    await pollUntil('the request ended', async () => (await call(2, 'GET', `/v1/access/requests/${created.id}`)).json.status === 'ended');
    const ends = () => hooks.filter((h) => h.path === '/access' && h.body['event'] === 'end' && h.body['requestId'] === created.id).length;
    await pollUntil('the end notification', async () => ends() > 0);
    // Every scheduler ticks at least every 250 ms: a second end would have happened by now.
    await new Promise((r) => setTimeout(r, 1500));
    const actions = (await transitionsOf(store, created.id)).map((t) => t.action);
    assert.equal(actions.filter((a) => a === 'access.end').length, 1, actions.join(','));
    assert.equal(ends(), 1);
    for (let i = 0; i < 3; i++) assert.equal(await decide(i, 'user:amy', 'lake.claims.payments'), 'deny');
  });

  it('evaluates and fires a monitor once per scheduled run, with three monitor schedulers', { timeout: 120_000 }, async () => {
    // threat: every server evaluates the same monitor on its own tick: an unthrottled alert pages three times
    assert.equal((await call(0, 'POST', '/v1/audit/flush', {})).status, 200);
    const m = await call(1, 'POST', '/v1/monitors', {
      name: 'three-servers',
      sql: 'SELECT count(*) AS n FROM steward.security.steward',
      scheduleSeconds: 3600,
      throttleSeconds: 0,
      condition: { column: 'n', op: '>', value: 0 },
      action: { kind: 'webhook', url: `${hookBase}/monitor` },
    });
    assert.equal(m.status, 201, JSON.stringify(m.json));
    const fired = () => hooks.filter((h) => h.path === '/monitor').length;
    await pollUntil('the monitor fired', async () => fired() > 0, 60_000);
    // Each server's monitor tick is 5 s: wait for every one of them to have looked at least once more.
    await new Promise((r) => setTimeout(r, 11_000));
    assert.equal(fired(), 1);
    const { rows } = await store.query<{ n: number }>(`SELECT count(*)::int AS n FROM steward.decision_log WHERE action = 'monitor.fire' AND resource = 'three-servers'`);
    assert.equal(rows[0]?.n, 1);
  });

  it('loses no acknowledged event when one server is killed -9 under load, and the chain verifies', { timeout: 180_000 }, async () => {
    // threat: a crash between answering and writing, or a batch the dead server claimed, silently drops audit events
    const acked: string[] = [];
    const ackedBy = [0, 0, 0];
    let n = 0;
    let victimDead = false;
    let killing: Promise<void> | undefined;
    // Counts, not durations: the machine may be slow, the test must not be.
    const worker = async (w: number): Promise<void> => {
      for (let k = 0; k < 60; k++) {
        const i = n++ % 3;
        if (i === 1 && victimDead) continue;
        const principal = `user:load-${w}-${k}`;
        try {
          const r = await call(i, 'POST', '/v1/authorize', { principal, action: 'SELECT', resource: 'lake.claims.payments' });
          if (r.status === 200) {
            acked.push(principal);
            ackedBy[i] = (ackedBy[i] ?? 0) + 1;
          }
        } catch {
          // the killed server: not acknowledged, so not owed
        }
        // Kill the victim in the middle of the load, with requests to it in flight.
        if (acked.length >= 90 && !victimDead) {
          victimDead = true;
          killing = kill9(servers[1]);
        }
      }
    };
    await Promise.all([0, 1, 2, 3, 4, 5].map(worker));
    await killing;
    assert.ok(victimDead && (ackedBy[1] ?? 0) > 0, `the victim answered ${ackedBy[1]} requests before it was killed`);
    assert.ok((ackedBy[0] ?? 0) + (ackedBy[2] ?? 0) > 150, `the survivors answered ${JSON.stringify(ackedBy)}`);

    // The survivors flush (taking over any batch the dead server had claimed) and verify.
    await pollUntil(
      'every event flushed',
      async () => {
        await call(0, 'POST', '/v1/audit/flush', { source: 'steward' });
        const { rows } = await store.query<{ n: number }>('SELECT count(*)::int AS n FROM steward.decision_log WHERE audit_batch IS NULL');
        const { rows: p } = await store.query<{ pending: unknown }>(`SELECT pending FROM steward.audit_sources WHERE name = 'steward'`);
        return rows[0]?.n === 0 && p[0]?.pending === null;
      },
      60_000,
      250,
    );
    const q = await call(2, 'POST', '/v1/audit/query', { sql: `SELECT actor.user.uid AS p FROM steward.security.steward WHERE api.operation = 'authorize.SELECT' AND starts_with(actor.user.uid, 'user:load-')` });
    assert.equal(q.status, 200, JSON.stringify(q.json));
    const inLake = new Set((q.json.rows as { p: string }[]).map((r) => r.p));
    const missing = acked.filter((p) => !inLake.has(p));
    assert.deepEqual(missing.slice(0, 5), [], `${missing.length} of ${acked.length} acknowledged events are not in the lake`);
    const v = await steward(['audit', 'verify', 'steward'], { STEWARD_URL: servers[0]?.url, STEWARD_TOKEN: token });
    assert.equal(v.code, 0, `${v.stdout}\n${v.stderr}`);
    // Several servers wrote batches of the one chain.
    const { rows } = await store.query<{ n: number }>(`SELECT count(*)::int AS n FROM steward.audit_batches WHERE source = 'steward'`);
    assert.ok((rows[0]?.n ?? 0) > 1);
    // The survivors still answer.
    assert.equal(await decide(0, 'user:amy', 'lake.claims.payments'), 'deny');
    assert.equal(await decide(2, 'user:alice', 'lake.claims.patient_claims'), 'allow');
  });
});
