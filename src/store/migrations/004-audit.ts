/**
 * The security lake (src/audit). The decision log is the outbox of Steward's
 * own events: `audit_batch` records which flush batch took a row, so a row is
 * written to Parquet exactly once even when PostgreSQL commits ids out of
 * order (a cursor over ids would skip a late commit). Ingested events wait in
 * `audit_outbox` until their batch is written.
 *
 * A source's chain head (`head_seq`, `head_hash`) advances in the same
 * transaction that marks a batch written; `pending` records a batch between
 * claiming its rows and that commit, so a crash in between redoes exactly the
 * same batch into the same file names (no loss, no duplicates).
 */
export const AUDIT = `
ALTER TABLE steward.decision_log ADD COLUMN audit_batch bigint;
CREATE INDEX decision_log_audit_pending ON steward.decision_log (id) WHERE audit_batch IS NULL;

CREATE TABLE steward.audit_sources (
  name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  mapping text NOT NULL,
  description text,
  region text NOT NULL DEFAULT 'local' CHECK (region ~ '^[A-Za-z0-9_.-]{1,64}$'),
  account_id text NOT NULL DEFAULT 'steward' CHECK (account_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
  retention_days integer CHECK (retention_days IS NULL OR retention_days > 0),
  head_seq bigint NOT NULL DEFAULT 0 CHECK (head_seq >= 0),
  head_hash text NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000' CHECK (head_hash ~ '^[0-9a-f]{64}$'),
  next_batch bigint NOT NULL DEFAULT 1,
  pending jsonb,
  registered boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO steward.audit_sources (name, mapping, description) VALUES ('steward', 'steward', 'Steward decisions, changes and authentications');

CREATE TABLE steward.audit_outbox (
  id bigserial PRIMARY KEY,
  source text NOT NULL REFERENCES steward.audit_sources (name) ON DELETE CASCADE,
  event jsonb NOT NULL CHECK (jsonb_typeof(event) = 'object'),
  batch bigint
);
CREATE INDEX audit_outbox_pending ON steward.audit_outbox (source, id) WHERE batch IS NULL;
CREATE INDEX audit_outbox_batch ON steward.audit_outbox (source, batch) WHERE batch IS NOT NULL;

CREATE TABLE steward.audit_quarantine (
  id bigserial PRIMARY KEY,
  source text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  line integer,
  reason text NOT NULL,
  record text NOT NULL
);
CREATE INDEX audit_quarantine_source ON steward.audit_quarantine (source, id);

-- Only the sha256 of an ingest key's secret is stored; the plaintext is shown once.
CREATE TABLE steward.audit_ingest_keys (
  id text PRIMARY KEY,
  source text NOT NULL REFERENCES steward.audit_sources (name) ON DELETE CASCADE,
  name text NOT NULL,
  secret_hash text NOT NULL CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);

-- Day partitions removed by retention, with the chain positions they held, so
-- that verify tells expired events from deleted ones.
CREATE TABLE steward.audit_pruned (
  source text NOT NULL,
  partition text NOT NULL,
  seq_ranges jsonb NOT NULL CHECK (jsonb_typeof(seq_ranges) = 'array'),
  events bigint NOT NULL,
  pruned_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source, partition)
);

CREATE TABLE steward.audit_monitors (
  name text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
  description text,
  sql text NOT NULL,
  schedule_seconds integer NOT NULL CHECK (schedule_seconds >= 1),
  condition jsonb NOT NULL CHECK (jsonb_typeof(condition) = 'object'),
  severity text NOT NULL CHECK (severity IN ('critical', 'error', 'warning', 'info')),
  throttle_seconds integer NOT NULL DEFAULT 0 CHECK (throttle_seconds >= 0),
  action jsonb NOT NULL CHECK (jsonb_typeof(action) = 'object'),
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_run_at timestamptz,
  last_fired_at timestamptz,
  last_result jsonb
);
`;
