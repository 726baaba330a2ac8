/**
 * Notifications end to end: a real SMTP server (smtp-server) and a local HTTP
 * webhook receiver. Messages are recorded in the outbox in the transition's
 * transaction and delivered afterwards, with retries.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { ACCESS_DOC, as, createClock, createHarness, T0, type Harness } from './harness.js';

interface Mail {
  readonly to: string[];
  readonly data: string;
}

const mails: Mail[] = [];
const hooks: { body: Record<string, unknown> }[] = [];
let failNextHooks = 0;
let smtp: SMTPServer;
let receiver: http.Server;
let h: Harness;

const subjectOf = (m: Mail): string => /^Subject: (.*)$/m.exec(m.data.replace(/\r?\n[ \t]+/g, ' '))?.[1]?.trim() ?? '';

before(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      let data = '';
      stream.on('data', (c: Buffer) => (data += c.toString()));
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), data });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', () => resolve()));
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (failNextHooks > 0) {
        failNextHooks--;
        res.writeHead(503).end();
        return;
      }
      hooks.push({ body: JSON.parse(body) as Record<string, unknown> });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
  const smtpPort = (smtp.server.address() as AddressInfo).port;
  const hookPort = (receiver.address() as AddressInfo).port;
  h = await createHarness({
    clock: createClock(T0),
    realDelivery: true,
    config: {
      ...ACCESS_DOC,
      notifications: {
        smtp: { host: '127.0.0.1', port: smtpPort, from: 'steward@example.test' },
        emailDomain: 'example.test',
        contacts: { carol: 'carol.privacy@example.test' },
        webhooks: [{ url: `http://127.0.0.1:${hookPort}/slack` }],
      },
    },
  });
});

after(async () => {
  await h.close();
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});

describe('notifications', () => {
  it('email to the requester and every approver, a Slack-compatible webhook, and "handled" to the other approvers', async () => {
    const r = await h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', durationSeconds: 600, justification: 'case 9' });
    assert.equal(mails.length, 0, 'nothing is sent inside the transaction');
    await h.access.deliverOutbox();
    const byRcpt = (addr: string): Mail[] => mails.filter((m) => m.to.includes(addr));
    assert.equal(byRcpt('amy@example.test').length, 1);
    assert.match(subjectOf(byRcpt('carol.privacy@example.test')[0] as Mail), /Approval needed: Access request ar-/);
    assert.equal(byRcpt('craig@example.test').length, 1);
    assert.equal(hooks.length, 1);
    assert.equal(typeof hooks[0]?.body['text'], 'string');
    assert.match(String(hooks[0]?.body['text']), /was requested by user:amy/);

    mails.length = 0;
    hooks.length = 0;
    await h.access.approve(as('carol'), r.id, 'go ahead');
    await h.access.deliverOutbox();
    const craig = mails.filter((m) => m.to.includes('craig@example.test'));
    assert.ok(craig.some((m) => /Handled: Access request .* was approved by user:carol/.test(subjectOf(m))), craig.map(subjectOf).join(' | '));
    assert.ok(craig.some((m) => /no action is needed from you/.test(m.data.replace(/=\r?\n/g, '').replace(/\r?\n/g, ' '))));
    const amyMail = mails.filter((m) => m.to.includes('amy@example.test')).map(subjectOf);
    assert.ok(amyMail.some((s) => /is now active/.test(s)), amyMail.join(' | '));
    assert.deepEqual(
      hooks.map((x) => x.body['event']),
      ['approve', 'schedule', 'activate'],
    );

    mails.length = 0;
    hooks.length = 0;
    h.clock.advance(601_000);
    await h.access.runDue();
    await h.access.deliverOutbox();
    assert.ok(mails.some((m) => m.to.includes('amy@example.test') && /has ended/.test(subjectOf(m))));
    assert.deepEqual(hooks.map((x) => x.body['event']), ['end']);
    const status = await h.access.notifications(as('amy'), r.id);
    assert.ok(status.every((n) => n.delivered), JSON.stringify(status.filter((n) => !n.delivered)));
  });

  it('a failed webhook is retried with backoff after commit, never lost', async () => {
    hooks.length = 0;
    failNextHooks = 1;
    const r = await h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', durationSeconds: 600, justification: 'retry' });
    await h.access.deliverOutbox();
    assert.equal(hooks.length, 0);
    const pending = (await h.access.notifications(as('amy'), r.id)).filter((n) => n.channel === 'webhook');
    assert.equal(pending[0]?.delivered, false);
    assert.match(pending[0]?.lastError ?? '', /503/);
    await h.access.deliverOutbox();
    assert.equal(hooks.length, 0, 'not before the backoff');
    h.clock.advance(1500);
    await h.access.deliverOutbox();
    assert.equal(hooks.length, 1);
    assert.ok((await h.access.notifications(as('amy'), r.id)).every((n) => n.delivered));
  });
});
