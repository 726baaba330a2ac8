import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { isStewardError } from '../errors.js';
import { createTestDatabase } from '../../test/support/postgres.js';
import type { TestDatabase } from '../../test/support/postgres.js';
import { columnType, inspectPostgresSchema, redactText, redactUrl, tablesFromColumns } from './postgres-source.js';
import type { InformationSchemaColumn } from './postgres-source.js';

describe('inspectPostgresSchema against PostgreSQL', () => {
  let database: TestDatabase;

  before(async () => {
    database = await createTestDatabase();
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await client.query(`
        CREATE SCHEMA sales;
        CREATE TYPE sales.tier AS ENUM ('gold', 'silver');
        CREATE TABLE sales.orders (id bigint PRIMARY KEY, region varchar(16), amount numeric(12,2), placed date, tags text[], tier sales.tier, dropped int);
        ALTER TABLE sales.orders DROP COLUMN dropped;
        ALTER TABLE sales.orders ADD COLUMN note text;
        CREATE TABLE sales.customers (id integer, name text);
        CREATE VIEW sales.big_orders AS SELECT id, amount FROM sales.orders WHERE amount > 100;
        CREATE TABLE sales."Odd Table" ("Weird Col" int);
        CREATE TABLE public.elsewhere (id int);
      `);
    } finally {
      await client.end();
    }
  });

  after(async () => {
    await database.drop();
  });

  test('refuses a schema with names Steward cannot register, listing them', async () => {
    await assert.rejects(inspectPostgresSchema(database.url, 'sales'), (e: unknown) => {
      assert.ok(isStewardError(e));
      assert.equal(e.code, 'STEWARD_E_SOURCE');
      assert.match(e.message, /schema `sales` has 2 names Steward cannot register \(first: table name `Odd Table`/);
      assert.deepEqual(
        e.details.map((d) => d.path),
        ['sales.Odd Table', 'sales.Odd Table.Weird Col'],
      );
      return true;
    });
  });

  test('reads tables and views with ordinals 0..n-1 and PostgreSQL type spellings', async () => {
    const tables = await inspectPostgresSchema(database.url, 'sales', { skipUnsupported: true });
    assert.deepEqual(
      tables.map((t) => t.table),
      ['big_orders', 'customers', 'orders'],
    );
    const orders = tables.find((t) => t.table === 'orders');
    assert.deepEqual(orders?.columns, [
      { name: 'id', type: 'bigint', ordinal: 0 },
      { name: 'region', type: 'character varying(16)', ordinal: 1 },
      { name: 'amount', type: 'numeric(12,2)', ordinal: 2 },
      { name: 'placed', type: 'date', ordinal: 3 },
      { name: 'tags', type: 'text[]', ordinal: 4 },
      { name: 'tier', type: 'tier', ordinal: 5 },
      { name: 'note', type: 'text', ordinal: 6 },
    ]);
    const withoutViews = await inspectPostgresSchema(database.url, 'sales', { skipUnsupported: true, views: false });
    assert.deepEqual(
      withoutViews.map((t) => t.table),
      ['customers', 'orders'],
    );
  });

  test('a schema name is a bound value: an injection attempt finds nothing', async () => {
    assert.deepEqual(await inspectPostgresSchema(database.url, "sales' OR '1'='1"), []);
  });
});

describe('connection errors never show the password', () => {
  test('rejects with a redacted url when the server is unreachable', async () => {
    const url = 'postgres://steward:s3cr3t%2Fpw@127.0.0.1:1/warehouse?sslpassword=other-secret';
    await assert.rejects(inspectPostgresSchema(url, 'public', { connectTimeoutMs: 2000 }), (e: unknown) => {
      assert.ok(isStewardError(e));
      assert.equal(e.code, 'STEWARD_E_SOURCE');
      const everything = JSON.stringify({ message: e.message, details: e.details, cause: String(e.cause), stack: e.stack });
      assert.doesNotMatch(everything, /s3cr3t|other-secret/);
      assert.match(e.message, /cannot read schema `public` from `postgres:\/\/steward:\*\*\*@127\.0\.0\.1:1\/warehouse/);
      return true;
    });
  });

  test('redactUrl and redactText', () => {
    assert.equal(redactUrl('postgres://u:p%40ss@h:5432/d'), 'postgres://u:***@h:5432/d');
    assert.equal(redactUrl('postgres://u@h/d'), 'postgres://u@h/d');
    assert.equal(redactUrl('not a url with secret'), '(unparsable connection url)');
    assert.equal(redactText('failed for p@ss and p%40ss', 'postgres://u:p%40ss@h/d'), 'failed for *** and ***');
    assert.equal(redactText('bad dsn host=h password=x', 'host=h password=x'), 'bad dsn (unparsable connection url)');
  });
});

describe('tablesFromColumns and columnType', () => {
  const col = (table: string, name: string, ordinal: number, dataType = 'integer'): InformationSchemaColumn => ({
    table_name: table,
    column_name: name,
    ordinal_position: ordinal,
    data_type: dataType,
    udt_name: 'int4',
    character_maximum_length: null,
    numeric_precision: null,
    numeric_scale: null,
  });

  test('renumbers ordinals after dropped columns and sorts tables', () => {
    const tables = tablesFromColumns([col('b', 'x', 3), col('b', 'w', 1), col('a', 'y', 1)], 's', false);
    assert.deepEqual(tables, [
      { table: 'a', columns: [{ name: 'y', type: 'integer', ordinal: 0 }] },
      {
        table: 'b',
        columns: [
          { name: 'w', type: 'integer', ordinal: 0 },
          { name: 'x', type: 'integer', ordinal: 1 },
        ],
      },
    ]);
  });

  test('spells parameterised types', () => {
    assert.equal(columnType({ ...col('t', 'c', 1, 'numeric'), numeric_precision: 10, numeric_scale: 0 }), 'numeric(10,0)');
    assert.equal(columnType({ ...col('t', 'c', 1, 'numeric') }), 'numeric');
    assert.equal(columnType({ ...col('t', 'c', 1, 'ARRAY'), udt_name: '_int4' }), 'int4[]');
  });
});
