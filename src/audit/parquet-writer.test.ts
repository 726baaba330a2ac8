import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { cleanStaging, createParquetWriter, partitionDir, partitionValue, sourceDir, type BatchInput, type ParquetWriter } from './parquet-writer.js';
import { conform, GENESIS_HASH } from './lake-schema.js';
import { mapperFor } from './mappings/index.js';

describe('partition folders', () => {
  it('rejects a path-traversal region or account from an ingested record', () => {
    // Threat: a forged CloudTrail record with awsRegion `../../../etc` writes Parquet outside the lake.
    for (const evil of ['../../../etc', '..', '/abs/path', 'a/../../b', 'x\u0000y', '.hidden']) {
      const v = partitionValue(evil, 'fallback');
      assert.doesNotMatch(v, /[/\\\u0000]/);
      assert.ok(!v.startsWith('.'), v);
      const dir = partitionDir('/lake', 'cloudtrail', { region: v, accountId: v, eventDay: '20250101' });
      assert.ok(path.resolve(dir).startsWith('/lake/security/ext/cloudtrail/'), dir);
    }
    assert.equal(partitionValue(undefined, 'global'), 'global');
    assert.equal(partitionValue('', 'global'), 'global');
    assert.equal(partitionValue('us-east-1', 'global'), 'us-east-1');
  });
});

