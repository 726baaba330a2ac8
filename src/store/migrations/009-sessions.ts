/**
 * Browser sessions (src/identity/session-store.ts) and pending OpenID Connect
 * sign-ins (src/identity/oidc-logins.ts).
 *
 * A session row is keyed by sha256 of the cookie's secret, never the secret:
 * a copy of the database signs nobody in. A session made from an API token
 * names it, so revoking (or deleting) the token ends the session too.
 *
 * A pending OIDC sign-in is keyed by sha256 of its `state`; it holds the PKCE
 * verifier and nonce for the few minutes between the redirect to the
 * provider and the callback, and is deleted when the callback consumes it.
 * `browser_hash` binds it to the browser that started it (sha256 of a
 * short-lived cookie), so a callback URL sent to someone else signs nobody in.
 * A sign-in started by `steward login` also names the CLI's loopback port and
 * its PKCE-style challenge; its callback leaves a one-time code in
 * `cli_logins` (hashed, two minutes) that only the holder of the challenge's
 * verifier can exchange for an API token.
 */
export const SESSIONS = `
CREATE TABLE steward.sessions (
  id text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{64}$'),
  principal text NOT NULL,
  role text NOT NULL CHECK (role IN ('admin', 'user')),
  csrf_token text NOT NULL CHECK (length(csrf_token) >= 32),
  created_by text NOT NULL CHECK (created_by IN ('token', 'oidc')),
  token_id text REFERENCES steward.api_tokens (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL,
  idle_timeout_seconds integer NOT NULL CHECK (idle_timeout_seconds > 0),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  CHECK ((created_by = 'token') = (token_id IS NOT NULL)),
  CHECK (expires_at > created_at)
);
CREATE INDEX sessions_token_id ON steward.sessions (token_id) WHERE token_id IS NOT NULL;
CREATE INDEX sessions_expires_at ON steward.sessions (expires_at);

CREATE TABLE steward.oidc_logins (
  state_hash text PRIMARY KEY CHECK (state_hash ~ '^[0-9a-f]{64}$'),
  code_verifier text NOT NULL,
  nonce text NOT NULL,
  return_to text NOT NULL,
  browser_hash text NOT NULL CHECK (browser_hash ~ '^[0-9a-f]{64}$'),
  cli_port integer CHECK (cli_port BETWEEN 1024 AND 65535),
  cli_challenge text CHECK (cli_challenge ~ '^[A-Za-z0-9_-]{43}$'),
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  CHECK ((cli_port IS NULL) = (cli_challenge IS NULL))
);
CREATE INDEX oidc_logins_expires_at ON steward.oidc_logins (expires_at);

CREATE TABLE steward.cli_logins (
  code_hash text PRIMARY KEY CHECK (code_hash ~ '^[0-9a-f]{64}$'),
  challenge text NOT NULL CHECK (challenge ~ '^[A-Za-z0-9_-]{43}$'),
  principal text NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
`;
