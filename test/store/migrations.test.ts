import assert from 'node:assert/strict';
import { test } from 'node:test';
import { migrate, MIGRATIONS } from '../../src/store/migrations.js';
import { openPostgres } from '../../src/store/db.js';
import { forEachStore } from '../support/stores.js';
import { StewardError } from '../../src/errors.js';

const LATEST = MIGRATIONS.length;

forEachStore(
  'migrations apply once and are idempotent',
  async ({ db }) => {
    const first = await migrate(db);
    assert.deepEqual(first.applied, MIGRATIONS.map((m) => m.version));
    assert.equal(first.version, LATEST);
    const second = await migrate(db);
    assert.deepEqual(second.applied, []);
    const { rows } = await db.query<{ version: number; name: string }>('SELECT version, name FROM steward.migrations ORDER BY version');
    assert.deepEqual(rows, MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    const v = await db.query<{ version: number }>('SELECT version FROM steward.state_version');
    assert.deepEqual(v.rows, [{ version: 0 }]);
  },
  { migrate: false },
);

forEachStore(
  'pg_advisory_xact_lock works inside a transaction',
  async ({ db }) => {
    await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [7_311_592_001]);
      await tx.query('SELECT pg_advisory_xact_lock($1)', [7_311_592_001]); // re-entrant for the holder
    });
  },
  { migrate: false },
);

forEachStore('refuses a schema newer than this build', async ({ db }) => {
  await db.query("INSERT INTO steward.migrations (version, name) VALUES ($1, 'from-the-future')", [LATEST + 1]);
  await assert.rejects(migrate(db), (e: unknown) => e instanceof StewardError && e.code === 'STEWARD_E_CONFIG' && /newer/.test(e.message));
});

forEachStore(
  'a failing migration leaves nothing behind',
  async ({ db }) => {
    const broken = [...MIGRATIONS, { version: LATEST + 1, name: 'broken', sql: 'CREATE TABLE steward.half (x int); SELECT no_such_function();' }];
    await assert.rejects(migrate(db, broken));
    const { rows } = await db.query<{ n: number }>("SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'steward'");
    assert.equal(rows[0]?.n, 0, 'the first migrations of the failed run were rolled back too');
    await migrate(db);
  },
  { migrate: false },
);

forEachStore(
  'two processes migrating at once: one waits for the other',
  async ({ url }) => {
    assert.ok(url);
    const a = await openPostgres(url);
    const b = await openPostgres(url);
    try {
      const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
      assert.deepEqual([...ra.applied, ...rb.applied].sort((x, y) => x - y), MIGRATIONS.map((m) => m.version));
    } finally {
      await a.close();
      await b.close();
    }
  },
  { migrate: false, only: 'postgres' },
);

test('migration versions are 1..n', () => {
  MIGRATIONS.forEach((m, i) => assert.equal(m.version, i + 1));
});
