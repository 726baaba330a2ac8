import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openDb, openPostgres, parseDatabaseUrl } from '../../src/store/db.js';
import { createStateStore } from '../../src/store/state-store.js';
import { StewardError } from '../../src/errors.js';
import { forEachStore } from '../support/stores.js';
import { sharedPostgres } from '../support/postgres.js';

const PASSWORD = 'hunter2-Sup3rS3cret';

/** Everything an operator might see of an error: message, stack, JSON, and inspect (which prints the cause chain). */
function everything(e: unknown): string {
  return [String(e), e instanceof Error ? e.stack : '', JSON.stringify(e), inspect(e, { depth: 10 })].join('\n');
}

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 1));
    });
  });
}

// Threat: connection errors end up in logs and terminals; the password must not.
test('a connection failure names host, port and database but never the password', async () => {
  const port = await closedPort();
  const url = `postgres://steward:${PASSWORD}@127.0.0.1:${port}/governance`;
  await assert.rejects(openPostgres(url, { connectTimeoutMs: 3000 }), (e: unknown) => {
    assert.ok(e instanceof StewardError);
    assert.equal(e.code, 'STEWARD_E_CONFIG');
    assert.match(e.message, new RegExp(`steward@127\\.0\\.0\\.1:${port}/governance`));
    assert.ok(!everything(e).includes(PASSWORD), everything(e));
    return true;
  });
});

test('a server that refuses the database: the message says which, without the password', async () => {
  const server = new URL((await sharedPostgres()).url);
  server.password = PASSWORD;
  server.pathname = '/no_such_database';
  await assert.rejects(openPostgres(server.toString()), (e: unknown) => {
    assert.ok(e instanceof StewardError && e.code === 'STEWARD_E_CONFIG');
    assert.match(e.message, /no_such_database/);
    assert.match(e.message, new RegExp(`${server.hostname}:${server.port}`));
    assert.ok(!everything(e).includes(PASSWORD));
    return true;
  });
});

test('a malformed url is refused without echoing it', async () => {
  for (const url of [`postgres://u:${PASSWORD}@[bad/x`, `mysql://u:${PASSWORD}@h/x`, `u:${PASSWORD}@h`]) {
    await assert.rejects(openPostgres(url), (e: unknown) => e instanceof StewardError && e.code === 'STEWARD_E_CONFIG' && !everything(e).includes(PASSWORD));
  }
});

test('parseDatabaseUrl fills defaults and decodes', () => {
  assert.deepEqual(parseDatabaseUrl('postgres://a%40b:p%2Fw@db.example:6543/gov'), { host: 'db.example', port: 6543, database: 'gov', user: 'a@b', password: 'p/w' });
  assert.deepEqual(parseDatabaseUrl('postgresql://h'), { host: 'h', port: 5432, database: 'postgres', user: 'postgres', password: undefined });
  assert.equal(parseDatabaseUrl('postgres://u@/gov?host=/var/run/postgresql').host, '/var/run/postgresql');
});

forEachStore('transactions commit, roll back on throw, and nest by reuse', async ({ db }) => {
  await db.exec('CREATE TABLE steward.t (x int)');
  await db.transaction(async (tx) => {
    await tx.query('INSERT INTO steward.t VALUES ($1)', [1]);
    await tx.transaction(async (inner) => inner.query('INSERT INTO steward.t VALUES ($1)', [2]));
  });
  await assert.rejects(
    db.transaction(async (tx) => {
      await tx.query('INSERT INTO steward.t VALUES ($1)', [3]);
      await tx.transaction(async (inner) => inner.query('INSERT INTO steward.t VALUES ($1)', [4]));
      throw new Error('boom');
    }),
    /boom/,
  );
  const { rows } = await db.query<{ x: number }>('SELECT x FROM steward.t ORDER BY x');
  assert.deepEqual(rows, [{ x: 1 }, { x: 2 }]);
  // The connection is still usable after a rollback.
  assert.deepEqual((await db.query<{ one: number }>('SELECT 1 AS one')).rows, [{ one: 1 }]);
});

forEachStore('both drivers parse values the same way', async ({ db }) => {
  const { rows } = await db.query<Record<string, unknown>>(
    `SELECT 42::bigint AS big, count(*) AS n, 1.50::numeric AS num, '{"a":[1]}'::jsonb AS j,
            '2030-01-01T00:00:00Z'::timestamptz AS ts, NULL::text AS nothing, true AS yes, 'x'::text AS s`,
  );
  assert.deepEqual(rows, [{ big: 42, n: 1, num: '1.50', j: { a: [1] }, ts: new Date('2030-01-01T00:00:00Z'), nothing: null, yes: true, s: 'x' }]);
});

// Threat: values are always bound, never spliced: a hostile value is data, and the table survives.
forEachStore('parameters are bound, not spliced', async ({ db }) => {
  await db.exec('CREATE TABLE steward.victim (s text)');
  const hostile = "x'); DROP TABLE steward.victim; --";
  await db.query('INSERT INTO steward.victim VALUES ($1)', [hostile]);
  assert.deepEqual((await db.query<{ s: string }>('SELECT s FROM steward.victim')).rows, [{ s: hostile }]);
});

test('openDb: embedded store in <home>/pgdata, migrated, persisted across reopen; a URL selects PostgreSQL', { timeout: 120_000 }, async () => {
  const home = await mkdtemp(path.join(os.tmpdir(), 'steward-home-'));
  try {
    const first = await openDb({ home });
    assert.equal(first.kind, 'pglite');
    assert.equal(await createStateStore(first).applyChanges([{ op: 'put', kind: 'user', entity: { name: 'alice' } }]), 1);
    await first.close();
    assert.ok(existsSync(path.join(home, 'pgdata', 'PG_VERSION')));

    const second = await openDb({ home, databaseUrl: '' });
    const { world, version } = await createStateStore(second).loadWorld();
    assert.equal(version, 1);
    assert.deepEqual(world.users, [{ name: 'alice' }]);
    await second.close();

    const pgDb = await openDb({ home, databaseUrl: (await sharedPostgres()).url, migrate: false });
    assert.equal(pgDb.kind, 'postgres');
    await pgDb.close();
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

// Threat to the request path: PGlite runs on the server's event loop, and zero-filling each new 16 MB WAL segment held
// every request behind one INSERT for 35-45 ms (bench/load.bench.ts's p99).
test('the embedded store creates WAL segments without zero-filling them', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'steward-wal-'));
  try {
    const db = await openDb({ home: dir });
    try {
      const { rows } = await db.query<{ wal_init_zero: string }>('SHOW wal_init_zero');
      assert.equal(rows[0]?.wal_init_zero, 'off');
    } finally {
      await db.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
