/**
 * Warehouse sync targets (src/sync). A target's spec holds where credentials
 * come from (an environment variable name or a secret file path), never the
 * credentials themselves. `last_*` columns say how the last sync went.
 */
export const SYNC = `
CREATE TABLE steward.sync_targets (
  name text PRIMARY KEY,
  spec jsonb NOT NULL CHECK (jsonb_typeof(spec) = 'object'),
  last_version bigint,
  last_synced_at timestamptz,
  last_status text,
  last_statements integer,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
`;
