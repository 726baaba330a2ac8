/**
 * The gateway workbench: query history, saved queries and their sharing with
 * groups. History rows are written after each query (allowed, refused or
 * failed); saved queries keep their SQL with `${param}` placeholders, and the
 * values are bound at run time, never stored in the text.
 */
export const GATEWAY = `
CREATE TABLE steward.query_history (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  principal text NOT NULL,
  actor text NOT NULL,
  sql text NOT NULL,
  tables jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(tables) = 'array'),
  duration_ms integer NOT NULL CHECK (duration_ms >= 0),
  row_count bigint NOT NULL CHECK (row_count >= 0),
  outcome text NOT NULL CHECK (outcome IN ('allowed', 'refused', 'failed')),
  message text,
  saved_query text
);
CREATE INDEX query_history_principal ON steward.query_history (principal, id DESC);

CREATE TABLE steward.saved_queries (
  id text PRIMARY KEY,
  owner text NOT NULL,
  name text NOT NULL,
  description text,
  sql text NOT NULL,
  parameters jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(parameters) = 'array'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (owner, name)
);

CREATE TABLE steward.saved_query_shares (
  query_id text NOT NULL REFERENCES steward.saved_queries (id) ON DELETE CASCADE,
  group_name text NOT NULL,
  PRIMARY KEY (query_id, group_name)
);
CREATE INDEX saved_query_shares_group ON steward.saved_query_shares (group_name);
`;
