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
  const c = new pg.Client({ connectionString: w.wh.url.replace(/\/[^/]*$/, '/postgres') });
  await c.connect();
  try {
    const { rows } = await c.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname LIKE $1', [rolePattern]);
    for (const r of rows) await c.query(`DROP ROLE IF EXISTS "${r.rolname}"`).catch(() => undefined);
  } finally {
    await c.end();
  }
}
