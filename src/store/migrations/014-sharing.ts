/**
 * Sharing across workspaces (src/sharing/, docs/sharing.md).
 *
 * `share_identity`: this workspace's Ed25519 key pair (one row). The private
 * JWK is in clear like every other secret of the store: whoever can read the
 * database can sign feeds and share tokens as this workspace.
 *
 * `share_peers`: workspaces trusted once by public key (`steward share
 * trust`), with the URL of a producer to pull from and the pull schedule
 * (`next_pull_at` is the durable timer, claimed with `FOR UPDATE SKIP LOCKED`;
 * `lease_*` keep one pull per producer at a time across processes).
 *
 * Producer side. `shares`: what is shared with which peer; `cursor` is the
 * last sequence number given out. `share_entries`: the compacted change feed,
 * one row per published key holding its latest state (a delete is a row with
 * a null entity), so "everything after cursor N" is one indexed read and every
 * key changed after N is in it.
 *
 * Consumer side. `share_subscriptions`: one row per share offered to us, the
 * local catalog it fills, the cursor reached and the last problems.
 */
export const SHARING = `
CREATE TABLE steward.share_identity (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  public_key text NOT NULL UNIQUE,
  private_jwk jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE steward.share_peers (
  name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,39}$'),
  public_key text NOT NULL UNIQUE,
  url text,
  -- Where the workspace runs (docs/residency.md): residency guardrails refuse sharing tables outside their regions.
  region text CHECK (region ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  next_pull_at timestamptz,
  lease_until timestamptz,
  lease_token text,
  last_pull_at timestamptz,
  last_full_at timestamptz,
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX share_peers_next_pull_at ON steward.share_peers (next_pull_at) WHERE url IS NOT NULL;

CREATE TABLE steward.shares (
  name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,39}$'),
  peer text NOT NULL REFERENCES steward.share_peers (name),
  catalog text NOT NULL,
  spec jsonb NOT NULL CHECK (jsonb_typeof(spec) = 'object'),
  status text NOT NULL CHECK (status IN ('active', 'revoked')),
  cursor bigint NOT NULL DEFAULT 0,
  published_version bigint NOT NULL DEFAULT -1,
  last_served_at timestamptz,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);

CREATE TABLE steward.share_entries (
  share text NOT NULL REFERENCES steward.shares (name),
  key text NOT NULL,
  seq bigint NOT NULL,
  digest text NOT NULL,
  entity jsonb,
  PRIMARY KEY (share, key)
);
CREATE UNIQUE INDEX share_entries_seq ON steward.share_entries (share, seq);

CREATE TABLE steward.share_subscriptions (
  peer text NOT NULL REFERENCES steward.share_peers (name),
  share text NOT NULL,
  catalog text NOT NULL UNIQUE,
  status text NOT NULL CHECK (status IN ('active', 'revoked', 'conflict')),
  cursor bigint NOT NULL DEFAULT 0,
  tables integer NOT NULL DEFAULT 0,
  conflicts jsonb NOT NULL DEFAULT '[]',
  last_pull_at timestamptz,
  last_error text,
  PRIMARY KEY (peer, share)
);
`;
