/**
 * Crash safety over real processes and HTTP:
 * - a server killed (SIGKILL) while a grant is active, restarted after the
 *   grant's end time, ends it within a second of coming up;
 * - the HTTP contract (`x-steward-as` for admins only, audited);
 * - two `steward serve` processes on one PostgreSQL end each request exactly
 *   once, send one notification for it, and both answer with the result.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config.js';
import { openWorkspace } from '../../src/workspace/open.js';
import { openPostgres, type Db } from '../../src/store/db.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { BIN } from '../support/cli.js';
import { ACCESS_DOC, ADMIN, seedChanges, transitionsOf } from './harness.js';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'server.mts');

interface Child {
  readonly proc: ChildProcess;
  readonly url: string;
  readonly token: string;
  readonly readyAt: number;
}

function startChild(home: string): Promise<Child> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
      env: { ...process.env, STEWARD_HOME: home, STEWARD_DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line !== undefined) {
        const info = JSON.parse(line) as { url: string; token: string; readyAt: number };
        resolve({ proc, url: info.url, token: info.token, readyAt: info.readyAt });
      }
    });
    proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    proc.on('exit', (code) => reject(new Error(`server exited early (${code}): ${err}`)));
  });
}

async function call(c: { url: string; token: string }, method: string, p: string, body?: unknown, asUser?: string): Promise<{ status: number; json: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${c.token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (asUser !== undefined) headers['x-steward-as'] = asUser;
  const res = await fetch(`${c.url}${p}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: res.status, json: await res.json() };
}

const killed = (proc: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGKILL');
  });

describe('kill and restart', () => {
  const homes: string[] = [];
  const children: ChildProcess[] = [];
  after(async () => {
    for (const c of children) await killed(c);
    for (const h of homes) await fs.rm(h, { recursive: true, force: true });
  });

  it('a server killed while a grant is active, restarted after its end time, ends it within a second', { timeout: 90_000 }, async () => {
    const home = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-access-kill-'));
    homes.push(home);
    const first = await startChild(home);
    children.push(first.proc);

    const req = await call(first, 'POST', '/v1/access/requests', { scope: 'lake.claims.payments', permissionSet: 'read', duration: '3s', justification: 'incident 7' }, 'user:amy');
    assert.equal(req.status, 201, JSON.stringify(req.json));
    const id = req.json.id as string;
    const approved = await call(first, 'POST', `/v1/access/requests/${id}/approve`, {}, 'user:carol');
    assert.equal(approved.json.status, 'active', JSON.stringify(approved.json));
    const allow = await call(first, 'POST', '/v1/authorize', { principal: 'user:amy', action: 'SELECT', resource: 'lake.claims.payments' });
    assert.equal(allow.json.decision, 'allow');

    await killed(first.proc);
    const endAt = Date.parse(approved.json.endAt as string);
    await new Promise((r) => setTimeout(r, Math.max(0, endAt - Date.now()) + 500));

    const second = await startChild(home);
    children.push(second.proc);
    let endedAt: number | null = null;
    for (let i = 0; i < 100 && endedAt === null; i++) {
      const r = await call(second, 'GET', `/v1/access/requests/${id}`);
      if (r.json.status === 'ended') endedAt = Date.now();
      else await new Promise((res) => setTimeout(res, 50));
    }
    assert.notEqual(endedAt, null, 'the restarted server ended the request');
    const lag = (endedAt as number) - second.readyAt;
    assert.ok(lag <= 1000, `ended ${lag} ms after the restarted server came up`);
    const grants = await call(second, 'GET', '/v1/grants');
    assert.ok(!(grants.json.grants as { id: string }[]).some((g) => g.id === `jit-${id}`), 'the jit grant is gone');
    const deny = await call(second, 'POST', '/v1/authorize', { principal: 'user:amy', action: 'SELECT', resource: 'lake.claims.payments' });
    assert.equal(deny.json.decision, 'deny');

    // The HTTP contract: only admins may act as someone else, and it is audited.
    const userToken = await call(second, 'POST', '/v1/tokens', { name: 'amy', principal: 'user:amy', role: 'user' });
    const amy = { url: second.url, token: userToken.json.token as string };
    const smuggled = await call(amy, 'POST', `/v1/access/requests/${id}/revoke`, {}, 'user:carol');
    assert.equal(smuggled.status, 403, 'a non-admin token cannot act as another principal');
    assert.match(smuggled.json.error.message, /only admins may act as another principal/);
    const mine = await call(amy, 'GET', '/v1/access/requests');
    assert.deepEqual((mine.json.requests as { id: string }[]).map((r) => r.id), [id]);
    const log = await call(second, 'GET', '/v1/decision-log?limit=200');
    const approveEntry = (log.json.entries as { action: string; actor: string; details?: { impersonatedBy?: string } }[]).find((e) => e.action === 'access.approve');
    assert.equal(approveEntry?.actor, 'user:carol');
    assert.match(approveEntry?.details?.impersonatedBy ?? '', /^user:admin/);
  });
});

interface Serve {
  readonly proc: ChildProcess;
  readonly url: string;
}

/** `steward serve --port 0` as an operator runs it: the built binary, its own home, the shared PostgreSQL. */
function startServe(home: string, databaseUrl: string): Promise<Serve> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [BIN, 'serve', '--port', '0'], {
      env: { PATH: process.env['PATH'], HOME: process.env['HOME'], STEWARD_HOME: home, STEWARD_DATABASE_URL: databaseUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`steward serve did not start: ${out}`)), 60_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve({ proc, url: m[1] });
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`steward serve exited with ${code}: ${out}`));
    });
  });
}

