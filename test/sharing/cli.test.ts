/**
 * The `steward share` commands through the built binary: the producer is a
 * real server (reached with --url and an admin token), the consumer an
 * embedded workspace whose CLI pulls from it over HTTP.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { steward, stewardJson } from '../support/cli.js';
import { startTestServer, type TestServer } from '../support/server.js';

let producer: TestServer;
let consumerHome: string;
let atProducer: NodeJS.ProcessEnv;
let atConsumer: NodeJS.ProcessEnv;

before(async () => {
  producer = await startTestServer();
  const demo = await producer.call('POST', '/v1/demo', {});
  assert.equal(demo.status, 200);
  consumerHome = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-share-cli-'));
  atProducer = { STEWARD_URL: producer.url, STEWARD_TOKEN: producer.adminToken, STEWARD_HOME: path.join(producer.home, 'cli') };
  atConsumer = { STEWARD_HOME: consumerHome };
});
after(async () => {
  await producer?.close();
  await fs.rm(consumerHome, { recursive: true, force: true });
});

describe('steward share', () => {
  it('trusts, shares, pulls, reads and revokes end to end', async () => {
    const producerKey = (await steward(['share', 'identity'], atProducer)).stdout.trim();
    const consumerKey = (await steward(['share', 'identity'], atConsumer)).stdout.trim();
    assert.match(producerKey, /^ed25519:/);
    assert.notEqual(producerKey, consumerKey);
    assert.equal((await steward(['share', 'trust', 'analytics', consumerKey], atProducer)).code, 0);
    const trusted = await steward(['share', 'trust', 'hq', producerKey, '--url', producer.url], atConsumer);
    assert.equal(trusted.code, 0, trusted.stderr);
    const created = await steward(
      ['share', 'create', 'claims', '--to', 'analytics', '--table', 'lake.claims.patient_claims', '--exclude-columns', 'lake.claims.patient_claims:amount', '--rows', "lake.claims.patient_claims:hospital = 'North Hospital'"],
      atProducer,
    );
    assert.equal(created.code, 0, created.stderr);
    const pulled = await stewardJson<{ pulls: { share: string; catalog: string; status: string; entries: number }[] }>(['share', 'pull'], atConsumer);
    assert.deepEqual(pulled.pulls.map((p) => [p.share, p.catalog, p.status]), [['claims', 'hq-claims', 'active']]);
    const status = await steward(['share', 'status'], atConsumer);
    assert.match(status.stdout, /hq-claims\s+active/);
    const shown = await stewardJson<{ columns: { name: string }[] }>(['catalog', 'show', 'hq-claims.claims.patient_claims'], atConsumer);
    assert.ok(shown.columns.some((c) => c.name === 'hospital'));
    assert.ok(!shown.columns.some((c) => c.name === 'amount'), 'the column the share hides is not in the replica');
    const read = await stewardJson<{ rows: unknown[][] }>(['share', 'read', 'hq', 'claims', 'SELECT DISTINCT hospital FROM lake.claims.patient_claims'], atConsumer);
    assert.deepEqual(read.rows, [['North Hospital']]);
    assert.equal((await steward(['share', 'revoke', 'claims'], atProducer)).code, 0);
    const after = await stewardJson<{ pulls: { status: string }[] }>(['share', 'pull'], atConsumer);
    assert.equal(after.pulls[0]?.status, 'revoked');
    const list = await steward(['share', 'list'], atProducer);
    assert.match(list.stdout, /claims\s+analytics\s+lake\.claims\.patient_claims\s+revoked/);
  });

  it('refuses a share spanning two catalogs with a non-zero exit naming the object, and writes nothing', async () => {
    // threat: a careless admin believes a one-catalog share covers a table of another catalog (or the reverse) and shares more than meant
    const r = await steward(['share', 'create', 'mixed', '--to', 'analytics', '--table', 'lake.claims.patient_claims', '--table', 'other.x.y'], atProducer);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /objects\[1\]: `other\.x\.y` is in another catalog than `lake`/);
    const list = await stewardJson<{ shares: { name: string }[] }>(['share', 'list'], atProducer);
    assert.ok(!list.shares.some((s) => s.name === 'mixed'));
  });

  it('refuses a malformed public key and a bad --exclude-columns with a non-zero exit', async () => {
    const key = await steward(['share', 'trust', 'evil', 'ed25519:not-a-key'], atConsumer);
    assert.notEqual(key.code, 0);
    assert.match(key.stderr, /publicKey: /);
    const cols = await steward(['share', 'create', 'x', '--to', 'analytics', '--table', 'lake.claims.patient_claims', '--exclude-columns', 'amount'], atProducer);
    assert.notEqual(cols.code, 0);
    assert.match(cols.stderr, /--exclude-columns: `amount` is not `catalog\.database\.table:…`/);
  });
});
