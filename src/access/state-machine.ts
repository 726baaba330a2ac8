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
 * no event. The table is a `switch` on the state with a `never` check, so a new
 * state or event does not compile until every case is decided.
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

const to = (s: RequestStatus): TransitionResult => ({ ok: true, to: s });
const refuse = (from: RequestStatus, event: AccessEvent): TransitionResult => ({
  ok: false,
  reason:
    from === 'ended' || from === 'revoked' || from === 'rejected' || from === 'cancelled' || from === 'expired' || from === 'error'
      ? `the request is ${from}; no further action is possible`
      : `cannot ${event.replace('_', ' ')} a request that is ${from}`,
});

/** The next state for `event` in `from`, or why the event is refused there. Pure. */
export function transition(from: RequestStatus, event: AccessEvent): TransitionResult {
  switch (from) {
    case 'pending':
      switch (event) {
        case 'approve_partial':
          return to('pending');
        case 'approve':
          return to('approved');
        case 'reject':
          return to('rejected');
        case 'cancel':
          return to('cancelled');
        case 'expire':
          return to('expired');
        case 'fail':
          return to('error');
        default:
          return refuse(from, event);
      }
    case 'approved':
      switch (event) {
        case 'schedule':
          return to('scheduled');
        case 'cancel':
          return to('cancelled');
        case 'revoke':
          return to('revoked');
        case 'fail':
          return to('error');
        default:
          return refuse(from, event);
      }
    case 'scheduled':
      switch (event) {
        case 'activate':
          return to('active');
        case 'extend':
          return to('scheduled');
        case 'cancel':
          return to('cancelled');
        case 'revoke':
          return to('revoked');
        case 'end':
          return to('ended');
        case 'fail':
          return to('error');
        default:
          return refuse(from, event);
      }
    case 'active':
      switch (event) {
        case 'extend':
          return to('active');
        case 'end':
          return to('ended');
        case 'revoke':
          return to('revoked');
        case 'fail':
          return to('error');
        default:
          return refuse(from, event);
      }
    case 'ended':
    case 'revoked':
    case 'rejected':
    case 'cancelled':
    case 'expired':
    case 'error':
      return refuse(from, event);
    default: {
      const never: never = from;
      return never;
    }
  }
}

/** Whether a request in this state holds (or is about to hold) a grant in the policy world. */
export function holdsGrant(s: RequestStatus): boolean {
  return s === 'active';
}
