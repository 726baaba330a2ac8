/**
 * Fault: the PostgreSQL server under a running `steward serve` (the built
 * binary) stops, starts again, and restarts, while clients keep calling
 * `POST /v1/authorize`. Requests made while it is away fail at once with 503
 * `STEWARD_E_UNAVAILABLE` and `Retry-After` (never a 500, never a hang), the
 * server recovers by itself, and every call it acknowledged with a 2xx is in
 * the decision log and, after a flush, in the security lake, whose chain
 * verifies.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startOwnPostgres, type OwnPostgres } from '../support/postgres.js';
import { serveHarness, type ServeHarness, type ServeProcess } from '../support/serve-process.js';
import { pollUntil } from '../support/poll.js';
import { steward } from '../support/cli.js';
import { openDuckDb } from '../../src/lake/duckdb.js';
import { startAuthorizeLoad, type Outcome } from './load.js';

/** Far above any answer a healthy or failing server gives; only a request stuck on a dead connection reaches it. */
const HANG_MS = 20_000;

describe('fault: PostgreSQL restarted under load', { timeout: 240_000 }, () => {
  let pgServer: OwnPostgres;
  let home: string;
  let url: string;
  let h: ServeHarness;
  let server: ServeProcess;

  before(async () => {
    pgServer = await startOwnPostgres();
    const admin = new pg.Client({ connectionString: pgServer.url });
    await admin.connect();
    await admin.query('CREATE DATABASE steward_fault');
    await admin.end();
    url = pgServer.url.replace(/\/postgres$/, '/steward_fault');
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-fault-pg-'));
    h = serveHarness(() => ({ STEWARD_HOME: home, STEWARD_DATABASE_URL: url }));
    server = await h.start();
    assert.notEqual(h.token, '', 'the first start printed the bootstrap token');
  });

  after(async () => {
    await h?.kill9();
    await pgServer?.stop();
    if (home !== undefined) await fs.rm(home, { recursive: true, force: true });
  });

  it('answers 503 with Retry-After while the database is away, never 500 or a hang, recovers by itself and loses no acknowledged decision', async (t) => {
    // threat: a database restart turns into 500s, requests hanging on dead connections, a server that needs a restart
    // of its own, or a decision the API acknowledged that never reaches the audit trail
    const load = startAuthorizeLoad({ url: server.url, token: h.token, workers: 6, hangMs: HANG_MS, prefix: 'r' });
    const okSince = (n: number): (() => Promise<boolean>) => {
      const base = load.count(200);
      return async () => load.count(200) >= base + n;
    };
    try {
      await pollUntil('decisions before the fault', okSince(50), 60_000);

      // 1. Stopped: calls fail fast with 503 while it is down.
      await pgServer.halt();
      const unavailableBefore = load.count(503);
      await pollUntil('503s while the database is stopped', async () => load.count(503) >= unavailableBefore + 20, 60_000);
      // The CLI against the server says so too, and exits non-zero.
      const cli = await steward(['authorize', '--principal', 'user:admin', '--action', 'SELECT', '--resource', 'lake.fault.cli'], {
        STEWARD_URL: server.url,
        STEWARD_TOKEN: h.token,
        HOME: home,
      });
      assert.equal(cli.code, 2, cli.stdout);
      assert.match(cli.stderr, /database is unavailable/);

      // 2. Started again: the server recovers without being restarted.
      await pgServer.resume();
      await pollUntil('decisions after the database came back', okSince(50), 60_000);

      // 3. Restarted in one go (fast shutdown terminates the pool's open connections).
      await pgServer.restart();
      await pollUntil('decisions after the restart', okSince(50), 60_000);
    } finally {
      await load.stop();
    }

    const outcomes = load.outcomes;
    t.diagnostic(`${load.count(200)} acknowledged, ${load.count(503)} unavailable, slowest ${Math.round(Math.max(...outcomes.map((o) => o.ms)))} ms`);
    const byKind = (o: Outcome): string => (o.failure !== undefined ? o.failure : String(o.status));
    const kinds = [...new Set(outcomes.map(byKind))].sort();
    assert.deepEqual(kinds, ['200', '503'], `every answer is a 200 or a 503: ${JSON.stringify(outcomes.filter((o) => o.status !== 200 && o.status !== 503).slice(0, 5))}`);
    for (const o of outcomes.filter((x) => x.status === 503)) {
      assert.equal(o.code, 'STEWARD_E_UNAVAILABLE', JSON.stringify(o));
      assert.equal(o.retryAfter, '1', JSON.stringify(o));
    }
    assert.equal(server.child.exitCode, null, 'the server is still running');

    // Every acknowledged decision is in the decision log…
    const acknowledged = outcomes.filter((o) => o.status === 200).map((o) => o.resource);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    let logged: Set<string>;
    try {
      const { rows } = await client.query<{ resource: string }>("SELECT resource FROM steward.decision_log WHERE action = 'authorize.SELECT' AND resource LIKE 'lake.fault.r%'");
      logged = new Set(rows.map((r) => r.resource));
    } finally {
      await client.end();
    }
    const missing = acknowledged.filter((r) => !logged.has(r));
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} of ${acknowledged.length} acknowledged decisions are not in the decision log`);

    // …and, once flushed, in the security lake, whose chain verifies.
    const flushed = await h.call('POST', '/v1/audit/flush', {});
    assert.equal(flushed.status, 200, JSON.stringify(flushed.json));
    const inLake = await lakeResources(path.join(home, 'lake', 'security', 'ext', 'steward', '**', '*.parquet'));
    const notInLake = acknowledged.filter((r) => !inLake.has(r));
    assert.deepEqual(notInLake.slice(0, 10), [], `${notInLake.length} of ${acknowledged.length} acknowledged decisions are not in the security lake`);
    const verify = await h.call('GET', '/v1/audit/sources/steward/verify');
    assert.equal(verify.json.ok, true, JSON.stringify(verify.json));
  });
});

async function lakeResources(glob: string): Promise<Set<string>> {
  const db = await openDuckDb();
  try {
    const rows = await db.all<{ r: string }>("SELECT DISTINCT resources[1].uid AS r FROM read_parquet($1) WHERE api.operation = 'authorize.SELECT'", [glob]);
    return new Set(rows.map((x) => x.r));
  } finally {
    db.close();
  }
}
