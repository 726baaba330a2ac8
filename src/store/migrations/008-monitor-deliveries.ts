/**
 * Monitor deliveries (src/audit/monitors.ts): a firing is recorded as a
 * delivery row in the transaction that decides it, and sent after commit,
 * with retries. At most one delivery per monitor is open (not delivered, not
 * given up), so two servers evaluating the same monitor enqueue one
 * notification, and rows are leased with `FOR UPDATE SKIP LOCKED`, so only
 * one server sends each attempt. The throttle window (`last_fired_at`) starts
 * when a delivery succeeds, never when one is merely attempted.
 */
export const MONITOR_DELIVERIES = `
CREATE TABLE steward.audit_monitor_deliveries (
  id bigserial PRIMARY KEY,
  monitor text NOT NULL REFERENCES steward.audit_monitors (name) ON DELETE CASCADE,
  notification jsonb NOT NULL CHECK (jsonb_typeof(notification) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now(),
  next_attempt_at timestamptz NOT NULL,
  lease_until timestamptz,
  attempts integer NOT NULL DEFAULT 0,
  delivered_at timestamptz,
  gave_up_at timestamptz,
  last_error text
);
CREATE UNIQUE INDEX audit_monitor_deliveries_open ON steward.audit_monitor_deliveries (monitor) WHERE delivered_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX audit_monitor_deliveries_due ON steward.audit_monitor_deliveries (next_attempt_at) WHERE delivered_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX audit_monitor_deliveries_monitor ON steward.audit_monitor_deliveries (monitor, id);
`;
