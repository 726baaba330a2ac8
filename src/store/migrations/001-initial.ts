/**
 * The first schema. Everything lives in the `steward` schema so that a shared
 * PostgreSQL database can host Steward next to other applications.
 *
 * Every policy entity table has `entity_key`, the natural key exactly as
 * `entityKey()` in src/policy/changes.ts prints it: deletes arrive as key
 * strings, and upserts conflict on it. The key's parts are stored as columns
 * too, so foreign keys can check containment.
 *
 * Foreign keys use ON DELETE RESTRICT on purpose. The core validates the world
 * before every write and emits child deletes before parent deletes; RESTRICT is
 * the second line of defense that turns a bug there into a failed transaction
 * instead of an orphan (CASCADE would silently make the stored world differ
 * from the one the core validated).
 */
export const INITIAL = `
CREATE TABLE steward.state_version (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  version bigint NOT NULL CHECK (version >= 0)
);
INSERT INTO steward.state_version (id, version) VALUES (true, 0);

CREATE TABLE steward.catalogs (
  entity_key text PRIMARY KEY,
  name text NOT NULL UNIQUE,
  description text
);

CREATE TABLE steward.databases (
  entity_key text PRIMARY KEY,
  catalog text NOT NULL REFERENCES steward.catalogs (name) ON DELETE RESTRICT,
  name text NOT NULL,
  description text,
  UNIQUE (catalog, name)
);

CREATE TABLE steward.tables (
  entity_key text PRIMARY KEY,
  catalog text NOT NULL,
  database text NOT NULL,
  name text NOT NULL,
  columns jsonb NOT NULL CHECK (jsonb_typeof(columns) = 'array'),
  source jsonb NOT NULL CHECK (jsonb_typeof(source) = 'object'),
  UNIQUE (catalog, database, name),
  FOREIGN KEY (catalog, database) REFERENCES steward.databases (catalog, name) ON DELETE RESTRICT
);

CREATE TABLE steward.users (
  entity_key text PRIMARY KEY,
  name text NOT NULL UNIQUE,
  display_name text
);

CREATE TABLE steward.groups (
  entity_key text PRIMARY KEY,
  name text NOT NULL UNIQUE,
  description text
);

-- member is user:x or group:y; it cannot reference one table, so only the
-- containing group is checked here.
CREATE TABLE steward.memberships (
  entity_key text PRIMARY KEY,
  group_name text NOT NULL REFERENCES steward.groups (name) ON DELETE RESTRICT,
  member text NOT NULL CHECK (member LIKE 'user:%' OR member LIKE 'group:%'),
  UNIQUE (group_name, member)
);
CREATE INDEX memberships_member ON steward.memberships (member);

CREATE TABLE steward.idp_mappings (
  entity_key text PRIMARY KEY,
  provider text NOT NULL,
  external_group text NOT NULL,
  group_name text NOT NULL REFERENCES steward.groups (name) ON DELETE RESTRICT,
  UNIQUE (provider, external_group)
);

CREATE TABLE steward.tag_keys (
  entity_key text PRIMARY KEY,
  key text NOT NULL UNIQUE,
  allowed_values jsonb NOT NULL CHECK (jsonb_typeof(allowed_values) = 'array'),
  description text
);

-- Column-level assignments cannot be checked against the columns (a jsonb
-- array of the table); database and table levels are.
CREATE TABLE steward.tag_assignments (
  entity_key text PRIMARY KEY,
  level text NOT NULL CHECK (level IN ('database', 'table', 'column')),
  catalog text NOT NULL,
  database text NOT NULL,
  table_name text,
  column_name text,
  key text NOT NULL REFERENCES steward.tag_keys (key) ON DELETE RESTRICT,
  value text NOT NULL,
  CHECK ((level = 'database') = (table_name IS NULL)),
  CHECK ((level = 'column') = (column_name IS NOT NULL)),
  FOREIGN KEY (catalog, database) REFERENCES steward.databases (catalog, name) ON DELETE RESTRICT,
  FOREIGN KEY (catalog, database, table_name) REFERENCES steward.tables (catalog, database, name) ON DELETE RESTRICT
);
CREATE INDEX tag_assignments_key ON steward.tag_assignments (key, value);

CREATE TABLE steward.data_filters (
  entity_key text PRIMARY KEY,
  name text NOT NULL,
  catalog text NOT NULL,
  database text NOT NULL,
  table_name text NOT NULL,
  row_filter text,
  predicate jsonb,
  columns jsonb CHECK (columns IS NULL OR jsonb_typeof(columns) = 'array'),
  excluded_columns jsonb CHECK (excluded_columns IS NULL OR jsonb_typeof(excluded_columns) = 'array'),
  UNIQUE (catalog, database, table_name, name),
  FOREIGN KEY (catalog, database, table_name) REFERENCES steward.tables (catalog, database, name) ON DELETE RESTRICT
);

-- not_after is the instant (for queries such as "grants expiring this week");
-- not_after_text is the value as the author wrote it, so that a policy file
-- saying 2026-01-01 does not show up as changed on every apply.
CREATE TABLE steward.grants (
  entity_key text PRIMARY KEY,
  id text NOT NULL UNIQUE,
  principal text NOT NULL CHECK (principal LIKE 'user:%' OR principal LIKE 'group:%'),
  resource jsonb NOT NULL CHECK (jsonb_typeof(resource) = 'object'),
  permissions jsonb NOT NULL CHECK (jsonb_typeof(permissions) = 'array'),
  grantable jsonb NOT NULL CHECK (jsonb_typeof(grantable) = 'array'),
  not_after timestamptz,
  not_after_text text,
  description text,
  CHECK ((not_after IS NULL) = (not_after_text IS NULL))
);
CREATE INDEX grants_principal ON steward.grants (principal);
CREATE INDEX grants_not_after ON steward.grants (not_after) WHERE not_after IS NOT NULL;

CREATE TABLE steward.guardrails (
  entity_key text PRIMARY KEY,
  name text NOT NULL UNIQUE,
  description text,
  principals jsonb CHECK (principals IS NULL OR jsonb_typeof(principals) = 'array'),
  except_principals jsonb CHECK (except_principals IS NULL OR jsonb_typeof(except_principals) = 'array'),
  actions jsonb NOT NULL CHECK (jsonb_typeof(actions) = 'array'),
  catalog text,
  resources jsonb NOT NULL CHECK (jsonb_typeof(resources) = 'object')
);

-- Only the sha256 of a token's secret is stored; the plaintext is shown once.
CREATE TABLE steward.api_tokens (
  id text PRIMARY KEY,
  name text NOT NULL,
  principal text NOT NULL,
  role text NOT NULL CHECK (role IN ('admin', 'user')),
  secret_hash text NOT NULL CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  expires_at timestamptz,
  revoked_at timestamptz
);

CREATE TABLE steward.decision_log (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  actor text NOT NULL,
  action text NOT NULL,
  resource text NOT NULL,
  result text NOT NULL CHECK (result IN ('allow', 'deny', 'ok', 'error')),
  reason text NOT NULL,
  details jsonb
);
CREATE INDEX decision_log_at ON steward.decision_log (at);
CREATE INDEX decision_log_actor_at ON steward.decision_log (actor, at);
`;
