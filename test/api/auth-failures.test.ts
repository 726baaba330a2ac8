/**
 * Failed authentications: aggregated per source address and interval (one
 * decision-log row with a count, not one per request) and rate-limited per
 * source address with 429 and Retry-After, in bounded memory.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { loadConfig } from '../../src/config.js';
import { openWorkspace, type Workspace } from '../../src/workspace/open.js';
import { createAuthFailureGuard, OVERFLOW_SOURCE, sourceKey, type AuthFailureGuard } from '../../src/server/auth-failures.js';
import { clientAddressOf, parseTrustedProxies, type TrustedProxies } from '../../src/server/client-address.js';
import type { DecisionLogEntry } from '../../src/store/decision-log.js';
import { seedMigratedStore } from '../support/migrated-store.js';

const LIMIT = 20;
const FORGED = 'stw_0000000000000000_not-a-real-token-not-a-real-token-not-a-rea';

interface Answer {
  status: number;
  retryAfter: string | undefined;
  body: string;
}

/** A GET of /v1/me from a chosen loopback address (all of 127/8 is local on Linux), so two "clients" can be told apart. */
const getFrom = (url: string, localAddress: string, token: string): Promise<Answer> => requestFrom(`${url}/v1/me`, localAddress, 'GET', { authorization: `Bearer ${token}` });

