/**
 * Just-in-time access (src/access): its configuration, requests, approvals,
 * durable timers, the notification outbox, and guardrail lifts.
 *
 * Timers are rows, not in-memory callbacks: a scheduler in every server
 * process claims due rows with `FOR UPDATE SKIP LOCKED`, performs the
 * transition and deletes the row in the same transaction, so a restart or a
 * second process neither loses nor repeats a transition.
 */
export const ACCESS = `
CREATE TABLE steward.access_config (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  document jsonb NOT NULL CHECK (jsonb_typeof(document) = 'object'),
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by text NOT NULL
);

CREATE TABLE steward.access_requests (
  id text PRIMARY KEY,
  requester text NOT NULL CHECK (requester LIKE 'user:%'),
  scope text NOT NULL,
  permission_set text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'approved', 'scheduled', 'active', 'ended', 'revoked', 'rejected', 'cancelled', 'expired', 'error')),
  start_at timestamptz NOT NULL,
  end_at timestamptz NOT NULL,
  duration_seconds integer NOT NULL CHECK (duration_seconds > 0),
  ticket text,
  justification text NOT NULL,
  rule jsonb NOT NULL CHECK (jsonb_typeof(rule) = 'object'),
  extension jsonb,
  error text,
  pending_until timestamptz NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  CHECK (end_at > start_at)
);
CREATE INDEX access_requests_requester ON steward.access_requests (requester, created_at);
CREATE INDEX access_requests_status ON steward.access_requests (status);

CREATE TABLE steward.access_approvals (
  request_id text NOT NULL REFERENCES steward.access_requests (id) ON DELETE CASCADE,
  round integer NOT NULL CHECK (round >= 0),
  approver text NOT NULL,
  decision text NOT NULL CHECK (decision IN ('approve', 'reject')),
  comment text,
  at timestamptz NOT NULL,
  PRIMARY KEY (request_id, round, approver)
);

CREATE TABLE steward.access_timers (
  request_id text NOT NULL REFERENCES steward.access_requests (id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('activate', 'end', 'expire')),
  due_at timestamptz NOT NULL,
  PRIMARY KEY (request_id, kind)
);
CREATE INDEX access_timers_due ON steward.access_timers (due_at);

-- Notifications are recorded here in the transaction that makes the
-- transition and delivered after commit, with retries (at least once).
CREATE TABLE steward.access_outbox (
  id bigserial PRIMARY KEY,
  request_id text NOT NULL,
  channel text NOT NULL CHECK (channel IN ('email', 'webhook')),
  target text NOT NULL,
  payload jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  lease_until timestamptz,
  attempts integer NOT NULL DEFAULT 0,
  delivered_at timestamptz,
  last_error text
);
CREATE INDEX access_outbox_due ON steward.access_outbox (next_attempt_at) WHERE delivered_at IS NULL;

-- A guardrail exception an active request added (added = true) or found
-- already present (added = false, so ending the request leaves it alone).
CREATE TABLE steward.access_lifts (
  request_id text NOT NULL REFERENCES steward.access_requests (id) ON DELETE CASCADE,
  guardrail text NOT NULL,
  principal text NOT NULL,
  added boolean NOT NULL,
  PRIMARY KEY (request_id, guardrail)
);
CREATE INDEX access_lifts_guardrail ON steward.access_lifts (guardrail, principal);
`;
