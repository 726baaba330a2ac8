/**
 * The security lake end to end over HTTP: decisions and changes flushed to
 * hive-partitioned Parquet, registered as a governed catalog table, the hash
 * chain verified and tampering located, and an unwritable lake survived.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { startTestServer, type TestServer } from '../support/server.js';
import { openDuckDb } from '../../src/lake/duckdb.js';
import { validateOcsf } from './ocsf-validator.js';
import { ROW_HASH_SQL } from '../../src/audit/lake-sql.js';

const glob = (s: TestServer, source = 'steward'): string => path.join(s.ws.services.config.lakeDir, 'security', 'ext', source, '**', '*.parquet');

/** Waits until the interval's failed-authentication row is in the decision log (at most a few seconds). */
async function authFailureWritten(s: TestServer): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const { rows } = await s.ws.db.query<{ n: number }>("SELECT count(*)::int AS n FROM steward.decision_log WHERE action = 'auth.token' AND result = 'deny'");
    if (Number(rows[0]?.n) > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail('no failed-authentication row was written');
}

async function decisionCount(s: TestServer): Promise<number> {
  const { rows } = await s.ws.db.query<{ n: number }>('SELECT count(*)::int AS n FROM steward.decision_log');
  return Number(rows[0]?.n);
}

describe('security lake: outbox to Parquet, chain, governance', () => {
  let s: TestServer;
  before(async () => {
    // Failed authentications are written once per source address and interval: a 1 s interval keeps this file fast.
    process.env['STEWARD_AUTH_FAILURE_INTERVAL'] = '1';
    s = await startTestServer();
    delete process.env['STEWARD_AUTH_FAILURE_INTERVAL'];
    assert.equal((await s.call('POST', '/v1/demo', {})).status, 200);
    for (const p of ['alice', 'bob', 'erin']) {
      for (let i = 0; i < 3; i++) await s.call('POST', '/v1/authorize', { principal: p, action: 'SELECT', resource: 'lake.claims.patient_claims.ssn' });
    }
    await s.call('GET', '/v1/me', undefined, 'stw_0000000000000000_not-a-real-token-not-a-real-token-not-a-rea');
    await authFailureWritten(s);
  });
  after(async () => s.close());

  it('flush writes every decision-log row once, under region=/accountId=/eventDay=', async () => {
    const r = await s.call('POST', '/v1/audit/flush', {});
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const db = await openDuckDb();
    try {
      const rows = await db.all<{ n: number; uids: number; days: number }>(
        'SELECT count(*) AS n, count(DISTINCT metadata.uid) AS uids, count(DISTINCT eventDay) AS days FROM read_parquet($1, hive_partitioning = true)',
        [glob(s)],
      );
      const { rows: pending } = await s.ws.db.query<{ n: number }>('SELECT count(*)::int AS n FROM steward.decision_log WHERE audit_batch IS NULL');
      // Every row not still waiting (the flush itself logs nothing, but the test server may) is in the lake exactly once.
      assert.equal(rows[0]?.n, (await decisionCount(s)) - Number(pending[0]?.n));
      assert.equal(rows[0]?.uids, rows[0]?.n);
      const files = await db.all<{ file: string }>('SELECT file FROM glob($1)', [glob(s)]);
      for (const f of files) assert.match(f.file, /security\/ext\/steward\/region=local\/accountId=steward\/eventDay=\d{8}\/b\d{12}\.parquet$/);
    } finally {
      db.close();
    }
  });

  it('events read back from Parquet are valid OCSF 1.1, with the deciding guardrail named', async () => {
    const q = await s.call('POST', '/v1/audit/query', {
      sql: "SELECT * EXCLUDE (region, accountId, eventDay) FROM steward.security.steward WHERE api.operation = 'authorize.SELECT' ORDER BY seq",
    });
    assert.equal(q.status, 200, JSON.stringify(q.json));
    assert.ok(q.json.rows.length >= 9);
    const strip = (v: unknown): unknown =>
      Array.isArray(v) ? v.map(strip) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, strip(x)])) : v;
    for (const row of q.json.rows) assert.deepEqual(validateOcsf(strip(row) as Record<string, unknown>), []);
    const alice = q.json.rows.find((r: any) => r.actor.user.uid === 'user:alice');
    assert.equal(alice.status_id, 2);
    assert.equal(alice.actor.authorizations[0].policy.name, 'pii-requires-privacy-officer');
    const auth = await s.call('POST', '/v1/audit/query', { sql: 'SELECT count(*) AS n FROM steward.security.steward WHERE class_uid = 3002 AND status_id = 2' });
    assert.ok(auth.json.rows[0].n >= 1, 'the bad token is an Authentication failure');
  });

  it('the security table is a catalog table that auditors may SELECT and nobody else sees', async () => {
    const t = await s.call('GET', '/v1/tables/steward/security/steward');
    assert.equal(t.status, 200, JSON.stringify(t.json));
    assert.ok(t.json.columns.some((c: { name: string }) => c.name === 'eventday'));
    const ask = async (p: string): Promise<string> =>
      (await s.call('POST', '/v1/authorize', { principal: p, action: 'SELECT', resource: 'steward.security.steward' })).json.decision;
    assert.equal(await ask('dana'), 'allow');
    for (const p of ['alice', 'bob', 'carol', 'north_admin', 'erin']) assert.equal(await ask(p), 'deny', p);
  });

  it('verify: an untouched chain is intact', async () => {
    const v = await s.call('GET', '/v1/audit/sources/steward/verify');
    assert.equal(v.status, 200);
    assert.equal(v.json.ok, true, JSON.stringify(v.json.problems));
    assert.ok(v.json.events > 10);
  });

  it('an unwritable lake folder fails the flush clearly and keeps the events in the outbox until it is writable', async () => {
    await s.call('POST', '/v1/audit/flush', {});
    const ext = path.join(s.ws.services.config.lakeDir, 'security', 'ext', 'steward');
    const moved = `${ext}.moved`;
    await fs.rename(ext, moved);
    await fs.writeFile(ext, 'a file where the source folder should be'); // works even as root, unlike chmod
    for (let i = 0; i < 5; i++) await s.call('POST', '/v1/authorize', { principal: 'erin', action: 'SELECT', resource: 'lake.finance.revenue' });
    const failed = await s.call('POST', '/v1/audit/flush', { source: 'steward' });
    assert.equal(failed.status, 422);
    assert.match(failed.json.error.message, /cannot write the security lake at `.*`: .*the events stay in the outbox/);
    const { rows } = await s.ws.db.query<{ pending: unknown }>("SELECT pending FROM steward.audit_sources WHERE name = 'steward'");
    assert.notEqual(rows[0]?.pending, null, 'the batch is still pending');
    await fs.rm(ext);
    await fs.rename(moved, ext);
    const ok = await s.call('POST', '/v1/audit/flush', { source: 'steward' });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    const db = await openDuckDb();
    try {
      const [c] = await db.all<{ n: number; uids: number; maxseq: number }>(
        'SELECT count(*) AS n, count(DISTINCT metadata.uid) AS uids, max(seq) AS maxseq FROM read_parquet($1)',
        [glob(s)],
      );
      assert.equal(c?.n, c?.uids, 'no duplicates');
      assert.equal(c?.n, c?.maxseq, 'no gaps');
      const { rows: head } = await s.ws.db.query<{ head_seq: number }>("SELECT head_seq FROM steward.audit_sources WHERE name = 'steward'");
      assert.equal(Number(head[0]?.head_seq), c?.n);
    } finally {
      db.close();
    }
    assert.equal((await s.call('GET', '/v1/audit/sources/steward/verify')).json.ok, true);
  });
});

