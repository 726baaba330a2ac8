import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { isStewardError } from '../errors.js';
import { openDuckDb } from '../lake/duckdb.js';
import type { DuckDb } from '../lake/duckdb.js';
import { formatOfPath, inspectLake, registerLakeTables } from './lake-source.js';
import type { LakeProgress } from './lake-source.js';

let db: DuckDb;
let dir: string;

async function copy(select: string, file: string, format: 'parquet' | 'csv' | 'json'): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true });
  const sql = { parquet: 'parquet', csv: 'csv', json: 'json' } as const;
  // `select` is a constant of this test file; the path is bound.
  await db.run(`COPY (${select}) TO $1 (FORMAT ${sql[format]})`, [file]);
}

before(async () => {
  db = await openDuckDb({ config: { threads: '1' } });
  dir = mkdtempSync(path.join(tmpdir(), 'steward-lake-'));
  await copy("SELECT range::BIGINT AS \"Claim_ID\", 'x' AS name, 1.5::DECIMAL(12,2) AS amount FROM range(10)", path.join(dir, 'single/data.parquet'), 'parquet');
  await copy("SELECT 1::BIGINT AS id, 'East' AS region", path.join(dir, 'hive/year=2024/month=1/part-0.parquet'), 'parquet');
  await copy("SELECT 2::BIGINT AS id, 'West' AS region", path.join(dir, 'hive/year=2025/month=2/part-0.parquet'), 'parquet');
  await copy("SELECT 3::BIGINT AS id, 'South' AS region", path.join(dir, 'hive/year=2025/month=3/part-0.parquet'), 'parquet');
  writeFileSync(path.join(dir, 'hive/_SUCCESS'), '');
  await copy("SELECT 1 AS id, 'a' AS v UNION ALL SELECT 2, 'b'", path.join(dir, 'csvs/a.csv'), 'csv');
  await copy("SELECT 3 AS id, 'c' AS v", path.join(dir, 'csvs/b.csv'), 'csv');
  await copy("SELECT 1 AS id, DATE '2025-01-01' AS d", path.join(dir, 'events.json'), 'json');
  await copy("SELECT 1 AS id, 'x' AS \"Patient Name\"", path.join(dir, 'bad/names.csv'), 'csv');
  await copy('SELECT 1 AS "Id", 2 AS "ID"', path.join(dir, 'dupe/case.parquet'), 'parquet');
  await copy('SELECT 1 AS id', path.join(dir, 'mixed/a.parquet'), 'parquet');
  await copy('SELECT 1 AS id', path.join(dir, 'mixed/b.csv'), 'csv');
  mkdirSync(path.join(dir, 'empty'));
  writeFileSync(path.join(dir, 'broken.parquet'), 'not parquet at all');
});

after(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

async function fails(promise: Promise<unknown>, pattern: RegExp, code = 'STEWARD_E_SOURCE'): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(isStewardError(e), String(e));
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    assert.doesNotMatch(e.message, /LINE 1/);
    return true;
  });
}

