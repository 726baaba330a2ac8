/**
 * Security lake batch chain (src/audit/flusher.ts). Each written batch is
 * recorded with the sha256 of every file it wrote and a hash chained over the
 * previous batch's; `batch_hash` on the source is the chain's head. Events
 * now carry an md5 digest of their row (`head_hash` holds the last one), so
 * the head_hash check accepts 32 or 64 hex digits.
 */
export const AUDIT_BATCHES = `
ALTER TABLE steward.audit_sources DROP CONSTRAINT IF EXISTS audit_sources_head_hash_check;
ALTER TABLE steward.audit_sources ADD CONSTRAINT audit_sources_head_hash_hex CHECK (head_hash ~ '^[0-9a-f]{16,64}$');
ALTER TABLE steward.audit_sources ADD COLUMN batch_hash text NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000' CHECK (batch_hash ~ '^[0-9a-f]{64}$');

CREATE TABLE steward.audit_batches (
  source text NOT NULL REFERENCES steward.audit_sources (name) ON DELETE CASCADE,
  batch bigint NOT NULL,
  first_seq bigint NOT NULL,
  last_seq bigint NOT NULL,
  last_hash text NOT NULL,
  files jsonb NOT NULL CHECK (jsonb_typeof(files) = 'array'),
  prev_hash text NOT NULL,
  hash text NOT NULL,
  written_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source, batch)
);
`;
