/**
 * Servers sharing one PostgreSQL hear of each other's changes (LISTEN/NOTIFY,
 * src/store/change-feed.ts) and fall back to polling when they cannot listen.
 * Two servers in this process, each with its own workspace and caches.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { pollUntil } from '../support/poll.js';
import { openDb, type Db } from '../../src/store/db.js';
import { createStateStore } from '../../src/store/state-store.js';
import { createDecisionLog } from '../../src/store/decision-log.js';
import { createStateService, type StateService } from '../../src/workspace/state-service.js';
import { startChangeFeed, type ChangeFeed } from '../../src/store/change-feed.js';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { loadConfig } from '../../src/config.js';
import { openWorkspace } from '../../src/workspace/open.js';

let db: TestDatabase;
let a: TestServer;
let b: TestServer;

before(async () => {
  db = await createTestDatabase();
  a = await startTestServer({ databaseUrl: db.url });
  b = await startTestServer({ databaseUrl: db.url });
  const demo = await a.call('POST', '/v1/demo', {});
  assert.equal(demo.status, 200, JSON.stringify(demo.json));
  await pollUntil('both servers listening', async () => a.ws.feed.status().mode === 'listening' && b.ws.feed.status().mode === 'listening');
});

after(async () => {
  await a?.close();
  await b?.close();
  await db?.drop();
});

/** A state service of its own over `url`, told of changes by `feed`: a third server without HTTP. */
async function serviceWith(url: string, feed: ChangeFeed): Promise<{ state: StateService; store: Db }> {
  const store = await openDb({ home: '/nonexistent', databaseUrl: url });
  const stateStore = createStateStore(store);
  const log = createDecisionLog(store);
  const state = createStateService(
    { loadWorld: () => stateStore.loadWorld(), version: () => stateStore.version(), applyChanges: (c, o) => stateStore.applyChanges(c, o), appendDecisions: (e) => log.appendDecisions(e) },
    { feed },
  );
  await state.snapshot();
  return { state, store };
}

const revokeAndRegrant = async (s: TestServer, id: string): Promise<void> => {
  const g = await s.call('POST', '/v1/grants', { id, principal: 'user:bob', resource: { table: 'lake.claims.patient_claims', columns: ['amount'] }, permissions: ['SELECT'] });
  assert.equal(g.status, 201, JSON.stringify(g.json));
  assert.equal((await s.call('DELETE', `/v1/grants/${id}`)).status, 200);
};

