import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { partitionDir, partitionValue } from './parquet-writer.js';

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
