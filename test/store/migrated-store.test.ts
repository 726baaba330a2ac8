/**
 * The migrated store the tests copy instead of creating one
 * (test/support/migrated-store.ts) must be what a new workspace would hold.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openPglite } from '../../src/store/db.js';
import { MIGRATIONS, migrate } from '../../src/store/migrations.js';
import { seedMigratedStore } from '../support/migrated-store.js';

describe('the migrated store tests start from', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
  });

  // Failure: a copy made before a migration was added would let tests pass against an old schema (or hide a migration that fails).
  it('holds every migration of this build, so opening a copy applies none', async () => {
    const home = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-seeded-'));
    dirs.push(home);
    await seedMigratedStore(home);
    const db = await openPglite(path.join(home, 'pgdata'));
    try {
      const result = await migrate(db);
      assert.deepEqual(result.applied, []);
      assert.equal(result.version, MIGRATIONS.at(-1)?.version);
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM steward.migrations');
      assert.equal(rows[0]?.n, MIGRATIONS.length);
    } finally {
      await db.close();
    }
  });

  // Threat: a copied store with PGlite's own 0666 modes would leave a test workspace readable by other users, unlike a created one.
  it('copies a store whose folders are 0700 and files 0600', async () => {
    const home = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-seeded-'));
    dirs.push(home);
    await seedMigratedStore(home);
    const open: string[] = [];
    const entries = await fs.readdir(path.join(home, 'pgdata'), { recursive: true });
    for (const e of ['.', ...entries]) {
      const s = await fs.lstat(path.join(home, 'pgdata', e));
      const want = s.isDirectory() ? 0o700 : 0o600;
      if ((s.mode & 0o777) !== want) open.push(`${(s.mode & 0o777).toString(8)} ${e}`);
    }
    assert.ok(entries.length > 100, `a PostgreSQL data folder, not ${entries.length} entries`);
    assert.deepEqual(open, []);
  });
});
