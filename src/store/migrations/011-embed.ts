/**
 * Embedded analytics (src/embed/).
 *
 * `embed_keys`: the signing keys of embed tokens, rotated. A key signs new
 * tokens until `signs_until` and is published in `/.well-known/jwks.json` and
 * accepted until `verifies_until` (its last token's expiry). The private JWK
 * is here in clear, like every other secret of the store: whoever can read
 * the database can mint embed tokens (see docs/embedding.md).
 *
 * `embed_token_uses`: the `jti` of every embed token already used, until it
 * expires, so a token opens one dashboard view once.
 *
 * `embed_dashboards`: dashboards as code, as applied (the validated spec).
 */
export const EMBED = `
CREATE TABLE steward.embed_keys (
  kid text PRIMARY KEY CHECK (kid ~ '^[A-Za-z0-9_-]{16,64}$'),
  alg text NOT NULL CHECK (alg IN ('EdDSA', 'ES256')),
  public_jwk jsonb NOT NULL,
  private_jwk jsonb NOT NULL,
  created_at timestamptz NOT NULL,
  signs_until timestamptz NOT NULL,
  verifies_until timestamptz NOT NULL,
  CHECK (signs_until > created_at AND verifies_until >= signs_until)
);
CREATE INDEX embed_keys_verifies_until ON steward.embed_keys (verifies_until);

CREATE TABLE steward.embed_token_uses (
  jti text PRIMARY KEY CHECK (length(jti) BETWEEN 16 AND 64),
  expires_at timestamptz NOT NULL
);
CREATE INDEX embed_token_uses_expires_at ON steward.embed_token_uses (expires_at);

CREATE TABLE steward.embed_dashboards (
  id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
  spec jsonb NOT NULL,
  updated_at timestamptz NOT NULL
);

ALTER TABLE steward.api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE steward.api_tokens ADD CONSTRAINT api_tokens_role_check CHECK (role IN ('admin', 'user', 'embed'));
`;
