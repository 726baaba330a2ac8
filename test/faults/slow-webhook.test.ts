/**
 * Fault: a monitor's webhook receiver accepts the connection and never
 * answers. A running `steward serve` keeps deciding, and its other monitors
 * keep delivering, while that request hangs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { serveHarness, type ServeHarness, type ServeProcess } from '../support/serve-process.js';
import { pollUntil } from '../support/poll.js';
import { startAuthorizeLoad } from './load.js';

interface Receiver {
  readonly url: string;
  /** Requests received and not answered yet (a stalling receiver's are never answered). */
  open(): number;
  readonly arrivals: { readonly stalledOpen: number }[];
  close(): Promise<void>;
}

/** A local webhook receiver; `stall` takes requests and never answers them. */
async function startReceiver(stall: boolean, stalledOpen: () => number = () => 0): Promise<Receiver> {
  let open = 0;
  const arrivals: { stalledOpen: number }[] = [];
  const server = http.createServer((req, res) => {
    open += 1;
    res.on('close', () => (open -= 1));
    arrivals.push({ stalledOpen: stalledOpen() });
    req.resume();
    if (!stall) req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    open: () => open,
    arrivals,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('fault: a webhook receiver that never answers', { timeout: 180_000 }, () => {
  let home: string;
  let h: ServeHarness;
  let server: ServeProcess;
  let stalled: Receiver;
  let healthy: Receiver;

  before(async () => {
    stalled = await startReceiver(true);
    healthy = await startReceiver(false, () => stalled.open());
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-fault-hook-'));
    h = serveHarness(() => ({ STEWARD_HOME: home }));
    server = await h.start();
  });

  after(async () => {
    await h?.kill9();
    await stalled?.close();
    await healthy?.close();
    if (home !== undefined) await fs.rm(home, { recursive: true, force: true });
  });

  it('keeps deciding and delivering the other monitors while one receiver holds its request open', async () => {
    // threat: one slow or hostile receiver (a monitor's webhook) stalls every other alert, or the server itself
    for (let i = 0; i < 3; i++) assert.equal((await h.call('POST', '/v1/authorize', { principal: 'user:admin', action: 'SELECT', resource: `lake.hook.t${i}` })).status, 200);
    assert.equal((await h.call('POST', '/v1/audit/flush', {})).status, 200);
    // The stalled monitor sorts first: a scheduler that works through monitors in order meets it first.
    for (const [name, receiver] of [
      ['a-stalled', stalled],
      ['b-healthy', healthy],
    ] as const) {
      const created = await h.call('POST', '/v1/monitors', {
        name,
        sql: 'SELECT count(*) AS n FROM steward.security.steward',
        scheduleSeconds: 1,
        throttleSeconds: 0,
        action: { kind: 'webhook', url: receiver.url },
      });
      assert.equal(created.status, 201, JSON.stringify(created.json));
    }
    const load = startAuthorizeLoad({ url: server.url, token: h.token, workers: 2, hangMs: 20_000, prefix: 'h' });
    try {
      await pollUntil('the stalled receiver holding a request', async () => stalled.open() > 0, 60_000);
      await pollUntil(
        'two deliveries of the healthy monitor while the stalled request is open',
        async () => healthy.arrivals.filter((a) => a.stalledOpen > 0).length >= 2,
        60_000,
      );
    } finally {
      await load.stop();
    }
    const other = load.outcomes.filter((o) => o.status !== 200);
    assert.deepEqual(other.slice(0, 5), [], 'every decision during the stall was answered');
    assert.ok(load.count(200) > 0);
    assert.equal(server.child.exitCode, null, 'the server is still running');
  });
});
