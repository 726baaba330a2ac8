/**
 * Registering lake tables (Parquet, CSV, JSON, globs, hive partitions) and a
 * PostgreSQL schema over HTTP; refresh reports added, removed and retyped
 * columns; effective tags show where each value came from.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openDuckDb } from '../../src/lake/duckdb.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { startTestServer, type TestServer } from '../support/server.js';

let s: TestServer;
let dir: string;

before(async () => {
  s = await startTestServer();
  // Outside the workspace folder: files there are the workspace's private state, never lake data.
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-files-'));
  await fs.mkdir(path.join(dir, 'events', 'year=2024'), { recursive: true });
  await fs.mkdir(path.join(dir, 'events', 'year=2025'), { recursive: true });
  const db = await openDuckDb();
  try {
    await db.run(`COPY (SELECT range AS id, 'p' || range AS name FROM range(10)) TO '${path.join(dir, 'people.parquet')}' (FORMAT parquet)`);
    await db.run(`COPY (SELECT range AS id, range * 1.5 AS amount FROM range(5)) TO '${path.join(dir, 'orders.csv')}' (FORMAT csv, HEADER)`);
    await db.run(`COPY (SELECT range AS id, 'x' AS kind FROM range(3)) TO '${path.join(dir, 'logs.json')}' (FORMAT json)`);
    for (const y of ['2024', '2025']) {
      await db.run(`COPY (SELECT range AS id FROM range(4)) TO '${path.join(dir, 'events', `year=${y}`, 'part.parquet')}' (FORMAT parquet)`);
    }
  } finally {
    db.close();
  }
});

after(async () => {
  await s.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const register = (table: string, location: string, extra: Record<string, unknown> = {}) =>
  s.call('POST', '/v1/tables/lake', { catalog: 'lake', database: 'raw', table, location, ...extra });

describe('lake registration', () => {
  it('registers Parquet, CSV and JSON files with their columns', async () => {
    const p = await register('people', path.join(dir, 'people.parquet'));
    assert.equal(p.status, 201, JSON.stringify(p.json));
    assert.deepEqual(
      p.json.table.columns.map((c: { name: string }) => c.name),
      ['id', 'name'],
    );
    const c = await register('orders', path.join(dir, 'orders.csv'));
    assert.equal(c.status, 201, JSON.stringify(c.json));
    assert.equal(c.json.table.source.format, 'csv');
    const j = await register('logs', path.join(dir, 'logs.json'));
    assert.equal(j.status, 201, JSON.stringify(j.json));
    assert.equal(j.json.table.source.format, 'json');
  });

  it('registers a hive-partitioned folder with the partition key as a column', async () => {
    const r = await register('events', path.join(dir, 'events'));
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.equal(r.json.files, 2);
    assert.ok(r.json.table.columns.some((c: { name: string }) => c.name === 'year'));
  });

  it('registers a glob', async () => {
    const r = await register('all_events', path.join(dir, 'events', '*', '*.parquet'));
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.equal(r.json.files, 2);
  });

  it('refuses a location that matches nothing, with a 4xx naming it', async () => {
    const r = await register('ghost', path.join(dir, 'nothing-*.parquet'));
    assert.ok(r.status >= 400 && r.status < 500, String(r.status));
    assert.match(r.json.error.message, /nothing-/);
  });

  it('refuses to register the same table twice without replace', async () => {
    const r = await register('people', path.join(dir, 'people.parquet'));
    assert.equal(r.status, 409);
  });

  it('refresh detects added, removed and retyped columns', async () => {
    const db = await openDuckDb();
    try {
      await db.run(`COPY (SELECT 'k' || range AS id, range AS age FROM range(10)) TO '${path.join(dir, 'people.parquet')}' (FORMAT parquet)`);
    } finally {
      db.close();
    }
    const r = await s.call('POST', '/v1/tables/lake/raw/people/refresh');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.added.map((c: { name: string }) => c.name), ['age']);
    assert.deepEqual(r.json.removed.map((c: { name: string }) => c.name), ['name']);
    assert.deepEqual(r.json.retyped.map((c: { name: string }) => c.name), ['id']);
    const again = await s.call('POST', '/v1/tables/lake/raw/people/refresh');
    assert.equal(again.json.added.length + again.json.removed.length + again.json.retyped.length, 0);
  });

  it('refuses files outside the lake roots and inside the workspace folder, and writes nothing', async () => {
    // Threat: a stolen admin token turns registration into a host file read (/etc/passwd, the
    // workspace's own store or token file), then grants the table to itself.
    await fs.writeFile(path.join(s.home, 'secret.csv'), 'token\nsupersecret\n');
    const before = (await s.call('GET', '/v1/tables')).json;
    for (const [location, why] of [
      ['/etc/passwd', /outside the lake roots/],
      [path.join(s.home, 'secret.csv'), /private folder/],
      [path.join(s.home, '*.csv'), /private folder/],
      ['s3://bucket/data.parquet', /remote/],
    ] as const) {
      const r = await register('stolen', location, { format: 'csv' });
      assert.equal(r.status, 422, `${location}: ${JSON.stringify(r.json)}`);
      assert.match(r.json.error.message, why);
      assert.doesNotMatch(JSON.stringify(r.json), /supersecret|root:x:0/);
    }
    assert.deepEqual((await s.call('GET', '/v1/tables')).json, before);
  });

  it('drops a table only with cascade while policy points at it', async () => {
    await s.call('PUT', '/v1/tag-keys/sens', { values: ['low', 'high'] });
    assert.equal((await s.call('PUT', '/v1/resources/lake.raw.orders/tags/sens', { value: 'high' })).status, 200);
    const refused = await s.call('DELETE', '/v1/tables/lake/raw/orders');
    assert.equal(refused.status, 409);
    const dropped = await s.call('DELETE', '/v1/tables/lake/raw/orders?cascade=true');
    assert.equal(dropped.status, 200, JSON.stringify(dropped.json));
  });
});

describe('tags', () => {
  it('lists effective tags with where each value came from, child overriding parent', async () => {
    await s.call('PUT', '/v1/tag-keys/domain', { values: ['raw', 'curated'] });
    assert.equal((await s.call('PUT', '/v1/resources/lake.raw/tags/domain', { value: 'raw' })).status, 200);
    assert.equal((await s.call('PUT', '/v1/resources/lake.raw.logs/tags/sens', { value: 'low' })).status, 200);
    assert.equal((await s.call('PUT', '/v1/resources/lake.raw.logs.kind/tags/sens', { value: 'high' })).status, 200);
    const r = await s.call('GET', '/v1/resources/lake.raw.logs.kind/tags');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.tags, [
      { key: 'domain', value: 'raw', source: 'lake.raw', inherited: true },
      { key: 'sens', value: 'high', source: 'lake.raw.logs.kind', inherited: false },
    ]);
  });

  it('refuses an unknown key and a value outside the allowed list, naming them', async () => {
    const unknownKey = await s.call('PUT', '/v1/resources/lake.raw.logs/tags/colour', { value: 'red' });
    assert.equal(unknownKey.status, 400);
    assert.equal(unknownKey.json.error.code, 'STEWARD_E_UNKNOWN_TAG');
    const badValue = await s.call('PUT', '/v1/resources/lake.raw.logs/tags/sens', { value: 'medium' });
    assert.equal(badValue.status, 400);
    assert.equal(badValue.json.error.code, 'STEWARD_E_UNKNOWN_TAG_VALUE');
  });

  it('refuses removing an allowed value that is still assigned', async () => {
    const r = await s.call('PUT', '/v1/tag-keys/sens', { values: ['low'] });
    assert.equal(r.status, 409);
  });

  it('a tag-expression grant on pii-like tags yields exactly the matching columns', async () => {
    await s.call('POST', '/v1/users', { name: 'ted' });
    const g = await s.call('POST', '/v1/grants', { principal: 'ted', resource: { catalog: 'lake', tags: 'sens=low' }, permissions: ['SELECT'] });
    assert.equal(g.status, 201, JSON.stringify(g.json));
    const d = await s.call('POST', '/v1/authorize', { principal: 'ted', action: 'SELECT', resource: 'lake.raw.logs' });
    assert.equal(d.json.decision, 'allow');
    assert.deepEqual(d.json.columns.map((c: { name: string }) => c.name), ['id']);
  });
});

describe('postgres schema registration', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query('CREATE SCHEMA sales; CREATE TABLE sales.invoices (id bigint, total numeric(10,2), customer text); CREATE TABLE sales.customers (id bigint, name text)');
    await c.end();
  });
  after(async () => {
    await db.drop();
  });

  it('registers every table of the schema and never stores the password', async () => {
    const url = new URL(db.url);
    url.password = 'sekret-pw';
    // trust auth accepts any password, which lets the test prove it is not stored
    const r = await s.call('POST', '/v1/tables/postgres', { catalog: 'warehouse', database: 'sales', url: url.toString(), schema: 'sales' });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.deepEqual(r.json.tables.sort(), ['warehouse.sales.customers', 'warehouse.sales.invoices']);
    const t = await s.call('GET', '/v1/tables/warehouse/sales/invoices');
    assert.deepEqual(t.json.columns.map((c: { name: string }) => c.name), ['id', 'total', 'customer']);
    assert.ok(!JSON.stringify(t.json).includes('sekret-pw'));
    const log = await s.call('GET', '/v1/decision-log?limit=1000');
    assert.ok(!JSON.stringify(log.json).includes('sekret-pw'));
  });
});