describe('staging cleanup', () => {
  it('removes a dead writer\'s leftovers and never a live writer\'s or a fresh foreign one', async () => {
    // Threat: cleanup that deletes by age or by name alone removes the files a live flush (here or on
    // another host sharing the lake) is about to rename into the lake, losing its batch.
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-staging-'));
    try {
      const host = os.hostname().replace(/[^A-Za-z0-9.-]/g, '_');
      const dead = spawnSync(process.execPath, ['-e', '0']).pid;
      const names = {
        dead: `${host}~${dead}~1.ndjson`,
        deadOut: `${host}~${dead}~1.out`,
        live: `${host}~${process.pid}~3.ndjson`,
        foreignFresh: `other-host~${dead}~1.ndjson`,
        foreignOld: `other-host~${dead}~2.ndjson`,
        legacyOld: `${dead}-1.ndjson`,
        unrelated: 'notes.txt',
      };
      for (const n of Object.values(names)) {
        if (n.endsWith('.out')) await fs.mkdir(path.join(dir, n));
        else await fs.writeFile(path.join(dir, n), 'x');
      }
      const old = new Date(Date.now() - 2 * 86_400_000);
      await fs.utimes(path.join(dir, names.foreignOld), old, old);
      await fs.utimes(path.join(dir, names.legacyOld), old, old);
      const removed = await cleanStaging(dir);
      assert.deepEqual(removed, [names.legacyOld, names.dead, names.deadOut, names.foreignOld].sort());
      assert.deepEqual((await fs.readdir(dir)).sort(), [names.foreignFresh, names.live, names.unrelated].sort());
      assert.deepEqual(await cleanStaging(path.join(dir, 'missing')), []);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('ingest lanes: a batch cut into lanes is stored as one lane stores it', () => {
  const decisionRow = fc.record({
    actor: fc.constantFrom('user:alice', 'group:g', 'user:bob (local)', 'anonymous', 'x'),
    action: fc.constantFrom('authorize.SELECT', 'authorize.DROP', 'auth.token', 'user.put', 'grant.revoke', 'access.activate', 'catalog.create', 'odd'),
    resource: fc.constantFrom('lake.a.b', 'lake.a.b.c', 'user:carol', 'api', ''),
    result: fc.constantFrom('allow', 'deny', 'ok', 'error'),
    reason: fc.string({ maxLength: 8 }),
    details: fc.option(fc.record({ principal: fc.constantFrom('user:alice', 'group:x'), grants: fc.array(fc.constantFrom('g1', 'g2'), { maxLength: 2 }), ip: fc.constantFrom('10.0.0.1', '') }, { requiredKeys: [] }), { nil: null }),
    // Up to three days, so some batches span several day partitions (the partitioned COPY).
    offsetMs: fc.integer({ min: 0, max: 3 * 86_400_000 }),
  });
  type DecisionRow = typeof decisionRow extends fc.Arbitrary<infer T> ? T : never;
  // The golden CloudTrail records that map (the file also holds the ones quarantine must refuse).
  const cloudTrail = readFileSync(new URL('../../test/audit/golden/cloudtrail.input.jsonl', import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((l) => {
      let record: unknown;
      try {
        record = JSON.parse(l);
      } catch {
        return [];
      }
      const m = mapperFor('cloudtrail')(record);
      return m.ok ? [m.event] : [];
    });

  /** Batch `b` as the state store hands it over: raw decision rows (steward) or conformed events with `ord` (custom). */
  function ndjsonOf(kind: BatchInput['kind'], rows: readonly DecisionRow[], from: number): string {
    if (kind === 'steward') {
      return rows.map((r, i) => JSON.stringify({ id: from + i, at: new Date(Date.UTC(2025, 2, 1) + r.offsetMs).toISOString(), actor: r.actor, action: r.action, resource: r.resource, result: r.result, reason: r.reason, details: r.details })).join('\n');
    }
    return rows.map((r, i) => JSON.stringify({ ...conform({ ...cloudTrail[(from + i) % cloudTrail.length], time: Date.UTC(2025, 2, 1) + r.offsetMs }).event, ord: from + i })).join('\n');
  }

  /** Writes the batches in order as source `source`, chained from `start`; returns what the flusher would record and the rows read back. */
  async function writeAll(writer: ParquetWriter, dir: string, source: string, kind: BatchInput['kind'], batches: readonly (readonly DecisionRow[])[], start: { seq: number; hash: string }) {
    const outs = [];
    let head = start;
    let from = 1;
    for (const [i, rows] of batches.entries()) {
      const out = await writer.writeBatch(dir, { kind, source, batch: i + 1, ndjson: ndjsonOf(kind, rows, from), firstSeq: head.seq + 1, prevHash: head.hash, region: 'local', accountId: 'steward' });
      from += rows.length;
      head = { seq: out.lastSeq, hash: out.lastHash };
      outs.push({ events: out.events, lastSeq: out.lastSeq, lastHash: out.lastHash, files: out.files.map((f) => ({ file: f.file, sha256: f.sha256, events: f.events })) });
    }
    const written = outs.some((o) => o.files.length > 0);
    const rows = !written ? [] : await writer.duckdb.all('SELECT * FROM read_parquet($1, hive_partitioning = true) ORDER BY seq', [path.join(sourceDir(dir, source), '**', '*.parquet')]);
    return { outs, rows };
  }

  /** Per batch: its chain head and how many events it stored in each partition (lanes add files, not events). */
  const perPartition = (outs: Awaited<ReturnType<typeof writeAll>>['outs']) =>
    outs.map((o) => {
      const parts = new Map<string, number>();
      for (const f of o.files) parts.set(path.posix.dirname(f.file), (parts.get(path.posix.dirname(f.file)) ?? 0) + f.events);
      return { events: o.events, lastSeq: o.lastSeq, lastHash: o.lastHash, parts: [...parts].sort() };
    });

  it('changes no event, digest, link or partition, so lakes written before still verify', async () => {
    // Threat: a faster ingest that computes a digest, a link or a partition differently breaks the
    // chain of every lake written before it (verify would report tampering that never happened), or
    // silently drops, doubles or reorders events at the cut between two lanes.
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-lanes-'));
    const one = await createParquetWriter({ stagingDir: path.join(root, '.staging'), lanes: 1 });
    // Three lanes cut even the smallest batch, so every cut (and an empty lane) is exercised.
    const three = await createParquetWriter({ stagingDir: path.join(root, '.staging'), lanes: 3, minLaneBytes: 1 });
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom<BatchInput['kind']>('steward', 'events'),
          fc.array(fc.array(decisionRow, { maxLength: 40 }), { minLength: 1, maxLength: 3 }),
          fc.record({ seq: fc.integer({ min: 0, max: 1_000_000 }), hash: fc.constantFrom(GENESIS_HASH, 'f'.repeat(16)) }),
          async (kind, batches, start) => {
            run += 1;
            const old = await writeAll(one, path.join(root, 'one'), `s${run}`, kind, batches, start);
            const now = await writeAll(three, path.join(root, 'three'), `s${run}`, kind, batches, start);
            assert.equal(now.rows.length, batches.flat().length);
            // Same chain heads, same events per partition, same rows (digests and links included).
            assert.deepEqual(perPartition(now.outs), perPartition(old.outs));
            assert.deepEqual(now.rows, old.rows);
            for (const o of now.outs) for (const f of o.files) assert.match(f.file, /\/b\d{12}(-[12])?\.parquet$/);
          },
        ),
        { numRuns: 10, seed: 16 },
      );
    } finally {
      one.close();
      three.close();
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});

describe('positions', () => {
  for (const lanes of [1, 2]) {
    it(`numbers a batch handed over out of key order by key, not by arrival (${lanes} lane${lanes === 1 ? '' : 's'})`, async () => {
      // Threat: rows numbered as they arrive would give the chain an order other than the decision
      // log's (and a redo of the same batch, handed over in another order, different digests and files).
      // With two lanes the disorder crosses the cut between them.
      const root = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-positions-'));
      const writer = await createParquetWriter({ stagingDir: path.join(root, '.staging'), lanes, minLaneBytes: 1 });
      try {
        const row = (id: number): string => JSON.stringify({ id, at: '2025-03-04T05:06:07.000Z', actor: 'user:alice', action: 'authorize.SELECT', resource: 'lake.a.b', result: 'allow', reason: 'granted', details: null });
        const read = async (source: string, ids: number[]) => {
          const out = await writer.writeBatch(root, { kind: 'steward', source, batch: 1, ndjson: ids.map(row).join('\n'), firstSeq: 101, prevHash: GENESIS_HASH, region: 'local', accountId: 'steward' });
          const rows = await writer.duckdb.all<{ seq: number; uid: string; prev: string; hash: string }>('SELECT seq, metadata.uid AS uid, prev_hash AS prev, hash FROM read_parquet($1) ORDER BY seq', [path.join(sourceDir(root, source), '**', '*.parquet')]);
          return { out: { lastSeq: out.lastSeq, lastHash: out.lastHash, events: out.events }, rows };
        };
        const inOrder = await read('ordered', [3, 5, 8, 13]);
        const shuffled = await read('shuffled', [8, 13, 3, 5]);
        const repeated = await read('repeated', [3, 3, 5]);
        assert.deepEqual(shuffled.rows.map((r) => r.uid), ['steward-3', 'steward-5', 'steward-8', 'steward-13']);
        assert.deepEqual(shuffled.rows.map((r) => r.seq), [101, 102, 103, 104]);
        assert.deepEqual(shuffled, inOrder);
        // Each link is the digest before it, across the cut too.
        assert.deepEqual(inOrder.rows.map((r) => r.prev), [GENESIS_HASH, ...inOrder.rows.slice(0, -1).map((r) => r.hash)]);
        assert.deepEqual(repeated.rows.map((r) => r.uid), ['steward-3', 'steward-3', 'steward-5']);
      } finally {
        writer.close();
        await fs.rm(root, { recursive: true, force: true });
      }
    });
  }

  it('a batch redone with fewer lanes leaves none of the first attempt\'s files', async () => {
    // Threat: a flush killed after renaming its lanes' files, redone after a restart with another lane
    // count (or a smaller cut), leaves the first attempt's extra file beside the new ones: its events
    // would be read twice and verify would report a file no batch recorded.
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-redo-'));
    const three = await createParquetWriter({ stagingDir: path.join(root, '.staging'), lanes: 3, minLaneBytes: 1 });
    const one = await createParquetWriter({ stagingDir: path.join(root, '.staging'), lanes: 1 });
    try {
      const row = (id: number, day: number): string => JSON.stringify({ id, at: new Date(Date.UTC(2025, 2, 4 + day)).toISOString(), actor: 'user:alice', action: 'authorize.SELECT', resource: 'lake.a.b', result: 'allow', reason: 'granted', details: null });
      const ndjson = [1, 2, 3, 4, 5, 6].map((id) => row(id, id > 3 ? 1 : 0)).join('\n');
      const input = { kind: 'steward' as const, source: 'redo', batch: 7, ndjson, firstSeq: 1, prevHash: GENESIS_HASH, region: 'local', accountId: 'steward' };
      const first = await three.writeBatch(root, input);
      assert.ok(first.files.length > 2, 'the first attempt wrote several lanes\' files');
      const again = await one.writeBatch(root, input);
      const onDisk = (await fs.readdir(sourceDir(root, 'redo'), { recursive: true })).filter((f) => String(f).endsWith('.parquet')).map((f) => String(f).split(path.sep).join('/')).sort();
      assert.deepEqual(onDisk, again.files.map((f) => f.file).sort());
      const [n] = await one.duckdb.all<{ n: number }>('SELECT count(*) AS n FROM read_parquet($1)', [path.join(sourceDir(root, 'redo'), '**', '*.parquet')]);
      assert.equal(Number(n?.n), 6);
      assert.equal(again.lastHash, first.lastHash);
    } finally {
      three.close();
      one.close();
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