describe('inspectLake', () => {
  test('a single Parquet file: format from the extension, lowercased columns, rows from metadata', async () => {
    const r = await inspectLake({ location: path.join(dir, 'single/data.parquet') }, { db });
    assert.equal(r.format, 'parquet');
    assert.equal(r.files, 1);
    assert.equal(r.rows, 10);
    assert.equal(r.hivePartitioning, false);
    assert.deepEqual(r.columns, [
      { name: 'claim_id', type: 'BIGINT', ordinal: 0 },
      { name: 'name', type: 'VARCHAR', ordinal: 1 },
      { name: 'amount', type: 'DECIMAL(12,2)', ordinal: 2 },
    ]);
    assert.deepEqual(r.source, { kind: 'lake', format: 'parquet', location: path.join(dir, 'single/data.parquet'), hivePartitioning: false });
  });

  test('a hive-partitioned folder: partition columns appear, bookkeeping files are ignored', async () => {
    const r = await inspectLake({ location: `${path.join(dir, 'hive')}/` }, { db });
    assert.equal(r.format, 'parquet');
    assert.equal(r.files, 3);
    assert.equal(r.rows, 3);
    assert.equal(r.hivePartitioning, true);
    assert.equal(r.location, `${path.join(dir, 'hive')}/**/*.parquet`);
    assert.deepEqual(
      r.columns.map((c) => c.name),
      ['id', 'region', 'month', 'year'],
    );
    // A directory path without the trailing slash is a folder too.
    const again = await inspectLake({ location: path.join(dir, 'hive') }, { db });
    assert.equal(again.location, r.location);
  });

  test('hive partitioning can be switched off', async () => {
    const r = await inspectLake({ location: path.join(dir, 'hive'), hivePartitioning: false }, { db });
    assert.deepEqual(
      r.columns.map((c) => c.name),
      ['id', 'region'],
    );
  });

  test('a CSV glob, with rows counted on request', async () => {
    const r = await inspectLake({ location: path.join(dir, 'csvs/*.csv') }, { db, countRows: true });
    assert.equal(r.format, 'csv');
    assert.equal(r.files, 2);
    assert.equal(r.rows, 3);
    assert.deepEqual(
      r.columns.map((c) => `${c.name}:${c.type}`),
      ['id:BIGINT', 'v:VARCHAR'],
    );
    const noCount = await inspectLake({ location: path.join(dir, 'csvs/*.csv') }, { db });
    assert.equal(noCount.rows, undefined);
  });

  test('a JSON file', async () => {
    const r = await inspectLake({ location: path.join(dir, 'events.json') }, { db });
    assert.equal(r.format, 'json');
    assert.deepEqual(
      r.columns.map((c) => `${c.name}:${c.type}`),
      ['id:BIGINT', 'd:DATE'],
    );
  });

  test('opens its own DuckDB when none is given, and takes a bare DuckDb as shorthand', async () => {
    const r = await inspectLake({ location: path.join(dir, 'events.json') });
    assert.equal(r.files, 1);
    const shorthand = await inspectLake({ location: path.join(dir, 'events.json') }, db);
    assert.deepEqual(shorthand, r);
  });

  test('no files match', async () => {
    await fails(inspectLake({ location: path.join(dir, 'nothing/*.parquet') }, { db }), /^no files match `.*nothing\/\*\.parquet`$/);
    await fails(inspectLake({ location: path.join(dir, 'missing.parquet') }, { db }), /no files match/);
    await fails(inspectLake({ location: `${path.join(dir, 'empty')}/` }, { db }), /no files match/);
  });

  test('an unreadable file names the location and keeps DuckDB’s reason', async () => {
    await fails(inspectLake({ location: path.join(dir, 'broken.parquet') }, { db }), /^cannot read `.*broken\.parquet` as parquet: .*magic bytes/);
    await fails(inspectLake({ location: path.join(dir, 'events.json'), format: 'parquet' }, { db }), /cannot read .* as parquet/);
  });

  test('mixed formats in one folder or glob', async () => {
    await fails(inspectLake({ location: path.join(dir, 'mixed') }, { db }), /mixes formats \(csv, parquet\)/);
    await fails(inspectLake({ location: path.join(dir, 'mixed/*') }, { db }), /mixes formats/);
  });

  test('a column name that is not a plain identifier is an error naming the column and file', async () => {
    await fails(inspectLake({ location: path.join(dir, 'bad/names.csv') }, { db }), /column `Patient Name` of `.*names\.csv` \(file `.*names\.csv`\) is not a plain identifier/);
    // DuckDB itself renames case-insensitive duplicates (`ID` becomes `ID_1`), so they arrive distinct.
    const dupe = await inspectLake({ location: path.join(dir, 'dupe/case.parquet') }, { db });
    assert.deepEqual(
      dupe.columns.map((c) => c.name),
      ['id', 'id_1'],
    );
  });

  test('rejects a location outside the allowed roots, including through `..`', async () => {
    const allowedRoots = { roots: [path.join(dir, 'single')], private: [] };
    await fails(inspectLake({ location: path.join(dir, 'single/../events.json') }, { db, allowedRoots }), /outside the lake roots/);
    await fails(inspectLake({ location: '/etc/passwd', format: 'csv' }, { db, allowedRoots }), /outside the lake roots/);
    await fails(inspectLake({ location: 's3://bucket/x.parquet' }, { db, allowedRoots }), /is remote/);
    const ok = await inspectLake({ location: path.join(dir, 'single/data.parquet') }, { db, allowedRoots });
    assert.equal(ok.files, 1);
  });

  test('a symlink under a root cannot reach outside it, by its own path or through a glob', async () => {
    // Threat: an admin token (or a policy file in review) registers a link that points at /etc.
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-roots-'));
    try {
      await fs.symlink('/etc', path.join(root, 'etc-link'));
      await fs.mkdir(path.join(root, 'ok'));
      await fs.copyFile(path.join(dir, 'single/data.parquet'), path.join(root, 'ok/data.parquet'));
      const allowedRoots = { roots: [root], private: [] };
      await fails(inspectLake({ location: path.join(root, 'etc-link/passwd'), format: 'csv' }, { db, allowedRoots }), /outside the lake roots/);
      await fails(inspectLake({ location: path.join(root, '*/passwd'), format: 'csv' }, { db, allowedRoots }), /outside the lake roots/);
      assert.equal((await inspectLake({ location: path.join(root, 'ok/*.parquet') }, { db, allowedRoots })).files, 1);
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  test("the workspace's private folder is refused even under a broad root, except through a root inside it", async () => {
    // Threat: STEWARD_LAKE_ROOTS=/ lets an admin register server.json (the local admin token) as a CSV table.
    const home = dir;
    const file = path.join(dir, 'single', 'data.parquet');
    await fails(inspectLake({ location: file }, { db, allowedRoots: { roots: ['/'], private: [home] } }), /private folder/);
    await fails(inspectLake({ location: file }, { db, allowedRoots: { roots: [home], private: [home] } }), /private folder/);
    const ok = await inspectLake({ location: file }, { db, allowedRoots: { roots: ['/', path.join(dir, 'single')], private: [home] } });
    assert.equal(ok.files, 1);
  });

  test('a hostile path is data, not SQL', async () => {
    await fails(inspectLake({ location: path.join(dir, "x'); DROP TABLE t; --.parquet") }, { db }), /no files match/);
  });

  test('formatOfPath', () => {
    assert.equal(formatOfPath('a/b.parquet'), 'parquet');
    assert.equal(formatOfPath('a/b.CSV.gz'), 'csv');
    assert.equal(formatOfPath('a/b.ndjson'), 'json');
    assert.equal(formatOfPath('a/b'), null);
  });
});

describe('registerLakeTables', () => {
  test('inspects every entry, reports progress, and lists failures without stopping', async () => {
    const progress: LakeProgress[] = [];
    const result = await registerLakeTables(
      [
        { catalog: 'Lake', database: 'claims', name: 'single', location: path.join(dir, 'single/data.parquet') },
        { catalog: 'lake', database: 'claims', name: 'missing', location: path.join(dir, 'nope/*.parquet') },
        { catalog: 'lake', database: 'claims', name: 'bad name!', location: path.join(dir, 'events.json') },
        { catalog: 'lake', database: 'events', name: 'events', location: path.join(dir, 'events.json') },
      ],
      (p) => progress.push(p),
      { db },
    );
    assert.deepEqual(
      progress.map((p) => `${p.done}/${p.total}:${p.ok}`),
      ['1/4:true', '2/4:false', '3/4:false', '4/4:true'],
    );
    assert.deepEqual(
      result.tables.map((t) => `${t.catalog}.${t.database}.${t.name}`),
      ['lake.claims.single', 'lake.events.events'],
    );
    assert.equal(result.tables[0]?.source.kind, 'lake');
    assert.deepEqual(
      result.failures.map((f) => f.error.code),
      ['STEWARD_E_SOURCE', 'STEWARD_E_VALIDATION'],
    );
  });
});
