/**
 * Monitors firing against local receivers (HTTP for webhook and PagerDuty,
 * SMTP for email), throttling, and the refusal of SQL that does not parse or
 * reads anything but the security tables.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { startTestServer, type TestServer } from '../support/server.js';
import { createMonitorService } from '../../src/audit/monitors.js';

interface Received {
  path: string;
  body: any;
}

const REFUSED = `SELECT actor.user.uid AS principal, count(*) AS refused
  FROM steward.security.steward
  WHERE class_uid = 6003 AND status_id = 2 AND api.operation LIKE 'authorize.%'
    AND time >= epoch_ms(now()) - 5 * 60 * 1000
  GROUP BY 1 HAVING count(*) > 20`;

describe('monitors', () => {
  let s: TestServer;
  let receiver: http.Server;
  let url: string;
  const received: Received[] = [];
  let smtp: SMTPServer;
  let smtpPort: number;
  const mails: string[] = [];

  before(async () => {
    s = await startTestServer();
    await s.ws.services.audit?.service.stop();
    receiver = http.createServer((req, res) => {
      let text = '';
      req.on('data', (d: Buffer) => (text += d.toString()));
      req.on('end', () => {
        received.push({ path: req.url ?? '', body: JSON.parse(text) });
        res.writeHead(202).end('{}');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    smtp = new SMTPServer({
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
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', () => r()));
    smtpPort = (smtp.server.address() as AddressInfo).port;
  });
  after(async () => {
    await s.close();
    await new Promise<void>((r) => receiver.close(() => r()));
    await new Promise<void>((r) => smtp.close(() => r()));
  });

  it('refuses monitor SQL that does not parse, is not a SELECT, or reads outside the security tables', async () => {
    const create = (sql: string) =>
      s.call('POST', '/v1/monitors', { name: 'bad', sql, action: { kind: 'webhook', url: `${url}/hook` } });
    let r = await create('SELEC nonsense FROM');
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'STEWARD_E_PARSE');
    r = await create('DELETE FROM steward.security.steward');
    assert.equal(r.json.error.code, 'STEWARD_E_PARSE');
    // Threat: a monitor used to read governed data (or local files) around the policy.
    for (const sql of [
      'SELECT * FROM lake.claims.patient_claims',
      "SELECT * FROM read_csv('/etc/passwd')",
      'SELECT * FROM steward.security.steward s JOIN claims.patient_claims c ON true',
      "SELECT * FROM steward.security.steward WHERE seq IN (SELECT 1 FROM read_parquet('/tmp/x.parquet'))",
      'SELECT * FROM steward.security.no_such_source',
      "SELECT getenv('HOME') FROM steward.security.steward",
      "SELECT current_setting('allowed_directories') FROM steward.security.steward",
    ]) {
      r = await create(sql);
      assert.equal(r.status, 403, sql);
      assert.equal(r.json.error.code, 'STEWARD_E_FORBIDDEN', sql);
    }
    const ok = await create('WITH x AS (SELECT * FROM steward.security.steward) SELECT count(*) FROM x');
    assert.equal(ok.status, 201, JSON.stringify(ok.json));
    assert.equal((await s.call('DELETE', '/v1/monitors/bad')).status, 200);
  });

  it('fires a PagerDuty Events API v2 body when one principal has more than 20 refused queries in 5 minutes, then throttles', async () => {
    const r = await s.call('POST', '/v1/monitors', {
      name: 'refused-queries',
      description: 'more than 20 refused queries by one principal in 5 minutes',
      sql: REFUSED,
      scheduleSeconds: 60,
      severity: 'critical',
      throttleSeconds: 3600,
      action: { kind: 'pagerduty', url: `${url}/v2/enqueue`, routingKey: 'R0UT1NGKEY0000000000000000000000' },
    });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.ok(!JSON.stringify(r.json).includes('R0UT1NGKEY0000000000000000000000'), 'the routing key is not echoed');

    const monitors = s.ws.services.audit?.monitors;
    assert.ok(monitors);
    // 20 refusals: not yet.
    for (let i = 0; i < 20; i++) await s.call('POST', '/v1/authorize', { principal: 'erin', action: 'SELECT', resource: 'lake.finance.revenue' });
    await s.call('POST', '/v1/audit/flush', {});
    let run = await monitors.run('refused-queries');
    assert.equal(run.triggered, false);
    assert.equal(received.length, 0);
    // The 21st fires.
    await s.call('POST', '/v1/authorize', { principal: 'erin', action: 'SELECT', resource: 'lake.finance.revenue' });
    await s.call('POST', '/v1/audit/flush', {});
    run = await monitors.run('refused-queries');
    assert.equal(run.triggered, true);
    assert.equal(run.sent, true, run.error);
    assert.equal(received.length, 1);
    const pd = received[0];
    assert.equal(pd?.path, '/v2/enqueue');
    assert.equal(pd?.body.routing_key, 'R0UT1NGKEY0000000000000000000000');
    assert.equal(pd?.body.event_action, 'trigger');
    assert.equal(pd?.body.payload.severity, 'critical');
    assert.equal(pd?.body.payload.source, 'steward:monitor:refused-queries');
    assert.match(pd?.body.payload.summary, /refused-queries: 1 row/);
    assert.equal(pd?.body.payload.custom_details.rows[0].principal, 'user:erin');
    // Still triggered, but throttled: nothing sent.
    run = await monitors.run('refused-queries');
    assert.equal(run.triggered, true);
    assert.equal(run.throttled, true);
    assert.equal(received.length, 1);
    // The scheduler does not run it again before its schedule is due.
    assert.deepEqual(await monitors.runDue(), []);
    const listed = await s.call('GET', '/v1/monitors');
    assert.equal(listed.json.monitors[0].lastResult.throttled, true);
  });

  it('fires again once the throttle window has passed (clock moved forward)', async () => {
    const now = Date.now() + 2 * 3600_000;
    const later = createMonitorService({
      db: s.ws.db,
      lakeDir: s.ws.services.config.lakeDir,
      sources: async () => ['steward'],
      now: () => new Date(now),
      tickMs: 0,
    });
    // Two hours on, the schedule is due and the throttle window is over. (The SQL's
    // own five-minute window uses the database clock, so the refusals still count.)
    const due = await later.runDue();
    assert.deepEqual(due, ['refused-queries']);
    assert.equal(received.length, 2);
    assert.equal(received[1]?.path, '/v2/enqueue');
  });

  it('a webhook test notification, and an email through SMTP', async () => {
    await s.call('POST', '/v1/monitors', { name: 'any-auth-failure', sql: 'SELECT * FROM security.steward WHERE class_uid = 3002', throttleSeconds: 0, action: { kind: 'webhook', url: `${url}/hook` } });
    const t = await s.call('POST', '/v1/monitors/any-auth-failure/test', {});
    assert.equal(t.status, 200, JSON.stringify(t.json));
    assert.equal(t.json.sent, true);
    const hook = received.find((x) => x.path === '/hook');
    assert.equal(hook?.body.test, true);
    await s.call('POST', '/v1/monitors', {
      name: 'mail',
      sql: 'SELECT count(*) AS n FROM steward.security.steward',
      condition: { column: 'n', op: '>', value: 0 },
      action: { kind: 'email', to: ['soc@example.com'], from: 'steward@example.com', smtp: { host: '127.0.0.1', port: smtpPort } },
    });
    const m = await s.ws.services.audit?.monitors.run('mail');
    assert.equal(m?.sent, true, m?.error);
    assert.equal(mails.length, 1);
    assert.match(mails[0] ?? '', /Subject: \[steward warning\] mail: 1 row/);
  });
});
