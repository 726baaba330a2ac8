/**
 * Clean rooms (src/cleanroom): each collaboration is one document with a
 * version (changes are compare-and-set on it), and every query run in a
 * collaboration, allowed or refused, is one row of its query log.
 */
export const CLEANROOMS = `
CREATE TABLE steward.cleanrooms (
  name text PRIMARY KEY,
  document jsonb NOT NULL CHECK (jsonb_typeof(document) = 'object'),
  version integer NOT NULL CHECK (version > 0),
  updated_at timestamptz NOT NULL
);

CREATE TABLE steward.cleanroom_queries (
  id bigserial PRIMARY KEY,
  cleanroom text NOT NULL REFERENCES steward.cleanrooms (name),
  at timestamptz NOT NULL,
  member text NOT NULL,
  runner text NOT NULL,
  sql text NOT NULL,
  template text,
  outcome text NOT NULL CHECK (outcome IN ('allowed', 'refused', 'failed')),
  rules jsonb NOT NULL CHECK (jsonb_typeof(rules) = 'array'),
  rows integer NOT NULL,
  removed integer NOT NULL,
  message text NOT NULL
);
CREATE INDEX cleanroom_queries_room ON steward.cleanroom_queries (cleanroom, id);
`;
