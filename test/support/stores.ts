/**
 * The conformance pattern: one test body, run against every store driver.
 *
 * `forEachStore('name', async ({ db }) => …)` registers two tests, `name
 * [pglite]` and `name [postgres]`, each given a fresh, migrated database:
 * - PGlite: one in-memory instance per test file (starting one costs seconds
 *   on a busy machine), reset before each test by dropping the `steward`
 *   schema;
 * - PostgreSQL: a new database per test on the shared throwaway server (see
 *   postgres.ts), dropped afterwards; `url` lets a test open a second
 *   connection to the same database.
 *
 * Set STEWARD_TEST_SKIP_POSTGRES=1 to skip the PostgreSQL half (reported as
 * skipped, never silently passed).
 */
import { after, test } from 'node:test';
import { openPglite, openPostgres } from '../../src/store/db.js';
import type { Db } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrations.js';
import { createTestDatabase } from './postgres.js';

export interface StoreContext {
  readonly db: Db;
  readonly kind: Db['kind'];
  /** PostgreSQL only: this test's database, for opening more connections. */
  readonly url?: string;
}

export interface ForEachStoreOptions {
  /** Apply migrations before the body runs (default true). */
  readonly migrate?: boolean;
  readonly timeout?: number;
  readonly only?: Db['kind'];
}

let pglite: Promise<Db> | undefined;
let closeRegistered = false;

/** Call at the top level of a test file (hooks register there), before any test runs. */
function registerClose(): void {
  if (closeRegistered) return;
  closeRegistered = true;
  after(async () => {
    if (pglite !== undefined) await (await pglite).close();
  });
}

/** The file's PGlite instance (raw: not reset, not migrated), closed when the file's tests end. */
export function sharedPglite(): Promise<Db> {
  pglite ??= openPglite('memory');
  return pglite;
}

export function forEachStore(name: string, fn: (ctx: StoreContext) => Promise<void>, options: ForEachStoreOptions = {}): void {
  registerClose();
  const timeout = options.timeout ?? 120_000;
  if (options.only !== 'postgres') {
    test(`${name} [pglite]`, { timeout }, async () => {
      const db = await sharedPglite();
      await db.exec('DROP SCHEMA IF EXISTS steward CASCADE');
      if (options.migrate !== false) await migrate(db);
      await fn({ db, kind: 'pglite' });
    });
  }
  if (options.only !== 'pglite') {
    const skip = process.env.STEWARD_TEST_SKIP_POSTGRES === '1' ? 'STEWARD_TEST_SKIP_POSTGRES=1' : false;
    test(`${name} [postgres]`, { timeout, skip }, async () => {
      const database = await createTestDatabase();
      const db = await openPostgres(database.url);
      try {
        if (options.migrate !== false) await migrate(db);
        await fn({ db, kind: 'postgres', url: database.url });
      } finally {
        await db.close();
        await database.drop();
      }
    });
  }
}