describe('policy changes reach the other servers without a request', () => {
  it('rebuilds the other server engine within 1 s of a revocation, before any request asks', async () => {
    // threat: a revoked grant keeps deciding from a server's stale engine until traffic happens to refresh it
    // A state service with no scheduler or sync watcher of its own: only the feed can tell it.
    const feed = startChangeFeed({ databaseUrl: db.url, pollMs: 60_000 });
    const third = await serviceWith(db.url, feed);
    try {
      await pollUntil('listening', async () => feed.status().mode === 'listening');
      await revokeAndRegrant(a, 'feed-1');
      const committed = (await a.ws.services.state.snapshot()).version;
      const t0 = Date.now();
      const seen = await pollUntil('the listening service holds the new version', async () => third.state.cachedVersion() === committed, 10_000, 5);
      assert.ok(seen - t0 <= 1000, `rebuilt after ${seen - t0} ms`);
    } finally {
      await feed.close();
      await third.store.close();
    }
  });

  it('stops signing embed tokens with a key another server rotated', async () => {
    // threat: after a rotation (a leaked key), the other servers keep signing with the retired key for up to a minute
    const [ea, eb] = [a.ws.services.embed, b.ws.services.embed];
    assert.ok(ea !== undefined && eb !== undefined);
    const before = await eb.keys.current();
    await ea.keys.rotate();
    await pollUntil('b signs with a new key', async () => (await eb.keys.current()).kid !== before.kid, 1000);
  });

  it('falls back to polling while PostgreSQL refuses the listening connection, and still sees changes within about a second', async () => {
    // threat: a server whose notification connection cannot be opened never learns of a revocation
    const warnings: string[] = [];
    const feed = startChangeFeed({ databaseUrl: 'postgres://steward@127.0.0.1:1/nowhere', pollMs: 200, warn: (m) => warnings.push(m) });
    const third = await serviceWith(db.url, feed);
    try {
      assert.equal(feed.status().mode, 'polling');
      await revokeAndRegrant(a, 'feed-2');
      const committed = (await a.ws.services.state.snapshot()).version;
      await pollUntil('the polling service holds the new version', async () => third.state.cachedVersion() === committed, 5000);
      assert.equal(feed.status().mode, 'polling');
      assert.equal(feed.status().connects, 0);
    } finally {
      await feed.close();
      await third.store.close();
    }
  });

  it('reconnects after its listening connection is killed, says so once, and hears notifications again', async () => {
    // threat: a dropped LISTEN connection (PostgreSQL restart, failover, idle killer) silently ends change propagation
    const warnings: string[] = [];
    const feed = startChangeFeed({ databaseUrl: db.url, pollMs: 200, minBackoffMs: 50, warn: (m) => warnings.push(m) });
    const third = await serviceWith(db.url, feed);
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      await pollUntil('listening', async () => feed.status().mode === 'listening');
      const { rowCount } = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'steward-change-feed' AND datname = current_database()`);
      assert.ok((rowCount ?? 0) >= 1);
      await pollUntil('reconnected', async () => feed.status().connects >= 2 && feed.status().mode === 'listening', 20_000);
      assert.equal(warnings.filter((w) => w.includes('notifications lost')).length, 1, warnings.join('\n'));
      const heardBefore = feed.status().notifications;
      await revokeAndRegrant(a, 'feed-3');
      const committed = (await a.ws.services.state.snapshot()).version;
      await pollUntil('the reconnected service holds the new version', async () => third.state.cachedVersion() === committed, 5000);
      assert.ok(feed.status().notifications > heardBefore, 'the change arrived as a notification, not by polling');
    } finally {
      await admin.end();
      await feed.close();
      await third.store.close();
    }
  });

  it('sends access mail through the SMTP relay configured now, not the one this server read before another server replaced it', { timeout: 120_000 }, async () => {
    // threat: after a compromised relay is replaced, a server that read the old settings keeps handing notifications to it
    const relay = async (mails: string[]): Promise<SMTPServer> => {
      const srv = new SMTPServer({
        authOptional: true,
        disabledCommands: ['STARTTLS'],
        onData(stream, _session, cb) {
          let t = '';
          stream.on('data', (d: Buffer) => (t += d.toString()));
          stream.on('end', () => {
            mails.push(t);
            cb();
          });
        },
      });
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
      return srv;
    };
    const [oldMails, newMails]: [string[], string[]] = [[], []];
    const [oldRelay, newRelay] = [await relay(oldMails), await relay(newMails)];
    // Two servers of their own (no schedulers: `cli`), so only the one under test delivers.
    const own = await createTestDatabase();
    const homes = [await fs.mkdtemp(path.join(os.tmpdir(), 'steward-relay-')), await fs.mkdtemp(path.join(os.tmpdir(), 'steward-relay-'))];
    const [x, y] = [await openWorkspace(loadConfig({}, { home: homes[0] as string, databaseUrl: own.url }), { purpose: 'cli' }), await openWorkspace(loadConfig({}, { home: homes[1] as string, databaseUrl: own.url }), { purpose: 'cli' })];
    try {
      const [ax, ay] = [x.services.access, y.services.access];
      assert.ok(ax !== undefined && ay !== undefined);
      const admin = { principal: 'user:admin' as const, admin: true };
      const smtp = (s: SMTPServer) => ({ host: '127.0.0.1', port: (s.server.address() as AddressInfo).port, from: 'steward@example.test' });
      await ax.putConfig(admin, { notifications: { smtp: smtp(oldRelay) } });
      await ay.getConfig(admin); // y now holds the old relay in memory
      await ax.putConfig(admin, { notifications: { smtp: smtp(newRelay) } });
      // Due a second ago: the store's default (now(), in microseconds) can lie ahead of the lease's clock, which counts
      // milliseconds, when the lease comes within the same millisecond; the row would then wait for the next tick.
      await y.db.query(`INSERT INTO steward.access_outbox (request_id, channel, target, payload, next_attempt_at) VALUES ('req-relay', 'email', 'amy@example.test', '{"subject": "s", "text": "t"}'::jsonb, now() - interval '1 second')`);
      const delivered = await ay.deliverOutbox();
      const row = (await y.db.query<{ attempts: number; last_error: string | null }>(`SELECT attempts, last_error FROM steward.access_outbox WHERE request_id = 'req-relay'`)).rows[0];
      assert.equal(delivered, 1, `outbox row: ${JSON.stringify(row)}`);
      assert.equal(newMails.length, 1);
      assert.deepEqual(oldMails, []);
    } finally {
      await x.close();
      await y.close();
      await own.drop();
      for (const h of homes) await fs.rm(h, { recursive: true, force: true });
      await new Promise<void>((r) => oldRelay.close(() => r()));
      await new Promise<void>((r) => newRelay.close(() => r()));
    }
  });
});
