/**
 * Monitor delivery on PostgreSQL: a failed send is retried with backoff and
 * does not start the throttle window, failures are recorded (on the delivery,
 * in `monitor list`, in the decision log and so in the security lake), a
 * delivery is given up after its last attempt, and two servers running one
 * monitor at once send one notification. Real receivers: a local HTTP server
 * that fails on demand and a local SMTP server that refuses on demand.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { startTestServer, type TestServer } from '../support/server.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { steward } from '../support/cli.js';
import { openPostgres, type Db } from '../../src/store/db.js';
import { createMonitorService, MAX_DELIVERY_ATTEMPTS, type Monitor, type MonitorService } from '../../src/audit/monitors.js';

interface Hit {
  path: string;
  key: string | undefined;
}

describe('monitor delivery', () => {
  let pgdb: TestDatabase;
  let s: TestServer;
  let receiver: http.Server;
  let url: string;
  const hits: Hit[] = [];
  /** Path → how many more requests to answer 503. */
  const failNext = new Map<string, number>();
  let smtp: SMTPServer;
  let smtpPort: number;
  let refuseMail = 0;
  const mails: string[] = [];
  // The services under test run on a clock a day ahead, so the server's own scheduler (real time) never finds their work due.
  let clock = Date.now() + 86_400_000;
  let svc: MonitorService;
  const newService = (db: Db): MonitorService =>
    createMonitorService({
      db,
      lakeDir: s.ws.services.config.lakeDir,
      sources: async () => ['steward'],
      now: () => new Date(clock),
      tickMs: 0,
      log: (e) => s.ws.services.state.log([{ actor: 'system', ...e }]),
    });
  const env = (): NodeJS.ProcessEnv => ({ STEWARD_URL: s.url, STEWARD_TOKEN: s.adminToken });
  const listed = async (name: string): Promise<Monitor> => {
    const r = await steward(['monitor', 'list', '--json'], env());
    assert.equal(r.code, 0, r.stderr);
    const m = (JSON.parse(r.stdout) as { monitors: Monitor[] }).monitors.find((x) => x.name === name);
    assert.ok(m, r.stdout);
    return m;
  };
  const create = async (name: string, action: Record<string, unknown>): Promise<void> => {
    const r = await s.call('POST', '/v1/monitors', {
      name,
      sql: 'SELECT count(*) AS n FROM steward.security.steward',
      condition: { column: 'n', op: '>', value: 0 },
      throttleSeconds: 3600,
      action,
    });
    assert.equal(r.status, 201, JSON.stringify(r.json));
  };
  const hitsOf = (p: string): Hit[] => hits.filter((h) => h.path === p);

  before(async () => {
    pgdb = await createTestDatabase();
    s = await startTestServer({ databaseUrl: pgdb.url });
    await s.ws.services.audit?.monitors.stop();
    receiver = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const p = req.url ?? '';
        hits.push({ path: p, key: req.headers['idempotency-key'] as string | undefined });
        const left = failNext.get(p) ?? 0;
        if (left > 0) {
          failNext.set(p, left - 1);
          res.writeHead(503).end('down');
        } else res.writeHead(202).end('{}');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onRcptTo(_address, _session, cb) {
        if (refuseMail > 0) {
          refuseMail--;
          cb(Object.assign(new Error('mailbox unavailable'), { responseCode: 450 }));
        } else cb();
      },
      onData(stream, _session, cb) {
        let t = '';
        stream.on('data', (d: Buffer) => (t += d.toString()));
        stream.on('end', () => {
          mails.push(t);
          cb();
        });
      },
    });
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', () => r()));
    smtpPort = (smtp.server.address() as AddressInfo).port;
    assert.equal((await s.call('POST', '/v1/audit/flush', {})).status, 200);
    svc = newService(s.ws.db);
  });
  after(async () => {
    await s.close();
    await pgdb.drop();
    await new Promise<void>((r) => receiver.close(() => r()));
    await new Promise<void>((r) => smtp.close(() => r()));
  });

  // Threat: the receiver is down for a few seconds when an attack starts; the failed send used to start
  // the throttle window, so the SOC heard nothing for an hour (and no retry ever came).
  it('a failed delivery does not use up the throttle window: it is retried with backoff until it gets through', async () => {
    failNext.set('/flaky', 2);
    await create('flaky', { kind: 'webhook', url: `${url}/flaky` });
    const first = await svc.run('flaky');
    assert.equal(first.triggered, true);
    assert.equal(first.throttled, false);
    assert.equal(first.sent, false);
    assert.match(first.error ?? '', /delivery failed: .*503/);
    assert.equal(hitsOf('/flaky').length, 1);

    let m = await listed('flaky');
    assert.equal(m.lastFiredAt, undefined, 'a failed send is not a firing');
    assert.equal(m.lastDelivery?.status, 'retrying');
    assert.equal(m.lastDelivery?.attempts, 1);
    assert.match(m.lastDelivery?.lastError ?? '', /503/);
    const human = await steward(['monitor', 'list'], env());
    assert.match(human.stdout, /^flaky .*retrying\s+1\s+\S+\s+.*503/m);

    // Still triggered on the next run: not throttled, and no second notification is queued beside the open one.
    const again = await svc.run('flaky');
    assert.equal(again.throttled, false);
    assert.equal(again.pending, true);
    assert.equal(hitsOf('/flaky').length, 1);
    // Backoff: nothing before the first second is up, then 1 s, then 2 s.
    await svc.deliverDue();
    assert.equal(hitsOf('/flaky').length, 1);
    clock += 1000;
    await svc.deliverDue();
    assert.equal(hitsOf('/flaky').length, 2);
    assert.equal((await listed('flaky')).lastDelivery?.attempts, 2);
    clock += 2000;
    await svc.deliverDue();
    assert.equal(hitsOf('/flaky').length, 3);
    const keys = new Set(hitsOf('/flaky').map((h) => h.key));
    assert.equal(keys.size, 1, 'every attempt carries the same idempotency key');
    assert.match([...keys][0] ?? '', /^steward-monitor-flaky-\d+$/);

    m = await listed('flaky');
    assert.equal(m.lastDelivery?.status, 'delivered');
    assert.equal(m.lastDelivery?.attempts, 3);
    assert.equal(m.lastFiredAt, new Date(clock).toISOString(), 'the throttle window starts at the delivery');
    const later = await svc.run('flaky');
    assert.equal(later.throttled, true);
    await svc.deliverDue();
    assert.equal(hitsOf('/flaky').length, 3);
  });

  // Threat: failed deliveries leave no trace an auditor can find, so a silenced alert looks like a quiet night.
  it('records each failed attempt in the decision log and the security lake', async () => {
    const { rows } = await s.ws.db.query<{ action: string; result: string; reason: string }>(
      "SELECT action, result, reason FROM steward.decision_log WHERE resource = 'flaky' AND action LIKE 'monitor.%' AND action <> 'monitor.create' ORDER BY id",
    );
    assert.deepEqual(
      rows.map((r) => [r.action, r.result]),
      [
        ['monitor.deliver', 'error'],
        ['monitor.deliver', 'error'],
        ['monitor.fire', 'ok'],
      ],
    );
    assert.match(rows[0]?.reason ?? '', /attempt 1 of 12 failed \(retry in 1s\): .*503/);
    assert.equal((await s.call('POST', '/v1/audit/flush', {})).status, 200);
    const q = await s.call('POST', '/v1/audit/query', {
      sql: "SELECT count(*) AS n FROM steward.security.steward WHERE api.operation = 'monitor.deliver' AND status_id = 2",
    });
    assert.equal(q.status, 200, JSON.stringify(q.json));
    assert.equal(Number(q.json.rows[0].n), 2);
  });

  // Threat: a receiver that stays down makes the monitor retry forever, or give up silently and never fire again.
  it('gives up after the last attempt, shows it, and the next firing starts a new delivery', async () => {
    failNext.set('/down', MAX_DELIVERY_ATTEMPTS);
    await create('down', { kind: 'webhook', url: `${url}/down` });
    await svc.run('down');
    for (let i = 1; i < MAX_DELIVERY_ATTEMPTS; i++) {
      clock += 600_000;
      await svc.deliverDue();
    }
    assert.equal(hitsOf('/down').length, MAX_DELIVERY_ATTEMPTS);
    const m = await listed('down');
    assert.equal(m.lastDelivery?.status, 'failed');
    assert.equal(m.lastDelivery?.attempts, MAX_DELIVERY_ATTEMPTS);
    assert.equal(m.lastDelivery?.nextAttemptAt, undefined);
    clock += 600_000;
    await svc.deliverDue();
    assert.equal(hitsOf('/down').length, MAX_DELIVERY_ATTEMPTS, 'a given-up delivery is not sent again');
    const next = await svc.run('down');
    assert.equal(next.throttled, false);
    assert.equal(next.sent, true, next.error);
    const n = await listed('down');
    assert.equal(n.lastDelivery?.status, 'delivered');
    assert.notEqual(n.lastDelivery?.id, m.lastDelivery?.id);
  });

  // Threat: the same retry path must hold for email: a refused SMTP send used to burn the window too.
  it('retries an email the SMTP server refused, through the same path', async () => {
    refuseMail = 1;
    await create('mail', { kind: 'email', to: ['soc@example.com'], from: 'steward@example.com', smtp: { host: '127.0.0.1', port: smtpPort } });
    const first = await svc.run('mail');
    assert.equal(first.sent, false);
    assert.match(first.error ?? '', /mailbox unavailable/);
    assert.equal(mails.length, 0);
    assert.equal((await listed('mail')).lastDelivery?.status, 'retrying');
    clock += 1000;
    await svc.deliverDue();
    assert.equal(mails.length, 1);
    assert.match(mails[0] ?? '', /Message-ID: <steward-monitor-mail-\d+@steward>/i);
    assert.equal((await listed('mail')).lastDelivery?.status, 'delivered');
  });

  // Threat: with several servers (issue #16) each one's scheduler runs the same monitor; delivery state
  // kept in memory would page the on-call once per server.
  it('two servers running one monitor at once queue and send one notification', async () => {
    await create('twice', { kind: 'webhook', url: `${url}/twice` });
    const otherDb = await openPostgres(pgdb.url);
    try {
      const other = newService(otherDb);
      const results = await Promise.all([svc.run('twice'), other.run('twice'), svc.deliverDue(), other.deliverDue()]);
      assert.equal(results[0].triggered && results[1].triggered, true);
      await Promise.all([svc.deliverDue(), other.deliverDue()]);
      assert.equal(hitsOf('/twice').length, 1);
      const { rows } = await s.ws.db.query<{ n: number }>("SELECT count(*)::int AS n FROM steward.audit_monitor_deliveries WHERE monitor = 'twice'");
      assert.equal(Number(rows[0]?.n), 1);
    } finally {
      await otherDb.close();
    }
  });
});
