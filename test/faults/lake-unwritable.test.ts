/**
 * Fault: the security lake's disk becomes unwritable under a running
 * `steward serve` (the built binary) with authorize traffic, then writable
 * again. Decisions are still answered; their events wait in the outbox while
 * the background flush fails; once the lake is back the background flush
 * (not a manual one) writes them, each once, and the chain verifies.
 *
 * Tests run as root, for whom chmod changes nothing: the lake's `security`
 * folder is moved aside and a file put in its place, which fails every write
 * under it (ENOTDIR) for root too.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { serveHarness, type ServeHarness, type ServeProcess } from '../support/serve-process.js';
import { pollUntil } from '../support/poll.js';
import { openDuckDb } from '../../src/lake/duckdb.js';
import { startAuthorizeLoad } from './load.js';

interface SourceJson {
  readonly name: string;
  readonly events: number;
  readonly backlog: number;
}

describe('fault: the security lake unwritable under load, then writable again', { timeout: 240_000 }, () => {
  let home: string;
  let h: ServeHarness;
  let server: ServeProcess;
  let stderr = '';

  before(async () => {
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-fault-lake-'));
    h = serveHarness(() => ({ STEWARD_HOME: home }));
    server = await h.start();
    server.child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  });

  after(async () => {
    await h?.kill9();
    if (home !== undefined) await fs.rm(home, { recursive: true, force: true });
  });

  const steward = async (): Promise<SourceJson> => {
    const r = await h.call('GET', '/v1/audit/sources');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const s = (r.json.sources as SourceJson[]).find((x) => x.name === 'steward');
    assert.ok(s !== undefined);
    return s;
  };

  it('keeps the events in the outbox while the lake cannot be written and flushes them by itself once it can', async () => {
    // threat: a full or read-only disk silently drops audit events, wedges the flusher for good, or writes a batch twice
    const security = path.join(home, 'lake', 'security');
    const load = startAuthorizeLoad({ url: server.url, token: h.token, workers: 3, hangMs: 20_000, prefix: 'u' });
    const okSince = (n: number): (() => Promise<boolean>) => {
      const base = load.count(200);
      return async () => load.count(200) >= base + n;
    };
    try {
      await pollUntil('a first background flush', async () => (await steward()).events > 0, 60_000);

      await fs.rename(security, `${security}.moved`);
      await fs.writeFile(security, 'a file where the lake folder should be');
      await pollUntil('a background flush failing on the unwritable lake', async () => /audit flush failed: cannot write the security lake/.test(stderr), 60_000);
      await pollUntil('decisions while the lake is unwritable', okSince(100), 60_000);
      const waiting = await steward();
      assert.ok(waiting.backlog > 0, `events wait in the outbox: ${JSON.stringify(waiting)}`);

      await fs.rm(security);
      await fs.rename(`${security}.moved`, security);
      await pollUntil('decisions after the lake is back', okSince(50), 60_000);
    } finally {
      await load.stop();
    }
    assert.deepEqual(load.outcomes.filter((o) => o.status !== 200).slice(0, 5), [], 'every decision was answered while the lake was away');
    const acknowledged = load.outcomes.map((o) => o.resource);
    const glob = path.join(security, 'ext', 'steward', '**', '*.parquet');
    const db = await openDuckDb();
    try {
      // The background flush (every 5 s) writes them by itself: nothing here flushes.
      let missing: string[] = acknowledged;
      await pollUntil(
        'every acknowledged decision in the lake',
        async () => {
          const rows = await db.all<{ r: string }>("SELECT DISTINCT resources[1].uid AS r FROM read_parquet($1) WHERE api.operation = 'authorize.SELECT'", [glob]);
          const inLake = new Set(rows.map((x) => x.r));
          missing = acknowledged.filter((r) => !inLake.has(r));
          return missing.length === 0;
        },
        60_000,
        500,
      ).catch((e: unknown) => assert.fail(`${(e as Error).message}: ${missing.length} of ${acknowledged.length} missing, e.g. ${missing.slice(0, 3).join(', ')}`));
      const [c] = await db.all<{ n: number; uids: number; maxseq: number }>('SELECT count(*) AS n, count(DISTINCT metadata.uid) AS uids, max(seq) AS maxseq FROM read_parquet($1)', [glob]);
      assert.equal(c?.n, c?.uids, 'no event written twice');
      assert.equal(c?.n, c?.maxseq, 'no gap in the sequence');
    } finally {
      db.close();
    }
    const verify = await h.call('GET', '/v1/audit/sources/steward/verify');
    assert.equal(verify.json.ok, true, JSON.stringify(verify.json));
    assert.equal(server.child.exitCode, null, 'the server is still running');
  });
});
