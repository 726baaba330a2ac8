import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTokenUseAudit, tokenUseIntervalFromEnv, DEFAULT_TOKEN_USE_INTERVAL_MS } from './token-use.js';
import type { DecisionLogEntry } from '../store/decision-log.js';

function harness(intervalMs: number | null) {
  let t = 1_000_000;
  const logged: DecisionLogEntry[] = [];
  const audit = createTokenUseAudit({ log: async (e) => void logged.push(...e), intervalMs, now: () => t });
  return { audit, logged, advance: (ms: number) => void (t += ms) };
}

const alice = { tokenId: 'a1', principal: 'user:alice', role: 'user' };

describe('successful token use: one Authentication event per token per interval', () => {
  it('logs the first use, not the next ones within the interval, then again after it', async () => {
    const h = harness(300_000);
    await h.audit.accepted(alice);
    for (let i = 0; i < 50; i++) await h.audit.accepted(alice);
    assert.equal(h.logged.length, 1);
    assert.deepEqual({ ...h.logged[0], reason: undefined }, { actor: 'user:alice', action: 'auth.token', resource: 'api', result: 'allow', reason: undefined, details: { token: 'a1', role: 'user' } });
    h.advance(299_999);
    await h.audit.accepted(alice);
    assert.equal(h.logged.length, 1);
    h.advance(1);
    await h.audit.accepted(alice);
    assert.equal(h.logged.length, 2);
  });

  it('keeps tokens apart, and concurrent uses of one token log once', async () => {
    const h = harness(300_000);
    await Promise.all([h.audit.accepted(alice), h.audit.accepted(alice), h.audit.accepted({ tokenId: 'b2', principal: 'user:bob', role: 'admin' })]);
    assert.deepEqual(h.logged.map((e) => e.actor).sort(), ['user:alice', 'user:bob']);
  });

  it('0 logs every use; off logs none', async () => {
    const every = harness(0);
    for (let i = 0; i < 3; i++) await every.audit.accepted(alice);
    assert.equal(every.logged.length, 3);
    const off = harness(null);
    await off.audit.accepted(alice);
    assert.equal(off.logged.length, 0);
  });

  it('a failed write is retried on the next use', async () => {
    let fail = true;
    const logged: DecisionLogEntry[] = [];
    const audit = createTokenUseAudit({
      intervalMs: 300_000,
      now: () => 5,
      log: async (e) => {
        if (fail) throw new Error('store down');
        logged.push(...e);
      },
    });
    await assert.rejects(audit.accepted(alice), /store down/);
    fail = false;
    await audit.accepted(alice);
    assert.equal(logged.length, 1);
  });

  it('reads STEWARD_AUDIT_TOKEN_USE_INTERVAL (seconds or off)', () => {
    assert.equal(tokenUseIntervalFromEnv({}), DEFAULT_TOKEN_USE_INTERVAL_MS);
    assert.equal(tokenUseIntervalFromEnv({ STEWARD_AUDIT_TOKEN_USE_INTERVAL: '60' }), 60_000);
    assert.equal(tokenUseIntervalFromEnv({ STEWARD_AUDIT_TOKEN_USE_INTERVAL: 'off' }), null);
    assert.throws(() => tokenUseIntervalFromEnv({ STEWARD_AUDIT_TOKEN_USE_INTERVAL: '-1' }), /STEWARD_AUDIT_TOKEN_USE_INTERVAL/);
  });
});
