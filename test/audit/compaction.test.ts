/**
 * Compaction (src/audit/compaction.ts): a closed day partition's small files
 * become one, the merge is recorded in the batch chain, and verify holds
 * before and after; a file altered before the merge is not laundered into
 * the merged one; a crash between the record and the renames is finished by
 * recovery.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer } from '../support/server.js';
import { steward } from '../support/cli.js';

const golden = path.join(path.dirname(fileURLToPath(import.meta.url)), 'golden');
const lines = readFileSync(path.join(golden, 'cloudtrail.input.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .slice(0, 8);

let s: TestServer;
before(async () => {
  s = await startTestServer();
  // The test flushes and compacts by itself.
  await s.ws.services.audit?.service.stop();
});
after(async () => s.close());

const service = () => {
  const a = s.ws.services.audit;
  assert.ok(a !== undefined);
  return a.service;
};

/** Parquet files of a source, relative to its folder, by partition. */
async function filesOf(source: string): Promise<Map<string, string[]>> {
  const root = path.join(s.ws.services.config.lakeDir, 'security', 'ext', source);
  const all = (await fs.readdir(root, { recursive: true })).map((p) => p.split(path.sep).join('/')).filter((p) => p.endsWith('.parquet'));
  const out = new Map<string, string[]>();
  for (const f of all.sort()) out.set(path.posix.dirname(f), [...(out.get(path.posix.dirname(f)) ?? []), path.posix.basename(f)]);
  return out;
}

/** A source with one flush per event: many small files per day partition. */
async function smallFiles(source: string): Promise<void> {
  await service().createSource({ name: source, mapping: 'cloudtrail' });
  for (const l of lines) {
    assert.equal((await service().ingest(source, [l])).accepted, 1);
    await service().flush(source);
  }
}

const count = async (source: string): Promise<number> => {
  const q = await s.call('POST', '/v1/audit/query', { sql: `SELECT count(*) AS n FROM security.${source}` });
  assert.equal(q.status, 200, JSON.stringify(q.json));
  return Number(q.json.rows[0].n);
};

describe('security-lake compaction', () => {
  it('merges each closed day partition into one file, and the chain still verifies with every event in it', async () => {
    // threat: a compaction that drops, duplicates or reorders events, or leaves a lake verify can no longer check
    await smallFiles('merge');
    const before = await filesOf('merge');
    assert.ok([...before.values()].some((f) => f.length > 1), JSON.stringify([...before]));
    assert.equal((await service().verify('merge')).ok, true);
    const r = await steward(['audit', 'compact', '--source', 'merge', '--json'], { STEWARD_URL: s.url, STEWARD_TOKEN: s.adminToken });
    assert.equal(r.code, 0, r.stderr);
    const [result] = (JSON.parse(r.stdout) as { results: { partitions: string[]; events: number; refused: string[] }[] }).results;
    // One event per flush: a partition of n files holds n events; a partition of one file is left alone.
    const many = [...before].filter(([, n]) => n.length > 1);
    assert.deepEqual([...(result?.partitions ?? [])].sort(), many.map(([d]) => d).sort());
    assert.equal(result?.events, many.reduce((n, [, f]) => n + f.length, 0));
    assert.deepEqual(result?.refused, []);
    const after = await filesOf('merge');
    assert.deepEqual([...after.keys()], [...before.keys()]);
    for (const [dir] of many) assert.match((after.get(dir) ?? []).join(','), /^c\d{12}\.parquet$/);
    const v = await service().verify('merge');
    assert.equal(v.ok, true, JSON.stringify(v.problems));
    assert.equal(v.events, 8);
    assert.equal(await count('merge'), 8);
    // A second run finds nothing to merge; new events after it are still chained and verified.
    assert.deepEqual((await service().compact('merge'))[0]?.partitions, []);
    assert.equal((await service().ingest('merge', [lines[0] as string])).accepted, 1);
    await service().flush('merge');
    assert.equal((await service().verify('merge')).ok, true);
  });

  it('refuses to merge a small file altered before compaction, so the tampering is not laundered into a trusted file', async () => {
    // threat: an attacker edits a small file and waits for compaction to re-hash it into a merged file the chain vouches for
    await smallFiles('tampered');
    const root = path.join(s.ws.services.config.lakeDir, 'security', 'ext', 'tampered');
    const [dir, names] = [...(await filesOf('tampered'))].find(([, n]) => n.length > 1) as [string, string[]];
    // Replace one file's bytes with another's of the same partition: valid Parquet, wrong events.
    await fs.copyFile(path.join(root, dir, names[1] as string), path.join(root, dir, names[0] as string));
    const [result] = await service().compact('tampered');
    assert.deepEqual(result?.refused, [dir]);
    assert.deepEqual((await filesOf('tampered')).get(dir), names, 'the partition is left as it was');
    const v = await service().verify('tampered');
    assert.equal(v.ok, false);
    const log = await s.call('GET', '/v1/decision-log?limit=50');
    assert.ok((log.json.entries as { action: string; result: string }[]).some((e) => e.action === 'audit.compact' && e.result === 'error'));
  });

  it('detects a compaction record edited in the store to vouch for different files', async () => {
    // threat: someone with database access rewrites the list of replaced files to hide a deleted one
    await smallFiles('edited');
    await service().compact('edited');
    await s.ws.db.query(
      `UPDATE steward.audit_batches SET files = jsonb_set(files, '{0,replaces,0,sha256}', to_jsonb(repeat('0', 64))) WHERE source = 'edited' AND files->0 ? 'replaces'`,
    );
    const v = await service().verify('edited');
    assert.equal(v.ok, false);
    assert.ok(v.problems.some((p) => p.kind === 'modified'), JSON.stringify(v.problems));
  });

  it('finishes a compaction interrupted after its record was committed, before its files were swapped', async () => {
    // threat: a crash in the middle leaves events twice (old and merged files) or nowhere, and verify fails forever
    await smallFiles('crash');
    const root = path.join(s.ws.services.config.lakeDir, 'security', 'ext', 'crash');
    const saved = new Map<string, Buffer>();
    for (const [dir, names] of await filesOf('crash')) for (const n of names) saved.set(`${dir}/${n}`, await fs.readFile(path.join(root, dir, n)));
    await service().compact('crash');
    // Put the lake back the way a crash right after the commit leaves it: the merged file still hidden, the small files present.
    const { rows } = await s.ws.db.query<{ files: { file: string; sha256: string }[] }>(`SELECT files FROM steward.audit_batches WHERE source = 'crash' AND files->0 ? 'replaces'`);
    assert.ok(rows.length > 0);
    for (const { files } of rows) {
      const f = files[0] as { file: string; sha256: string };
      await fs.rename(path.join(root, f.file), path.join(root, path.posix.dirname(f.file), `.c-${f.sha256}.tmp`));
    }
    for (const [rel, bytes] of saved) await fs.writeFile(path.join(root, rel), bytes);
    // And an orphan of a compaction that never committed.
    const someDir = [...saved.keys()][0] as string;
    await fs.writeFile(path.join(root, path.posix.dirname(someDir), '.compact-0123456789abcdef.tmp'), 'half');
    const v = await service().verify('crash');
    assert.equal(v.ok, true, JSON.stringify(v.problems));
    assert.equal(v.events, 8);
    for (const names of (await filesOf('crash')).values()) assert.equal(names.length, 1, names.join(','));
    const hidden = (await fs.readdir(root, { recursive: true })).filter((p) => p.endsWith('.tmp'));
    assert.deepEqual(hidden, []);
  });
});
