/**
 * `steward catalog register-postgres` and `catalog refresh` through the built
 * binary against a real PostgreSQL (issue #10, item 17). The command's source
 * connection is `--source-url`; the global `--url` keeps meaning the Steward
 * server, and both can be given on one command line.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startTestServer, type TestServer } from '../support/server.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { steward, type CliResult } from '../support/cli.js';

describe('catalog register-postgres / refresh through the binary', () => {
  let s: TestServer;
  let src: TestDatabase;
  let admin: pg.Client;
  const cli = (args: string[]): Promise<CliResult> => steward(args, { STEWARD_TOKEN: s.adminToken });

  before(async () => {
    s = await startTestServer();
    src = await createTestDatabase();
    admin = new pg.Client({ connectionString: src.url });
    await admin.connect();
    await admin.query('CREATE SCHEMA shop; CREATE TABLE shop.orders (id integer, note text, region text)');
    for (const args of [['catalog', 'create-catalog', 'pg'], ['catalog', 'create-database', 'pg.shop']]) {
      const r = await cli(['--url', s.url, ...args]);
      assert.equal(r.code, 0, r.stderr);
    }
  });

  after(async () => {
    await admin?.end();
    await src?.drop();
    await s?.close();
  });

  test('`register-postgres --source-url` reaches the source while the global `--url` still names the server', async () => {
    // failure: the global --url swallowed the command's --url, so the command could not be used at all
    const r = await cli(['catalog', 'register-postgres', 'pg.shop', '--source-url', src.url, '--schema', 'shop', '--url', s.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /registered 1 table\(s\): pg\.shop\.orders/);
    const missing = await cli(['catalog', 'register-postgres', 'pg.shop', '--schema', 'shop', '--url', s.url]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /required option '--source-url <url>' not specified/);
  });

  test('refreshing a PostgreSQL table reports added, removed and retyped columns, like a lake table', async () => {
    // failure: a PostgreSQL table could not be refreshed at all, so its registered columns went stale
    await admin.query('ALTER TABLE shop.orders ADD COLUMN amount numeric(10,2), DROP COLUMN note, ALTER COLUMN id TYPE bigint');
    const noUrl = await cli(['--url', s.url, 'catalog', 'refresh', 'pg.shop.orders']);
    assert.equal(noUrl.code, 1);
    assert.match(noUrl.stderr, /body\.sourceUrl: the table comes from PostgreSQL .*give its connection url again \(`--source-url`\) \[STEWARD_E_VALIDATION\]/);
    const r = await cli(['--url', s.url, 'catalog', 'refresh', 'pg.shop.orders', '--source-url', src.url, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const diff = JSON.parse(r.stdout) as { added: { name: string; type: string }[]; removed: { name: string }[]; retyped: { name: string; from: string; to: string }[] };
    assert.deepEqual(diff.added.map((c) => [c.name, c.type]), [['amount', 'numeric(10,2)']]);
    assert.deepEqual(diff.removed.map((c) => c.name), ['note']);
    assert.deepEqual(diff.retyped, [{ name: 'id', from: 'integer', to: 'bigint' }]);
    const text = await cli(['--url', s.url, 'catalog', 'refresh', 'pg.shop.orders', '--source-url', src.url]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /added: -\nremoved: -\nretyped: -/, 'a second refresh finds nothing new');
  });
});
