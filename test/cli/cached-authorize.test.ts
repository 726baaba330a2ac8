/**
 * `steward authorize` answered from the world cache (issue 11: embedded
 * authorize ≤ 700 ms), through the built binary. What could go wrong is a
 * stale or forged answer, or a decision that never reaches the log:
 * - the answer must be exactly the opened workspace's, errors included;
 * - a change by any command, or by a server that then crashed, is seen;
 * - a cache that someone else could have written, or that a due timer has
 *   outdated, is never used (a forged allow-everything cache proves it);
 * - every cached decision reaches the decision log once, with its time;
 * - the command loads neither the store nor the server stack.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { steward, stewardJson, type CliResult } from '../support/cli.js';
import { kill9, startServeProcess } from '../support/serve-process.js';
import { WORLD_CACHE_FILE } from '../../src/workspace/world-cache.js';
import { SPOOL_DIR } from '../../src/store/decision-spool.js';
import type { PolicyWorld } from '../../src/policy/model.js';

let root = '';
let home = '';
let env: NodeJS.ProcessEnv = {};

const cacheFile = (): string => path.join(home, WORLD_CACHE_FILE);
const spooled = async (h = home): Promise<string[]> => (await fs.readdir(path.join(h, SPOOL_DIR)).catch(() => [])).filter((f) => f.endsWith('.json'));
const authorize = (principal: string, action: string, resource: string, e: NodeJS.ProcessEnv = env): Promise<CliResult> =>
  steward(['authorize', '--principal', principal, '--action', action, '--resource', resource, '--json'], e);

/** Runs `authorize` and says whether the cache answered it (a cached decision is spooled; an opened store logs directly). */
async function authorizeVia(principal: string, action: string, resource: string): Promise<{ r: CliResult; cached: boolean }> {
  const before = (await spooled()).length;
  const r = await authorize(principal, action, resource);
  return { r, cached: (await spooled()).length > before };
}

type Cache = { format: number; version: number; validUntil: number | null; world: PolicyWorld };
const readCache = async (): Promise<Cache> => JSON.parse(await fs.readFile(cacheFile(), 'utf8')) as Cache;

/** The cache with a grant of everything in `lake` to erin (who holds nothing): if it were used, erin would be allowed. */
async function forgeAllowAll(validUntil: number | null = null, resource: unknown = { kind: 'catalog', catalog: 'lake' }): Promise<void> {
  const c = await readCache();
  const grant = { id: 'forged', principal: 'user:erin', resource, permissions: ['SELECT', 'DESCRIBE'], grantable: [] };
  await fs.writeFile(cacheFile(), JSON.stringify({ ...c, validUntil, world: { ...c.world, grants: [...c.world.grants, grant] } }), { mode: 0o600 });
  await fs.chmod(cacheFile(), 0o600);
}

