/**
 * Warehouse helpers for tests that sync to the harness's real PostgreSQL:
 * asking whether a login role can read a table, and dropping the roles a
 * test created (roles are cluster-wide, so dropping the database leaves them).
 */
import pg from 'pg';

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

/** Drops every role whose name contains `_<tag>_` (or ends the pattern), with what it owns, on the server of `databaseUrl`. */
export async function dropRolesTagged(databaseUrl: string, tag: string): Promise<void> {
  const c = new pg.Client({ connectionString: databaseUrl.replace(/\/[^/]*$/, '/postgres') });
  await c.connect();
  try {
    const { rows } = await c.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname LIKE $1', [`%${tag}_%`]);
    for (const r of rows) {
      await c.query(`DROP OWNED BY "${r.rolname}"`).catch(() => undefined);
      await c.query(`DROP ROLE IF EXISTS "${r.rolname}"`).catch(() => undefined);
    }
  } finally {
    await c.end();
  }
}
