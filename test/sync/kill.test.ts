/**
 * Killing the process mid-apply, at random points, never leaves a state the
 * next apply cannot converge from, and the ledger never claims a grant that
 * is not in pg_catalog. A run a kill left `running` is marked `interrupted`
 * by the next apply.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import path from 'node:path';
import { rm } from 'node:fs/promises';
import { build } from 'esbuild';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { createRng } from '../support/random-world.js';
import { harness, prepareWarehouse, smallWorld, targetDef } from './support/small-world.js';

const tag = randomBytes(3).toString('hex');
const PREFIX = `stw${tag}_k_`;
const LOGIN = `l${tag}_`;
const ENV = `STEWARD_TEST_KILL_${tag.toUpperCase()}`;
const CHILD = fileURLToPath(new URL('./support/apply-child.ts', import.meta.url));

let wh: TestDatabase;
let admin: pg.Client;
/** The child bundled once (esbuild, which tsx ships with), so each of the 20 runs starts in a fraction of tsx's time. */
const BUNDLE = path.join(os.tmpdir(), `steward-kill-child-${tag}.mjs`);

before(async () => {
  await build({
    entryPoints: [CHILD],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: BUNDLE,
    external: ['pg-native'],
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
    logLevel: 'error',
  });
  wh = await createTestDatabase();
  admin = new pg.Client({ connectionString: wh.url });
  await admin.connect();
  await prepareWarehouse(admin, smallWorld({ tables: 40 }), LOGIN);
});

after(async () => {
  await rm(BUNDLE, { force: true });
  await admin?.end();
  await wh?.drop();
  const c = new pg.Client({ connectionString: wh.url.replace(/\/[^/]*$/, '/postgres') });
  await c.connect();
  const { rows } = await c.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname LIKE $1', [`%${tag}_%`]);
  for (const r of rows) await c.query(`DROP ROLE IF EXISTS "${r.rolname}"`);
  await c.end();
});

/**
 * Runs the child and SIGKILLs it `delayMs` after it says `ready` (never, when
 * `delayMs` is null); resolves with how it ended and how long it ran after `ready`.
 */
function runAndKill(variant: 'A' | 'B', delayMs: number | null): Promise<{ outcome: 'killed' | 'finished'; ms: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BUNDLE, variant, PREFIX, LOGIN, ENV], {
      env: { PATH: process.env['PATH'], HOME: process.env['HOME'], [ENV]: wh.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let readyAt = 0;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n') && readyAt === 0) {
        readyAt = performance.now();
        if (delayMs !== null) setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const ms = readyAt === 0 ? 0 : performance.now() - readyAt;
      if (signal === 'SIGKILL') resolve({ outcome: 'killed', ms });
      else if (code === 0) resolve({ outcome: 'finished', ms });
      else reject(new Error(`child exited ${code}: ${err}`));
    });
  });
}

test('killed 20 times mid-apply at random points, the next apply converges', async () => {
  const rng = createRng(Number.parseInt(tag, 16));
  // Kill points are drawn within the time an apply really takes on this machine (measured, uninterrupted,
  // for both directions), so the runs are killed mid-apply however fast or loaded the machine is.
  const span = Math.min((await runAndKill('A', null)).ms, (await runAndKill('B', null)).ms);
  const latest = Math.max(1, Math.floor(span * 0.8));
  let killed = 0;
  const variants: ('A' | 'B')[] = [];
  for (let i = 0; i < 20; i++) {
    const variant = i % 2 === 0 ? 'A' : 'B';
    variants.push(variant);
    if ((await runAndKill(variant, rng.int(0, latest))).outcome === 'killed') killed++;
    // the ledger only ever holds what pg_catalog shows (sampled on table grants)
    const { rows } = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM steward_config.grants g
        WHERE g.kind = 'table' AND g.target = 'kill'
          AND NOT has_table_privilege(g.role_name, format('%I.%I', g.schema_name, g.table_name), split_part(g.item_key, '|', 5))`,
    ).catch(() => ({ rows: [{ n: 0 }] }));
    assert.equal(rows[0]?.n, 0, `iteration ${i}: the ledger records a grant that is not there`);
  }
  assert.ok(killed >= 15, `only ${killed} of 20 runs were killed before finishing (kill points within ${latest} ms of an apply that takes ${Math.round(span)} ms)`);
  const h = harness(smallWorld({ tables: 40, variant: variants.at(-1) }));
  process.env[ENV] = wh.url;
  try {
    await h.sync.targets.put(targetDef('kill', PREFIX, LOGIN, ENV, { batchSize: 7 }));
    await h.sync.apply('kill');
    const plan = await h.sync.plan('kill');
    assert.deepEqual(plan.steps.map((s) => s.sql), []);
    assert.deepEqual(plan.drift.filter((d) => d.message.includes(PREFIX)), []);
  } finally {
    delete process.env[ENV];
  }
});

test('a run killed -9 mid-apply is marked `interrupted` by the next apply, not left `running`', async () => {
  // threat: a dead sync looks like one still in progress, so nobody notices the warehouse stopped following the policy
  const blocker = new pg.Client({ connectionString: wh.url });
  await blocker.connect();
  const target = 'killw';
  try {
    // the apply's first GRANT on sales.t0 waits behind this lock: the run is `running` when it is killed
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE sales.t0 IN ACCESS EXCLUSIVE MODE');
    const child = spawn(process.execPath, [BUNDLE, 'A', `${PREFIX}w_`, LOGIN, ENV, target], { env: { PATH: process.env['PATH'], HOME: process.env['HOME'], [ENV]: wh.url }, stdio: 'ignore' });
    const closed = new Promise((resolve) => child.on('close', resolve));
    const deadline = Date.now() + 30_000;
    for (;;) {
      const { rows } = await admin.query(`SELECT 1 FROM steward_config.runs WHERE target = $1 AND status = 'running'`, [target]).catch(() => ({ rows: [] }));
      if (rows.length > 0) break;
      assert.ok(Date.now() < deadline, 'the child never started its run');
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    await closed;
  } finally {
    await blocker.query('ROLLBACK').catch(() => undefined);
    await blocker.end();
  }
  const h = harness(smallWorld({ tables: 40, variant: 'A' }));
  process.env[ENV] = wh.url;
  try {
    await h.sync.targets.put(targetDef(target, `${PREFIX}w_`, LOGIN, ENV, { batchSize: 7 }));
    await h.sync.apply(target);
  } finally {
    delete process.env[ENV];
  }
  const { rows } = await admin.query<{ status: string }>('SELECT status FROM steward_config.runs WHERE target = $1 ORDER BY id', [target]);
  assert.deepEqual(rows.map((r) => r.status), ['interrupted', 'ok']);
});