describe('security lake: tamper evidence', () => {
  let s: TestServer;
  let file: string;
  let last: string;
  before(async () => {
    s = await startTestServer();
    await s.ws.services.audit?.service.stop(); // no background flush between a tamper and its check
    for (let i = 0; i < 12; i++) await s.call('POST', '/v1/users', { name: `u${i}` });
    await s.call('POST', '/v1/audit/flush', {});
    const db = await openDuckDb();
    try {
      // The first batch: the 12 changes (registering the table after it logs one more row, flushed as batch 2).
      file = (await db.all<{ file: string }>('SELECT file FROM glob($1) ORDER BY file LIMIT 1', [glob(s)]))[0]?.file ?? '';
      last = (await db.all<{ file: string }>('SELECT file FROM glob($1) ORDER BY file DESC LIMIT 1', [glob(s)]))[0]?.file ?? '';
    } finally {
      db.close();
    }
  });
  after(async () => s.close());

  /** Rewrites the first Parquet file with `select` (a SELECT over `t`), as an attacker with write access to the lake would. */
  async function rewrite(select: string, target = file): Promise<void> {
    const db = await openDuckDb();
    try {
      await db.run('CREATE TABLE t AS SELECT * FROM read_parquet($1)', [target]);
      await db.run(`COPY (${select}) TO '${target.replace(/'/g, "''")}.new' (FORMAT parquet)`);
    } finally {
      db.close();
    }
    await fs.rename(`${target}.new`, target);
  }

  /** Tampers, checks, and always puts the original file back. */
  async function tampered(select: string, check: () => Promise<void>, target = file): Promise<void> {
    const original = await fs.readFile(target);
    try {
      await rewrite(select, target);
      await check();
    } finally {
      await fs.writeFile(target, original);
    }
  }

  async function verify(): Promise<{ ok: boolean; problems: { kind: string; seq: number; message: string }[] }> {
    return (await s.call('GET', '/v1/audit/sources/steward/verify')).json;
  }

  it('reports the modified event', async () => {
    await tampered(`SELECT * REPLACE (CASE WHEN seq = 5 THEN struct_update(actor, invoked_by := 'mallory') ELSE actor END AS actor) FROM t ORDER BY seq`, async () => {
      const v = await verify();
      assert.equal(v.ok, false);
      assert.deepEqual(v.problems.map((p) => [p.kind, p.seq]), [['modified', 5]]);
    });
    assert.equal((await verify()).ok, true);
  });

  it('reports the deleted event', async () => {
    await tampered('SELECT * FROM t WHERE seq <> 7 ORDER BY seq', async () => {
      const v = await verify();
      assert.deepEqual(v.problems.map((p) => [p.kind, p.seq]), [['deleted', 7]]);
      assert.match(v.problems[0]?.message ?? '', /event 7 was deleted/);
    });
  });

  it('reports reordered events (positions swapped)', async () => {
    await tampered('SELECT * REPLACE (CASE seq WHEN 3 THEN 4 WHEN 4 THEN 3 ELSE seq END AS seq) FROM t ORDER BY seq', async () => {
      const v = await verify();
      assert.deepEqual(v.problems.map((p) => [p.kind, p.seq]), [['reordered', 3], ['reordered', 4]]);
    });
  });

  it('reports a deletion hidden by renumbering the rest', async () => {
    await tampered('SELECT * REPLACE (CASE WHEN seq > 6 THEN seq - 1 ELSE seq END AS seq) FROM t WHERE seq <> 6 ORDER BY seq', async () => {
      const v = await verify();
      assert.equal(v.ok, false);
      assert.deepEqual([v.problems[0]?.kind, v.problems[0]?.seq], ['deleted', 6]);
    });
  });

  it('reports a rewritten file even when the forger recomputed the event digests and links', async () => {
    // Threat: someone with write access to the lake edits an event and fixes its (non-secret) digest and the next link.
    const forged = `WITH x AS (SELECT * REPLACE (CASE WHEN seq = 5 THEN struct_update(actor, invoked_by := 'mallory') ELSE actor END AS actor) FROM t),
      y AS (SELECT * REPLACE (${ROW_HASH_SQL} AS hash) FROM x)
      SELECT * REPLACE (CASE WHEN seq = 6 THEN (SELECT hash FROM y WHERE seq = 5) ELSE prev_hash END AS prev_hash) FROM y ORDER BY seq`;
    await tampered(forged, async () => {
      const v = await verify();
      assert.equal(v.ok, false);
      assert.deepEqual(v.problems.map((p) => p.kind), ['modified']);
      assert.match(v.problems[0]?.message ?? '', /file region=local\/accountId=steward\/eventDay=\d{8}\/b000000000001\.parquet of batch 1 was rewritten/);
    });
    assert.equal((await verify()).ok, true);
  });

  it('reports a batch record altered in the state store', async () => {
    // Threat: someone with write access to the database alone edits a batch record to match a forged file.
    const { rows } = await s.ws.db.query<{ files: { sha256: string }[] }>("SELECT files FROM steward.audit_batches WHERE source = 'steward' AND batch = 1");
    const original = rows[0]?.files;
    await s.ws.db.query("UPDATE steward.audit_batches SET files = jsonb_set(files, '{0,sha256}', to_jsonb(repeat('0', 64))) WHERE source = 'steward' AND batch = 1");
    try {
      const v = await verify();
      assert.equal(v.ok, false);
      assert.ok(v.problems.some((p) => p.kind === 'modified' && /the record of batch 1 .* does not match the batch chain/.test(p.message)), JSON.stringify(v.problems));
    } finally {
      await s.ws.db.query("UPDATE steward.audit_batches SET files = $1::jsonb WHERE source = 'steward' AND batch = 1", [JSON.stringify(original)]);
    }
    assert.equal((await verify()).ok, true);
  });

  it('reports a truncated tail against the head kept in the state store', async () => {
    const { rows } = await s.ws.db.query<{ head_seq: number }>("SELECT head_seq FROM steward.audit_sources WHERE name = 'steward'");
    const head = Number(rows[0]?.head_seq);
    await tampered(`SELECT * FROM t WHERE seq < ${head} ORDER BY seq`, async () => {
      const v = await verify();
      assert.deepEqual(v.problems.map((p) => [p.kind, p.seq]), [['truncated', head]]);
    }, last);
  });
});