describe('authorize from the world cache', () => {
  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-cached-authorize-'));
    home = path.join(root, 'home');
    env = { STEWARD_HOME: home };
    const r = await steward(['demo'], env);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('a clean close leaves a private cache of the latest world', async () => {
    const s = await fs.stat(cacheFile());
    assert.equal(s.mode & 0o777, 0o600);
    const c = await readCache();
    assert.ok(c.world.grants.some((g) => g.id === 'analysts-read-patient-claims'), 'the demo grants');
    const st = await steward(['status'], env); // docs/api-and-cli.md runs it between demo and authorize
    assert.match(st.stdout, /^target: embedded workspace /);
    assert.equal((await readCache()).version, c.version, 'a command that changes nothing leaves the same world');
  });

  it('answers exactly as the opened workspace does, refusals and errors included', async () => {
    const questions: [string, string, string][] = [
      ['alice', 'SELECT', 'lake.claims.patient_claims'],
      ['alice', 'SELECT', 'lake.claims.patient_claims.ssn'],
      ['carol', 'SELECT', 'lake.claims.patient_claims.ssn'],
      ['group:hospital-admins', 'SELECT', 'lake.claims.patient_claims'],
      ['bob', 'DESCRIBE', 'lake.finance'],
      ['dana', 'select', 'steward.security'],
      ['erin', 'INSERT', 'lake.claims.nope'],
      ['bad name!', 'SELECT', 'lake'],
      ['alice', 'FLY', 'lake'],
      ['alice', 'SELECT', 'a.b.c.d.e'],
    ];
    for (const [p, a, res] of questions) {
      const cached = await authorizeVia(p, a, res);
      await fs.rm(cacheFile());
      const opened = await authorizeVia(p, a, res);
      const refused = cached.r.code !== 0;
      assert.equal(cached.cached, !refused, `${p} ${a} ${res}: the cache answered (and spooled) every valid question`);
      assert.equal(opened.cached, false, 'without a cache the workspace is opened');
      assert.deepEqual([cached.r.code, cached.r.stdout, cached.r.stderr], [opened.r.code, opened.r.stdout, opened.r.stderr], `${p} ${a} ${res}`);
      await fs.access(cacheFile()); // the opened command's close wrote it again
    }
  });

  it('sees a change made by any command since', async () => {
    assert.equal(JSON.parse((await authorize('erin', 'SELECT', 'lake.finance.revenue')).stdout).decision, 'deny');
    const version = (await readCache()).version;
    const g = await steward(['grant', 'create', '--principal', 'user:erin', '--resource', 'lake.finance.revenue', '--permissions', 'SELECT', '--id', 'erin-revenue'], env);
    assert.equal(g.code, 0, g.stderr);
    assert.ok((await readCache()).version > version);
    const { r, cached } = await authorizeVia('erin', 'SELECT', 'lake.finance.revenue');
    assert.ok(cached);
    assert.equal(JSON.parse(r.stdout).decision, 'allow');
    assert.equal((await steward(['grant', 'revoke', 'erin-revenue'], env)).code, 0);
    assert.equal(JSON.parse((await authorize('erin', 'SELECT', 'lake.finance.revenue')).stdout).decision, 'deny');
  });

  it('is gone while a server holds the workspace, and after the server is killed the store answers', async () => {
    const server = await startServeProcess(env);
    try {
      await assert.rejects(fs.access(cacheFile()), 'the server deleted the cache when it opened the store');
      // Through the server (the CLI finds it): a grant the killed server never got to cache.
      const g = await steward(['grant', 'create', '--principal', 'user:erin', '--resource', 'lake.finance.revenue', '--permissions', 'SELECT', '--id', 'erin-crash'], env);
      assert.equal(g.code, 0, g.stderr);
    } finally {
      await kill9(server);
    }
    await assert.rejects(fs.access(cacheFile()), 'a crash writes no cache');
    const { r, cached } = await authorizeVia('erin', 'SELECT', 'lake.finance.revenue');
    assert.equal(cached, false);
    assert.equal(JSON.parse(r.stdout).decision, 'allow', r.stderr);
    assert.equal((await steward(['grant', 'revoke', 'erin-crash'], env)).code, 0);
  });

  it('a server stopped cleanly leaves the cache of what was changed through it', async () => {
    const server = await startServeProcess(env);
    const g = await steward(['grant', 'create', '--principal', 'user:erin', '--resource', 'lake.finance.revenue', '--permissions', 'SELECT', '--id', 'erin-clean-stop'], env);
    assert.equal(g.code, 0, g.stderr);
    server.child.removeAllListeners('close');
    await new Promise<void>((resolve) => {
      server.child.once('close', () => resolve());
      server.child.kill('SIGTERM');
    });
    assert.ok((await readCache()).world.grants.some((x) => x.id === 'erin-clean-stop'), 'the stop wrote the world it served');
    const { r, cached } = await authorizeVia('erin', 'SELECT', 'lake.finance.revenue');
    assert.equal(cached, true);
    assert.equal(JSON.parse(r.stdout).decision, 'allow');
    assert.equal((await steward(['grant', 'revoke', 'erin-clean-stop'], env)).code, 0);
  });

  it('never uses a cache someone else could have written, or one a due timer has outdated', async () => {
    const cases: [string, () => Promise<void>, () => Promise<void>][] = [
      ['readable by others', () => fs.chmod(cacheFile(), 0o644), async () => {}],
      ['a workspace others can enter', () => fs.chmod(home, 0o755), () => fs.chmod(home, 0o700)],
      ['past the next due timer', () => forgeAllowAll(Date.now() - 1), async () => {}],
    ];
    if (process.getuid?.() === 0) cases.push(['owned by another user', () => fs.chown(cacheFile(), 65534, 65534), async () => {}]);
    // The forged cache is used when nothing is wrong with it, so each case below can fail.
    await forgeAllowAll();
    assert.equal(JSON.parse((await authorize('erin', 'SELECT', 'lake.claims.patient_claims')).stdout).decision, 'allow');
    for (const [why, spoil, undo] of cases) {
      await forgeAllowAll();
      await spoil();
      const { r, cached } = await authorizeVia('erin', 'SELECT', 'lake.claims.patient_claims');
      await undo();
      assert.equal(cached, false, why);
      assert.equal(JSON.parse(r.stdout).decision, 'deny', `${why}: ${r.stdout}`);
      assert.equal((await fs.stat(cacheFile())).mode & 0o777, 0o600, `${why}: the opened workspace wrote a true cache`);
      assert.ok(!(await readCache()).world.grants.some((g) => g.id === 'forged'), why);
    }
  });

  it('does not answer from a cache the engine cannot decide with', async () => {
    await forgeAllowAll(null, { level: 'catalog', catalog: 'lake' }); // not a grant resource
    const { r, cached } = await authorizeVia('erin', 'SELECT', 'lake.claims.patient_claims');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(cached, false);
    assert.equal(JSON.parse(r.stdout).decision, 'deny');
    assert.ok(!(await readCache()).world.grants.some((g) => g.id === 'forged'), 'the opened workspace replaced the cache');
  });

  it('logs every cached decision once, at the time it was made', async () => {
    await steward(['log', '--limit', '1'], env); // ingests whatever earlier tests spooled
    assert.deepEqual(await spooled(), []);
    const t0 = Date.now();
    const answers = await Promise.all(['alice', 'bob', 'carol', 'dana', 'erin'].map((p) => authorize(p, 'SELECT', 'lake.claims.patient_claims.ssn')));
    for (const a of answers) assert.equal(a.code, 0, a.stderr);
    assert.equal((await spooled()).length, 5, 'five commands at once, five durable decisions');
    const log = await stewardJson<{ entries: { at: string; action: string; resource: string; result: string; reason: string }[] }>(['log', '--limit', '5'], env);
    assert.deepEqual(await spooled(), [], 'the opened workspace ingested the spool');
    assert.equal(log.entries.length, 5);
    for (const e of log.entries) {
      assert.equal(e.action, 'authorize.SELECT');
      assert.equal(e.resource, 'lake.claims.patient_claims.ssn');
      assert.ok(Date.parse(e.at) >= t0 - 1000 && Date.parse(e.at) <= Date.now(), e.at);
    }
    assert.deepEqual(log.entries.map((e) => e.result).sort(), ['allow', 'deny', 'deny', 'deny', 'deny']);
    const again = await stewardJson<{ entries: { at: string; resource: string }[] }>(['log', '--limit', '100'], env);
    assert.equal(again.entries.filter((e) => Date.parse(e.at) >= t0 - 1000 && e.resource === 'lake.claims.patient_claims.ssn').length, 5, 'nothing logged twice');
  });

  it('loads neither the store nor the server stack', async () => {
    const hook = path.join(root, 'hook.mjs');
    await fs.writeFile(hook, "export async function load(url, context, next) { if (!url.startsWith('node:')) process.stderr.write(`LOAD ${url}\\n`); return next(url, context); }\n");
    const register = path.join(root, 'register.mjs');
    await fs.writeFile(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hook).href)});\n`);
    const r = await steward(['authorize', '--principal', 'alice', '--action', 'SELECT', '--resource', 'lake.claims.patient_claims'], { ...env, NODE_OPTIONS: `--import=${pathToFileURL(register).href}` });
    assert.equal(r.code, 0, r.stderr);
    const loaded = new Set([...r.stderr.matchAll(/^LOAD .*\/node_modules\/((?:@[^/]+\/)?[^/]+)\//gm)].map((m) => m[1]));
    assert.ok(loaded.has('commander') && loaded.has('zod'), 'the hook saw packages load');
    const heavy = ['@electric-sql/pglite', '@duckdb/node-api', 'hono', '@hono/node-server', 'pg', 'jose', 'yaml', 'apache-arrow', 'nodemailer', 'openid-client'];
    assert.deepEqual(heavy.filter((p) => loaded.has(p)), []);
  });

  // Last: the time-bound grant it approves would change the other tests' answers.
  it('a JIT grant that starts later counts from its start: the cache lasts only until the timer is due', async () => {
    const startAt = Date.now() + 4000;
    const req = await stewardJson<{ id: string }>(
      ['access', 'request', '--as', 'alice', '--scope', 'lake.claims', '--permission-set', 'read-with-pii', '--duration', '1h', '--justification', 'incident 42', '--start', new Date(startAt).toISOString()],
      env,
    );
    const ok = await steward(['access', 'approve', req.id, '--as', 'carol', '--comment', 'ok'], env);
    assert.equal(ok.code, 0, ok.stderr);
    const { validUntil } = await readCache();
    assert.ok(validUntil !== null && validUntil <= startAt, `the cache ends at the activation (${String(validUntil)})`);
    const early = await authorizeVia('alice', 'SELECT', 'lake.claims.patient_claims.ssn');
    assert.equal(early.cached, true);
    assert.equal(JSON.parse(early.r.stdout).decision, 'deny');
    await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now()) + 300));
    const late = await authorizeVia('alice', 'SELECT', 'lake.claims.patient_claims.ssn');
    assert.equal(late.cached, false, 'past the timer the workspace is opened, and runs it');
    assert.equal(JSON.parse(late.r.stdout).decision, 'allow', late.r.stdout);
  });
});
