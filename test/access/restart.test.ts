/**
 * Crash safety over real processes and HTTP:
 * - a server killed (SIGKILL) while a grant is active, restarted after the
 *   grant's end time, ends it within a second of coming up;
 * - the HTTP contract (`x-steward-as` for admins only, audited);
 * - two servers on one PostgreSQL perform every transition exactly once.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config.js';
import { openWorkspace, type Workspace } from '../../src/workspace/open.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
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

describe('two servers on one PostgreSQL', () => {
  let db: TestDatabase | undefined;
  const spaces: Workspace[] = [];
  const homes: string[] = [];
  after(async () => {
    for (const w of spaces) await w.close();
    await db?.drop();
    for (const h of homes) await fs.rm(h, { recursive: true, force: true });
  });

  it('perform every activation and expiry exactly once', { timeout: 90_000 }, async () => {
    db = await createTestDatabase();
    for (let i = 0; i < 2; i++) {
      const home = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-access-pg-'));
      homes.push(home);
      spaces.push(await openWorkspace(loadConfig({}, { home, databaseUrl: db.url }), { purpose: 'server' }));
    }
    const [a, b] = spaces as [Workspace, Workspace];
    await a.services.state.change({ actor: 'test', action: 'seed', resource: 'lake', build: () => seedChanges() });
    await a.services.access?.putConfig(ADMIN, ACCESS_DOC);
    const accessA = a.services.access;
    const accessB = b.services.access;
    assert.ok(accessA !== undefined && accessB !== undefined);

    const start = Date.now() + 1500;
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const svc = i % 2 === 0 ? accessA : accessB;
      const who = { principal: (i % 3 === 0 ? 'user:alice' : 'user:amy') as 'user:alice', admin: false };
      const r = await svc.request(who, { scope: 'lake.claims', permissionSet: 'read', startAt: start + (i % 4) * 100, durationSeconds: 1 + (i % 2), justification: `race ${i}` });
      await (i % 2 === 0 ? accessB : accessA).approve({ principal: 'user:carol', admin: false }, r.id);
      ids.push(r.id);
    }
    const deadline = Date.now() + 30_000;
    for (;;) {
      const all = await accessA.list(ADMIN);
      if (all.every((r) => r.status === 'ended')) break;
      assert.ok(Date.now() < deadline, `still running: ${all.map((r) => r.status).join(',')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const id of ids) {
      const actions = (await transitionsOf(a.db, id)).map((t) => t.action);
      assert.equal(actions.filter((x) => x === 'access.activate').length, 1, `${id}: ${actions.join(',')}`);
      assert.equal(actions.filter((x) => x === 'access.end').length, 1, `${id}: ${actions.join(',')}`);
    }
    const grants = (await a.services.state.snapshot()).world.grants.filter((g) => g.id.startsWith('jit-'));
    assert.deepEqual(grants, []);
  });
});
