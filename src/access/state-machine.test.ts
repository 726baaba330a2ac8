import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ACCESS_EVENTS, transition, type AccessEvent } from './state-machine.js';
import { REQUEST_STATUSES, TERMINAL_STATUSES, type RequestStatus } from './access-types.js';

/** The whole table, written out: every state × every event. Anything not listed is refused. */
const ALLOWED: Readonly<Record<RequestStatus, Partial<Record<AccessEvent, RequestStatus>>>> = {
  pending: { approve_partial: 'pending', approve: 'approved', reject: 'rejected', cancel: 'cancelled', expire: 'expired', fail: 'error' },
  approved: { schedule: 'scheduled', cancel: 'cancelled', revoke: 'revoked', fail: 'error' },
  scheduled: { activate: 'active', extend: 'scheduled', cancel: 'cancelled', revoke: 'revoked', end: 'ended', fail: 'error' },
  active: { extend: 'active', end: 'ended', revoke: 'revoked', fail: 'error' },
  ended: {},
  revoked: {},
  rejected: {},
  cancelled: {},
  expired: {},
  error: {},
};

describe('request state machine', () => {
  for (const from of REQUEST_STATUSES) {
    for (const event of ACCESS_EVENTS) {
      const expected = ALLOWED[from][event];
      it(`${from} + ${event} → ${expected ?? 'refused'}`, () => {
        const r = transition(from, event);
        if (expected === undefined) {
          assert.equal(r.ok, false);
          if (!r.ok) assert.match(r.reason, TERMINAL_STATUSES.includes(from) ? /no further action is possible/ : new RegExp(`cannot .* that is ${from}`));
        } else {
          assert.deepEqual(r, { ok: true, to: expected });
        }
      });
    }
  }

  it('terminal states accept nothing and every other state can fail into error', () => {
    for (const s of REQUEST_STATUSES) {
      const terminal = TERMINAL_STATUSES.includes(s);
      assert.equal(ACCESS_EVENTS.some((e) => transition(s, e).ok), !terminal, s);
      assert.equal(transition(s, 'fail').ok, !terminal, s);
    }
  });
});
