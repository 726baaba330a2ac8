/**
 * The request lifecycle as one exhaustive transition table.
 *
 *   pending ──approve──► approved ──schedule──► scheduled ──activate──► active ──end──► ended
 *      │ approve_partial (stays pending)            │                    │ extend (stays active)
 *      ├─reject──► rejected                          ├─cancel──► cancelled └─revoke──► revoked
 *      ├─cancel──► cancelled                         ├─revoke──► revoked
 *      └─expire──► expired                           └─end──► ended (its window passed before it could start)
 *   any non-terminal ──fail──► error
 *
 * Terminal states (ended, revoked, rejected, cancelled, expired, error) accept
 * no event.
 */
import type { RequestStatus } from './access-types.js';

export const ACCESS_EVENTS = [
  'approve_partial',
  'approve',
  'reject',
  'cancel',
  'expire',
  'schedule',
  'activate',
  'extend',
  'end',
  'revoke',
  'fail',
] as const;
export type AccessEvent = (typeof ACCESS_EVENTS)[number];

export type TransitionResult = { readonly ok: true; readonly to: RequestStatus } | { readonly ok: false; readonly reason: string };

/**
 * Every state's accepted events and where they lead. A `Record` over every
 * state, so a new state does not compile until its row is written; terminal
 * states have empty rows.
 */
const TRANSITIONS: Readonly<Record<RequestStatus, Readonly<Partial<Record<AccessEvent, RequestStatus>>>>> = {
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

/** The next state for `event` in `from`, or why the event is refused there. Pure. */
export function transition(from: RequestStatus, event: AccessEvent): TransitionResult {
  const row = TRANSITIONS[from];
  const next = Object.hasOwn(row, event) ? row[event] : undefined;
  if (next !== undefined) return { ok: true, to: next };
  return {
    ok: false,
    reason: Object.keys(row).length === 0 ? `the request is ${from}; no further action is possible` : `cannot ${event.replace('_', ' ')} a request that is ${from}`,
  };
}

/** Whether a request in this state holds (or is about to hold) a grant in the policy world. */
export function holdsGrant(s: RequestStatus): boolean {
  return s === 'active';
}