function requestFrom(target: string, localAddress: string, method: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(target, { method, localAddress, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A server on a fresh workspace whose failed-authentication guard has one long window (the test decides when rows are written). */
async function guardedServer(prefix: string, app: { trustedProxies?: TrustedProxies } = {}): Promise<{ ws: Workspace; guard: AuthFailureGuard; url: string; adminToken: string; close(): Promise<void> }> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  await seedMigratedStore(home);
  let ws: Workspace | undefined;
  const guard = createAuthFailureGuard({ log: (entries) => (ws as Workspace).services.state.log(entries), limit: LIMIT, intervalMs: 3_600_000 });
  ws = await openWorkspace(loadConfig({}, { home }), { purpose: 'server', app: { authFailures: guard, ...app } });
  const adminToken = (await ws.services.tokens.createToken({ name: 'admin', principal: 'user:admin', role: 'admin' })).token;
  const server = serve({ fetch: ws.app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const opened = ws;
  return {
    ws: opened,
    guard,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    adminToken,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await opened.close();
      await fs.rm(home, { recursive: true, force: true });
    },
  };
}

describe('failed authentications over HTTP', () => {
  let ws: Workspace;
  let guard: AuthFailureGuard;
  let url: string;
  let adminToken: string;
  let close: () => Promise<void>;

  before(async () => {
    ({ ws, guard, url, adminToken, close } = await guardedServer('steward-authfail-'));
  });
  after(() => close());

  const denials = async (): Promise<{ reason: string; details: Record<string, unknown> }[]> => {
    const { rows } = await ws.db.query<{ reason: string; details: Record<string, unknown> }>(
      "SELECT reason, details FROM steward.decision_log WHERE action = 'auth.token' AND result = 'deny' ORDER BY id",
    );
    return rows;
  };

  it('1,000 bad-token requests are one counted row and 429 after the limit, while a good token from another address still works', async () => {
    // Threat: an attacker floods bad tokens to fill the decision log (one row each) and load the token store.
    const statuses = new Map<number, number>();
    let retryAfter: string | undefined;
    for (let i = 0; i < 1000; i++) {
      const r = await getFrom(url, '127.0.0.1', FORGED);
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      if (i === LIMIT) {
        assert.equal(r.status, 429, r.body);
        assert.match(r.body, /STEWARD_E_RATE_LIMITED/);
        retryAfter = r.retryAfter;
      }
    }
    assert.deepEqual(Object.fromEntries(statuses), { 401: LIMIT, 429: 1000 - LIMIT });
    assert.ok(retryAfter !== undefined && Number(retryAfter) >= 1 && Number(retryAfter) <= 3600, `Retry-After ${retryAfter}`);

    // No row per request while the interval is open.
    assert.equal((await denials()).length, 0);

    // Another address: its own budget, and a good token is not caught by the first address's limit.
    const good = await getFrom(url, '127.0.0.2', adminToken);
    assert.equal(good.status, 200, good.body);
    assert.equal((await getFrom(url, '127.0.0.2', FORGED)).status, 401);
    // The limited address stays limited, good token or not: a flood must not buy store reads.
    assert.equal((await getFrom(url, '127.0.0.1', adminToken)).status, 429);

    await guard.flush({ all: true });
    const rows = await denials();
    assert.equal(rows.length, 2, JSON.stringify(rows));
    const [first, second] = rows.map((r) => r.details);
    assert.equal(first?.['source'], '127.0.0.1');
    assert.equal(first?.['ip'], '127.0.0.1');
    assert.equal(first?.['count'], 1001);
    assert.equal(first?.['failed'], LIMIT);
    assert.equal(first?.['rateLimited'], 1001 - LIMIT);
    assert.equal(second?.['source'], '127.0.0.2');
    assert.equal(second?.['count'], 1);
    assert.match(rows[0]?.reason ?? '', /^1001 failed authentication\(s\) from 127\.0\.0\.1 in 3600 s/);
  });

  it('a flood of bad ingest keys is one counted row per source address, and 429 after the limit', async () => {
    // Threat: the public ingest endpoint is the other door an anonymous caller can knock on without limit.
    const admin = { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' };
    assert.equal((await requestFrom(`${url}/v1/audit/sources`, '127.0.0.4', 'POST', admin, JSON.stringify({ name: 'trail', mapping: 'cloudtrail' }))).status, 201);
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) {
      const r = await requestFrom(`${url}/v1/audit/ingest/trail`, '127.0.0.3', 'POST', { authorization: 'Bearer sik_forged', 'content-type': 'application/x-ndjson' }, '{}\n');
      statuses.push(r.status);
    }
    assert.deepEqual(statuses, [...Array<number>(LIMIT).fill(401), ...Array<number>(50 - LIMIT).fill(429)]);
    const before = await denials();
    await guard.flush({ all: true });
    const { rows } = await ws.db.query<{ resource: string; details: Record<string, unknown> }>(
      "SELECT resource, details FROM steward.decision_log WHERE action = 'auth.ingest-key' AND result = 'deny'",
    );
    assert.equal(rows.length, 1, JSON.stringify(rows));
    assert.equal(rows[0]?.resource, 'trail');
    assert.deepEqual([rows[0]?.details['source'], rows[0]?.details['count'], rows[0]?.details['rateLimited']], ['127.0.0.3', 50, 50 - LIMIT]);
    assert.equal((await denials()).length, before.length);
  });
});

describe('the failed-authentication guard', () => {
  const collector = (): { entries: DecisionLogEntry[]; log: (e: DecisionLogEntry[]) => Promise<void> } => {
    const entries: DecisionLogEntry[] = [];
    return { entries, log: async (e) => void entries.push(...e) };
  };

  it('keeps bounded memory and the limit when an attacker rotates source addresses', async () => {
    // Threat: one failure from each of 100,000 addresses grows a per-address map without limit, and each fresh address gets a fresh budget.
    const c = collector();
    let t = 0;
    const guard = createAuthFailureGuard({ log: c.log, limit: 5, maxSources: 1000, intervalMs: 60_000, now: () => t });
    let refused = 0;
    for (let i = 0; i < 100_000; i++) {
      const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      if (guard.check(address) !== null) refused++;
      else guard.failed(address, 'invalid token');
      assert.ok(guard.size <= 1001);
    }
    assert.equal(guard.size, 1001);
    // Addresses beyond the tracked ones share one budget: nearly all of them were refused.
    assert.equal(refused, 100_000 - 1000 - 5);
    t = 60_000; // the window ends
    await guard.flush();
    assert.equal(c.entries.length, 1001);
    const overflow = c.entries.find((e) => e.details?.['source'] === OVERFLOW_SOURCE);
    assert.equal(overflow?.details?.['count'], 99_000);
    assert.equal(c.entries.reduce((n, e) => n + Number(e.details?.['count']), 0), 100_000);
    assert.equal(guard.size, 0);
    await guard.close();
  });

  it('counts an IPv6 /64 as one source, so rotating within it gains nothing', async () => {
    // Threat: one subscriber holds 2^64 IPv6 addresses.
    const c = collector();
    const guard = createAuthFailureGuard({ log: c.log, limit: 3, intervalMs: 60_000, now: () => 0 });
    for (let i = 0; i < 3; i++) guard.failed(`2001:db8:1:2::${i + 1}`, 'invalid token');
    assert.notEqual(guard.check('2001:db8:1:2:ffff:ffff:ffff:ffff'), null);
    assert.equal(guard.check('2001:db8:1:3::1'), null);
    assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(sourceKey('2001:0db8:0001:0002::1'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('::1'), '0:0:0:0::/64');
    await guard.close();
    assert.equal(c.entries.length, 1);
    assert.equal(c.entries[0]?.details?.['count'], 4);
  });

  it('lifts the limit when the interval ends and says how long to wait until then', async () => {
    // Failure mode: a limit that never lifts would lock an address out for good.
    let t = 10_000;
    const guard = createAuthFailureGuard({ log: collector().log, limit: 1, intervalMs: 60_000, now: () => t });
    guard.failed('192.0.2.1', 'invalid token');
    assert.equal(guard.check('192.0.2.1'), 50);
    t = 60_000;
    assert.equal(guard.check('192.0.2.1'), null);
    await guard.close();
  });
});

describe('behind a reverse proxy (STEWARD_TRUSTED_PROXIES)', () => {
  const PROXY = '127.0.0.9';
  const OTHER = '127.0.0.10';
  let url: string;
  let adminToken: string;
  let close: () => Promise<void>;
  const via = (localAddress: string, forwarded: string | undefined, token: string): Promise<Answer> =>
    requestFrom(`${url}/v1/me`, localAddress, 'GET', { authorization: `Bearer ${token}`, ...(forwarded === undefined ? {} : { 'x-forwarded-for': forwarded }) });

  before(async () => {
    ({ url, adminToken, close } = await guardedServer('steward-authfail-proxy-', { trustedProxies: parseTrustedProxies([PROXY]) }));
  });
  after(() => close());

  it("one client's failures through the proxy do not lock out another client of the same proxy", async () => {
    // Threat: behind a proxy every request has the proxy's address, so one attacker's bad tokens would lock out every user.
    for (let i = 0; i < LIMIT; i++) assert.equal((await via(PROXY, '203.0.113.5', FORGED)).status, 401);
    assert.equal((await via(PROXY, '203.0.113.5', FORGED)).status, 429, 'the attacker is limited');
    assert.equal((await via(PROXY, '203.0.113.5, 203.0.113.6', adminToken)).status, 200, 'another client of the proxy still gets in');
    assert.equal((await via(PROXY, '198.51.100.7', FORGED)).status, 401, "and is counted apart from the attacker");
  });

  it('an address the client writes left of the proxy, or a header from an untrusted peer, is ignored', async () => {
    // Threat: an attacker picking the address its failures are counted against, to dodge the limit or lock out a victim.
    for (let i = 0; i < LIMIT; i++) assert.equal((await via(OTHER, `192.0.2.${i}`, FORGED)).status, 401);
    assert.equal((await via(OTHER, '192.0.2.200', FORGED)).status, 429, 'counted against the untrusted peer whatever it claims');
    assert.equal((await via(PROXY, '192.0.2.99, 198.51.100.8', adminToken)).status, 200, 'a spoofed left-most entry does not make 192.0.2.99 pay');
    assert.equal((await via(PROXY, '192.0.2.99, 198.51.100.8', FORGED)).status, 401);
  });
});

describe('the client address', () => {
  const trusted = parseTrustedProxies(['10.0.0.1', '10.0.0.2', '::1']);
  it('takes the right-most forwarded address that is not a trusted proxy', () => {
    assert.equal(clientAddressOf('10.0.0.1', '1.1.1.1, 2.2.2.2, 10.0.0.2', trusted), '2.2.2.2');
    assert.equal(clientAddressOf('::ffff:10.0.0.1', '2.2.2.2', trusted), '2.2.2.2');
    assert.equal(clientAddressOf('::1', '2001:db8::1', trusted), '2001:db8::1');
  });
  it('keeps the peer when it is not trusted, the header is missing or junk, or every hop is a proxy', () => {
    assert.equal(clientAddressOf('9.9.9.9', '2.2.2.2', trusted), '9.9.9.9');
    assert.equal(clientAddressOf('10.0.0.1', undefined, trusted), '10.0.0.1');
    assert.equal(clientAddressOf('10.0.0.1', 'not-an-address', trusted), '10.0.0.1');
    assert.equal(clientAddressOf('10.0.0.1', '10.0.0.2', trusted), '10.0.0.1');
    assert.equal(clientAddressOf('10.0.0.1', `${'1.1.1.1,'.repeat(400)}2.2.2.2`, trusted), '10.0.0.1');
    assert.equal(clientAddressOf('10.0.0.1', '2.2.2.2', parseTrustedProxies([])), '10.0.0.1');
  });
  it('refuses a range or a name in STEWARD_TRUSTED_PROXIES, naming the variable', () => {
    assert.throws(() => parseTrustedProxies(['10.0.0.0/8']), /STEWARD_TRUSTED_PROXIES: `10\.0\.0\.0\/8` is not an IP address/);
    assert.throws(() => parseTrustedProxies(['proxy.internal']), /STEWARD_TRUSTED_PROXIES/);
  });
});