describe('two steward serve processes on one PostgreSQL', () => {
  let db: TestDatabase | undefined;
  let raw: Db | undefined;
  const homes: string[] = [];
  const procs: ChildProcess[] = [];
  let receiver: http.Server | undefined;
  after(async () => {
    for (const p of procs) {
      p.removeAllListeners('exit');
      await killed(p);
    }
    await raw?.close();
    await db?.drop();
    for (const h of homes) await fs.rm(h, { recursive: true, force: true });
    await new Promise<void>((r) => (receiver === undefined ? r() : receiver.close(() => r())));
  });

  // Threat: with two servers, both schedulers end the same grant, so the requester is notified twice, the
  // decision log shows two ends, or one server keeps answering "allow" from its stale copy of the world.
  it('end each request exactly once, send one notification for it, and both answer with the result', { timeout: 120_000 }, async () => {
    const hooks: { event: string; id: string }[] = [];
    receiver = http.createServer((req, res) => {
      let text = '';
      req.on('data', (d: Buffer) => (text += d.toString()));
      req.on('end', () => {
        const body = JSON.parse(text) as { event: string; requestId: string };
        hooks.push({ event: body.event, id: body.requestId });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => receiver?.listen(0, '127.0.0.1', () => r()));
    const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

    db = await createTestDatabase();
    for (let i = 0; i < 2; i++) homes.push(await fs.mkdtemp(path.join(os.tmpdir(), 'steward-access-pg-')));
    // Seed once (world, access configuration with a webhook, an admin token), then let the servers run.
    const seed = await openWorkspace(loadConfig({}, { home: homes[0] as string, databaseUrl: db.url }), { purpose: 'cli' });
    let token: string;
    try {
      await seed.services.state.change({ actor: 'test', action: 'seed', resource: 'lake', build: () => seedChanges() });
      await seed.services.access?.putConfig(ADMIN, { ...ACCESS_DOC, notifications: { webhooks: [{ url: hookUrl }] } });
      token = (await seed.services.tokens.createToken({ name: 'test-admin', principal: 'user:admin', role: 'admin' })).token;
    } finally {
      await seed.close();
    }
    const servers: { url: string; token: string }[] = [];
    for (const home of homes) {
      const s = await startServe(home, db.url);
      procs.push(s.proc);
      servers.push({ url: s.url, token });
    }
    const [a, b] = servers as [{ url: string; token: string }, { url: string; token: string }];
    assert.notEqual(procs[0]?.pid, procs[1]?.pid);

    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const [on, other] = i % 2 === 0 ? [a, b] : [b, a];
      const who = i % 3 === 0 ? 'user:alice' : 'user:amy';
      const r = await call(on, 'POST', '/v1/access/requests', { scope: 'lake.claims', permissionSet: 'read', duration: `${2 + (i % 2)}s`, justification: `race ${i}` }, who);
      assert.equal(r.status, 201, JSON.stringify(r.json));
      const ok = await call(other, 'POST', `/v1/access/requests/${r.json.id}/approve`, {}, 'user:carol');
      assert.equal(ok.json.status, 'active', JSON.stringify(ok.json));
      ids.push(r.json.id as string);
    }
    // Both servers' schedulers race for the ends.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const all = (await call(a, 'GET', '/v1/access/requests')).json.requests as { id: string; status: string }[];
      if (ids.every((id) => all.find((r) => r.id === id)?.status === 'ended')) break;
      assert.ok(Date.now() < deadline, `still running: ${all.map((r) => r.status).join(',')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const ends = (): Map<string, number> => {
      const m = new Map<string, number>();
      for (const h of hooks) if (h.event === 'end') m.set(h.id, (m.get(h.id) ?? 0) + 1);
      return m;
    };
    while (ends().size < ids.length) {
      assert.ok(Date.now() < deadline, `end notifications: ${JSON.stringify([...ends()])}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // Give a second delivery (if any) time to arrive before counting.
    await new Promise((r) => setTimeout(r, 1500));

    const store = await openPostgres(db.url);
    raw = store;
    for (const id of ids) {
      const actions = (await transitionsOf(store, id)).map((t) => t.action);
      assert.equal(actions.filter((x) => x === 'access.activate').length, 1, `${id}: ${actions.join(',')}`);
      assert.equal(actions.filter((x) => x === 'access.end').length, 1, `${id}: ${actions.join(',')}`);
      assert.equal(ends().get(id), 1, `${id}: one end notification`);
    }
    // Both processes see the result: the requests ended, no jit grant, and access is refused.
    for (const s of [a, b]) {
      for (const id of ids) assert.equal((await call(s, 'GET', `/v1/access/requests/${id}`)).json.status, 'ended');
      const grants = (await call(s, 'GET', '/v1/grants')).json.grants as { id: string }[];
      assert.deepEqual(grants.filter((g) => g.id.startsWith('jit-')), []);
      for (const principal of ['user:amy', 'user:alice']) {
        const d = await call(s, 'POST', '/v1/authorize', { principal, action: 'SELECT', resource: 'lake.claims.payments' });
        assert.equal(d.json.decision, 'deny', `${s.url} ${principal}`);
      }
    }
  });
});
