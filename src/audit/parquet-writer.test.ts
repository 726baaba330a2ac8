import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cleanStaging, partitionDir, partitionValue } from './parquet-writer.js';

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
