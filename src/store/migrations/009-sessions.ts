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
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX oidc_logins_expires_at ON steward.oidc_logins (expires_at);
`;
