/**
 * The sandbox caches Parquet footers and file bytes only where the gateway can
 * tell that a file changed (sandbox.ts, "File caches"). DuckDB trusts a cache
 * entry while a file's device, inode, size and modification second are the
 * same, so these tests rewrite a file in place with the same size and set its
 * modification time back: the hardest change to notice. Also: lake locations
 * are bound as parameters of the rewritten SQL, after the user's own.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createGateway, fileParameters, type Gateway } from '../../src/gateway/gateway.js';
import { isStewardError } from '../../src/errors.js';
import { fileFingerprint, lakeAccessOf, openSandbox } from '../../src/gateway/sandbox.js';
import { createEngine } from '../../src/policy/engine.js';
import { EMPTY_WORLD, type PolicyWorld } from '../../src/policy/model.js';
import { openDuckDb, type DuckDb } from '../../src/lake/duckdb.js';
import type { Snapshot } from '../../src/workspace/state-service.js';
import { parquetTable } from '../support/lake-table.js';

let dir: string;
let duck: DuckDb;
before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'steward-file-cache-'));
  duck = await openDuckDb();
});
after(() => {
  duck.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const OLD = new Date(Date.now() - 3_600_000);

/** Same size either way (uncompressed, same widths); `swapped` stores `secret` where `pub` was. */
async function writeClaims(file: string, swapped: boolean): Promise<void> {
  const cols = swapped ? `'SECRET-' || range AS secret, 'public-' || range AS pub` : `'public-' || range AS pub, 'SECRET-' || range AS secret`;
  const tmp = `${file}.${swapped ? 'b' : 'a'}`;
  await duck.run(`COPY (SELECT range AS id, 'a' AS grp, ${cols} FROM range(20000)) TO '${tmp.replaceAll("'", "''")}' (FORMAT parquet, COMPRESSION uncompressed)`);
  if (fs.existsSync(file)) {
    assert.equal(fs.statSync(tmp).size, fs.statSync(file).size, 'the rewrite must keep the size for this test to mean anything');
    fs.writeFileSync(file, fs.readFileSync(tmp)); // in place: same inode
    fs.rmSync(tmp);
  } else fs.renameSync(tmp, file);
  fs.utimesSync(file, OLD, OLD);
}

function world(location: string): PolicyWorld {
  return {
    ...EMPTY_WORLD,
    catalogs: [{ name: 'lake' }],
    databases: [{ catalog: 'lake', name: 'db' }],
    tables: [parquetTable('db', 't', location, ['id', 'grp', 'pub', 'secret'].map((name) => [name, name === 'id' ? 'BIGINT' : 'VARCHAR'] as const))],
    users: [{ name: 'u' }],
    filters: [
      {
        name: 'no_secret',
        catalog: 'lake',
        database: 'db',
        table: 't',
        rowFilter: "grp = 'a'",
        predicate: { k: 'cmp', op: '=', left: { k: 'col', name: 'grp' }, right: { k: 'lit', value: 'a' } },
        excludedColumns: ['secret'],
      },
    ],
    grants: [{ id: 'u', principal: 'user:u', resource: { kind: 'filter', catalog: 'lake', database: 'db', table: 't', filter: 'no_secret' }, permissions: ['SELECT'], grantable: [] }],
  };
}

async function pubValues(g: Gateway): Promise<string[]> {
  const st = await g.open({ principal: 'user:u', actor: 'test', sql: 'SELECT pub FROM db.t WHERE id < 3 ORDER BY id' });
  const out: string[] = [];
  for await (const rows of st.batches()) for (const r of rows) out.push(String(r[0]));
  return out;
}

