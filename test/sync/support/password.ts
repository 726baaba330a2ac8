/**
 * Makes one role of the test cluster authenticate with a password (scram),
 * although the cluster runs with `-A trust`: a line for that role alone is put
 * first in the server's pg_hba.conf (written by the server itself, with
 * lo_export, so it works whatever OS user runs the tests) and the
 * configuration reloaded. Other roles keep trust. Returns the restore function.
 */
import pg from 'pg';

export async function requirePassword(superuserUrl: string, role: string): Promise<() => Promise<void>> {
  const c = new pg.Client({ connectionString: superuserUrl });
  await c.connect();
  try {
    const file = (await c.query<{ f: string }>(`SELECT current_setting('hba_file') AS f`)).rows[0]?.f as string;
    const original = (await c.query<{ t: string }>('SELECT pg_read_file($1) AS t', [file])).rows[0]?.t as string;
    const line = `host all "${role.replaceAll('"', '""')}" 127.0.0.1/32 scram-sha-256\nhost all "${role.replaceAll('"', '""')}" ::1/128 scram-sha-256\n`;
    await write(c, file, line + original);
    return async () => {
      const r = new pg.Client({ connectionString: superuserUrl });
      await r.connect();
      try {
        const now = (await r.query<{ t: string }>('SELECT pg_read_file($1) AS t', [file])).rows[0]?.t as string;
        await write(r, file, now.replace(line, ''));
      } finally {
        await r.end();
      }
    };
  } finally {
    await c.end();
  }
}

async function write(c: pg.Client, file: string, text: string): Promise<void> {
  await c.query('BEGIN');
  try {
    const oid = (await c.query<{ o: number }>(`SELECT lo_from_bytea(0, convert_to($1, 'UTF8')) AS o`, [text])).rows[0]?.o as number;
    await c.query('SELECT lo_export($1, $2)', [oid, file]);
    await c.query('SELECT lo_unlink($1)', [oid]);
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK');
    throw e;
  }
  const errors = await c.query<{ line_number: number; error: string }>('SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL');
  if (errors.rows.length > 0) throw new Error(`pg_hba.conf: ${JSON.stringify(errors.rows)}`);
  await c.query('SELECT pg_reload_conf()');
  // the postmaster reloads asynchronously: wait until a new backend sees the file
  await new Promise((r) => setTimeout(r, 300));
}
