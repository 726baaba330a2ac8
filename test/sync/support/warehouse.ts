/**
 * A throwaway warehouse database for one sync test file: created, its
 * credentials put in the environment variable the target reads, the world's
 * schemas and tables made; and afterwards dropped with every role the file
 * created (named with its random tag).
 */
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../../support/postgres.js';
import type { PolicyWorld } from '../../../src/policy/model.js';
import { prepareWarehouse } from './small-world.js';

export interface TestWarehouse {
  readonly wh: TestDatabase;
  /** A superuser connection to the warehouse. */
  readonly admin: pg.Client;
}

export async function openWarehouse(world: PolicyWorld, loginPrefix: string, envVar: string): Promise<TestWarehouse> {
  const wh = await createTestDatabase();
  process.env[envVar] = wh.url;
  const admin = new pg.Client({ connectionString: wh.url });
  await admin.connect();
  await prepareWarehouse(admin, world, loginPrefix);
  return { wh, admin };
}

/** Drops the database and every role whose name matches `rolePattern` (a LIKE pattern), and clears `envVar`. */
export async function closeWarehouse(w: TestWarehouse | undefined, rolePattern: string, envVar: string): Promise<void> {
  delete process.env[envVar];
  if (w === undefined) return;
  await w.admin.end();
  await w.wh.drop();
  await dropRolesLike(w.wh.url, rolePattern);
}

/**
 * Drops every role whose name matches `rolePattern` (a LIKE pattern), with what it owns, on the server of
 * `databaseUrl`: roles are cluster-wide, so dropping a test's database leaves them.
 */
export async function dropRolesLike(databaseUrl: string, rolePattern: string): Promise<void> {
  const c = new pg.Client({ connectionString: databaseUrl.replace(/\/[^/]*$/, '/postgres') });
  await c.connect();
  try {
    const { rows } = await c.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname LIKE $1', [rolePattern]);
    for (const r of rows) {
      await c.query(`DROP OWNED BY "${r.rolname}"`).catch(() => undefined);
      await c.query(`DROP ROLE IF EXISTS "${r.rolname}"`).catch(() => undefined);
    }
  } finally {
    await c.end();
  }
}

/** Whether `role` can run `sql` (a read) on `admin`'s connection, switching roles inside a rolled-back transaction. */
export async function roleCanRead(admin: pg.Client, role: string, sql: string): Promise<boolean> {
  await admin.query('BEGIN');
  try {
    await admin.query(`SET LOCAL ROLE "${role.replaceAll('"', '""')}"`);
    await admin.query(sql);
    return true;
  } catch (e) {
    if (e instanceof Error && /permission denied/.test(e.message)) return false;
    throw e;
  } finally {
    await admin.query('ROLLBACK');
  }
}