describe('sandbox file caches', () => {
  it('a file rewritten in place (same size, modification time set back) is never read through a cached footer', async () => {
    // Threat: a cached footer read against new bytes shows another column's pages (the hidden `secret`) as `pub`.
    const file = path.join(dir, 'claims.parquet');
    await writeClaims(file, false);
    const w = world(file);
    const snap: Snapshot = { version: 1, world: w, engine: createEngine(w) };
    const g = await createGateway({ snapshot: async () => snap, log: async () => {} });
    try {
      assert.deepEqual(await pubValues(g), ['public-0', 'public-1', 'public-2']);
      assert.deepEqual(await pubValues(g), ['public-0', 'public-1', 'public-2']);
      await writeClaims(file, true);
      const after = await pubValues(g);
      assert.deepEqual(after, ['public-0', 'public-1', 'public-2']);
      assert.ok(after.every((v) => !v.startsWith('SECRET')));
    } finally {
      await g.close();
    }
  });

  it('queries running while a file is rewritten read either version whole, or are refused', async () => {
    // Threat: one query's file check replaces the sandbox while others are between their check and their bind.
    const file = path.join(dir, 'concurrent.parquet');
    await writeClaims(file, false);
    const w = world(file);
    const snap: Snapshot = { version: 1, world: w, engine: createEngine(w) };
    const g = await createGateway({ snapshot: async () => snap, log: async () => {}, limits: { maxPerPrincipal: 8 } });
    try {
      assert.deepEqual(await pubValues(g), ['public-0', 'public-1', 'public-2']);
      const outcomes = await Promise.all(
        Array.from({ length: 6 }, async (_, i) => {
          if (i === 2) await writeClaims(file, true);
          return pubValues(g).then(
            (v) => v.join(','),
            (e: unknown) => (isStewardError(e) ? e.code : String(e)),
          );
        }),
      );
      for (const o of outcomes) assert.ok(o === 'public-0,public-1,public-2' || o === 'STEWARD_E_CONFLICT', o);
      assert.deepEqual(await pubValues(g), ['public-0', 'public-1', 'public-2']);
    } finally {
      await g.close();
    }
  });

  it('a fingerprint changes with any rewrite, even one that keeps size and modification time', async () => {
    const file = path.join(dir, 'fp.parquet');
    await writeClaims(file, false);
    const before = await fileFingerprint(file);
    await writeClaims(file, true);
    assert.notEqual(await fileFingerprint(file), before);
    assert.equal(await fileFingerprint(path.join(dir, 'missing.parquet')), null);
  });

  it('a sandbox notices a rewrite between its check and the bind, and asks to be replaced', async () => {
    // Threat: a file rewritten just after the pre-query check, before DuckDB reads its (cached) footer.
    const file = path.join(dir, 'race.parquet');
    await writeClaims(file, false);
    const box = await openSandbox(lakeAccessOf([file]), { memoryLimit: '256MB', threads: 1 });
    try {
      assert.equal(await box.stale([file]), false);
      assert.equal(await box.unchanged([file]), true);
      await writeClaims(file, true);
      assert.equal(await box.unchanged([file]), false);
      assert.equal(await box.stale([file]), true);
    } finally {
      box.retire();
    }
  });

  it('caches only when every location is a single file; folder and glob locations read footers every time', async () => {
    const settings = { memoryLimit: '256MB', threads: 1 };
    const files = await openSandbox(lakeAccessOf([path.join(dir, 'a.parquet')]), settings);
    const folders = await openSandbox(lakeAccessOf([path.join(dir, 'a.parquet'), `${dir}/**/*.parquet`]), settings);
    try {
      assert.equal(files.caching, true);
      assert.equal(folders.caching, false);
      assert.equal(await folders.stale([path.join(dir, 'a.parquet')]), false);
      const con = await folders.connect();
      try {
        const r = await con.runAndReadAll("SELECT current_setting('enable_external_file_cache'), current_setting('parquet_metadata_cache')");
        assert.deepEqual(r.getRows()[0], [false, false]);
      } finally {
        con.closeSync();
      }
    } finally {
      files.retire();
      folders.retire();
    }
  });
});

describe('lake locations as parameters', () => {
  let g: Gateway;
  let file: string;
  before(async () => {
    file = path.join(dir, 'params.parquet');
    await writeClaims(file, false);
    const w = world(file);
    const snap: Snapshot = { version: 1, world: w, engine: createEngine(w) };
    g = await createGateway({ snapshot: async () => snap, log: async () => {} });
  });
  after(async () => {
    await g.close();
  });
  const rows = async (sql: string, params: Record<string, string | number>): Promise<unknown[][]> => {
    const st = await g.open({ principal: 'user:u', actor: 'test', sql, params });
    const out: unknown[][] = [];
    for await (const batch of st.batches()) out.push(...batch);
    return out;
  };

  it('numbers the locations after the user\'s own numbered parameters', async () => {
    // Threat: a numbered parameter that lands on the lake location would read (or echo) the file path.
    const p = await g.plan('user:u', 'SELECT $1 AS tag, a.pub FROM db.t a JOIN db.t b ON a.id = b.id WHERE a.id < $2', { 1: 'mine', 2: 2 });
    assert.deepEqual(p.fileParams, [{ name: '3', location: file }]);
    assert.deepEqual(p.binds, ['mine', 2n, file]);
    assert.deepEqual(await rows('SELECT $1 AS tag, pub FROM db.t WHERE id < $2 ORDER BY id', { 1: 'mine', 2: 2 }), [
      ['mine', 'public-0'],
      ['mine', 'public-1'],
    ]);
  });

  it('names the locations with an unguessable prefix next to named parameters', async () => {
    const p = await g.plan('user:u', 'SELECT pub FROM db.t WHERE id = $id', { id: 1 });
    assert.equal(p.fileParams.length, 1);
    assert.match(p.fileParams[0]?.name ?? '', /^__steward_[0-9a-f]{32}_f0$/);
    assert.deepEqual(await rows('SELECT pub FROM db.t WHERE id = $id', { id: 1 }), [['public-1']]);
  });

  it('refuses a parameter name in the reserved namespace', () => {
    assert.throws(() => fileParameters(['__steward_x_f0'], [file], '__steward_x_f'), (e: unknown) => isStewardError(e) && e.code === 'STEWARD_E_FORBIDDEN');
    assert.deepEqual(fileParameters([], ['a', 'b'], 'p'), [
      { name: '1', location: 'a' },
      { name: '2', location: 'b' },
    ]);
  });
});
