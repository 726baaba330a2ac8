/**
 * Embed tokens: short-lived JWTs (EdDSA or ES256, via jose) by which a
 * vendor's back end vouches for one of its users. A token names one
 * dashboard (its audience is `steward:embed:dashboard:<id>`), the vendor's
 * user id (`sub`), the session tags, the origins allowed to frame it, and
 * expires within 15 minutes. It opens one view once: its `jti` is recorded
 * when used and a second use is refused.
 *
 * Verification trusts nothing in the token before the signature is checked
 * with a key Steward itself holds, under that key's own algorithm: `alg:
 * none`, an algorithm other than the key's, an unknown or retired `kid` and a
 * key embedded in the header are all refused.
 */
import { randomBytes, sign, type KeyObject } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { StewardError } from '../errors.js';
import type { Db } from '../store/db.js';
import { MAX_TOKEN_SECONDS, type SigningAlgorithm, type SigningKeys } from './signing-keys.js';
import type { SessionTags } from './tag-rules.js';

export const EMBED_ISSUER = 'steward';
export const DEFAULT_TOKEN_SECONDS = 10 * 60;

export interface EmbedSession {
  readonly dashboard: string;
  /** The vendor's user id (`sub`). */
  readonly user: string;
  readonly tags: SessionTags;
  /** Origins allowed to frame the dashboard (`frame-ancestors`). */
  readonly origins: readonly string[];
  readonly jti: string;
  /** Epoch seconds. */
  readonly exp: number;
}

export interface MintInput {
  readonly dashboard: string;
  readonly user: string;
  readonly tags: SessionTags;
  readonly origins: readonly string[];
  readonly ttlSeconds?: number;
}

export interface EmbedTokens {
  mint(input: MintInput): Promise<{ readonly token: string; readonly jti: string; readonly expiresAt: string }>;
  /** Checks the token for `dashboard` and marks it used; throws STEWARD_E_UNAUTHENTICATED saying why. */
  open(token: string, dashboard: string): Promise<EmbedSession>;
}

export function audienceOf(dashboard: string): string {
  return `steward:embed:dashboard:${dashboard}`;
}

const refused = (why: string): StewardError => new StewardError('STEWARD_E_UNAUTHENTICATED', `embed token refused: ${why}`);

export function createEmbedTokens(deps: { readonly db: Db; readonly keys: SigningKeys; readonly now?: () => Date }): EmbedTokens {
  const now = deps.now ?? ((): Date => new Date());
  let consumed = 0;
  // The encoded JWS header of each key: the same for every token the key signs.
  const headers = new Map<string, string>();
  const headerOf = (alg: SigningAlgorithm, kid: string): string => {
    let h = headers.get(kid);
    if (h === undefined) {
      if (headers.size > 64) headers.clear();
      headers.set(kid, (h = part({ alg, kid, typ: 'JWT' })));
    }
    return h;
  };

  const consume = async (jti: string, exp: number): Promise<void> => {
    const { rows } = await deps.db.query<{ jti: string }>(
      'INSERT INTO steward.embed_token_uses (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING RETURNING jti',
      [jti, new Date(exp * 1000).toISOString()],
    );
    if (rows.length === 0) throw refused('already used');
    // Expired uses can go: their tokens are refused as expired anyway.
    if (++consumed % 256 === 0) await deps.db.query('DELETE FROM steward.embed_token_uses WHERE expires_at < $1::timestamptz', [now().toISOString()]);
  };

  return {
    async mint(input) {
      const ttl = input.ttlSeconds ?? DEFAULT_TOKEN_SECONDS;
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_SECONDS) {
        throw new StewardError('STEWARD_E_VALIDATION', `ttlSeconds: must be a whole number from 1 to ${MAX_TOKEN_SECONDS}`, { details: [{ path: 'ttlSeconds', message: 'out of range' }] });
      }
      const key = await deps.keys.current();
      const iat = Math.floor(now().getTime() / 1000);
      const jti = tokenId();
      const claims = { tags: input.tags, origins: input.origins, iss: EMBED_ISSUER, aud: audienceOf(input.dashboard), sub: input.user, jti, iat, exp: iat + ttl };
      const token = signCompact(key.alg, headerOf(key.alg, key.kid), claims, key.key);
      return { token, jti, expiresAt: new Date((iat + ttl) * 1000).toISOString() };
    },

    async open(token, dashboard) {
      if (token.length > 16_384) throw refused('too long');
      let header: ReturnType<typeof decodeProtectedHeader>;
      try {
        header = decodeProtectedHeader(token);
      } catch {
        throw refused('malformed');
      }
      if (header.alg === undefined || header.alg.toLowerCase() === 'none') throw refused('unsigned (`alg: none`)');
      if (typeof header.kid !== 'string') throw refused('no key id');
      const verifier = await deps.keys.verifier(header.kid);
      if (verifier === undefined) throw refused('signed with an unknown or retired key');
      if (header.alg !== verifier.alg) throw refused(`algorithm \`${header.alg}\` is not the key's`);
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, verifier.key, {
          algorithms: [verifier.alg],
          issuer: EMBED_ISSUER,
          audience: audienceOf(dashboard),
          requiredClaims: ['exp', 'iat', 'jti', 'sub'],
          maxTokenAge: MAX_TOKEN_SECONDS,
          currentDate: now(),
        }));
      } catch (e) {
        throw refused(verifyFailure(e));
      }
      const exp = payload.exp as number;
      const iat = payload.iat as number;
      if (exp - iat > MAX_TOKEN_SECONDS) throw refused('lives longer than 15 minutes');
      const session = sessionOf(payload, dashboard);
      await consume(session.jti, exp);
      return session;
    },
  };
}

function verifyFailure(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) return 'expired';
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'signature does not verify';
  if (e instanceof joseErrors.JWTClaimValidationFailed) return `claim \`${e.claim}\` is not valid for this dashboard (${e.reason})`;
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  return 'malformed';
}

function sessionOf(p: JWTPayload, dashboard: string): EmbedSession {
  const tags = p['tags'];
  const origins = p['origins'];
  if (tags === null || typeof tags !== 'object' || Array.isArray(tags) || !Object.values(tags).every((v) => typeof v === 'string')) throw refused('malformed tags');
  if (!Array.isArray(origins) || !origins.every((o) => typeof o === 'string')) throw refused('malformed origins');
  return { dashboard, user: p.sub as string, tags: tags as SessionTags, origins: origins as string[], jti: p.jti as string, exp: p.exp as number };
}

const part = (value: unknown): string => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');

const ID_BYTES = 18;
/** CSPRNG bytes for token ids, drawn 4.5 KiB at a time; each byte serves one id only. */
let idPool = Buffer.alloc(0);
let idAt = 0;

/**
 * A fresh `jti`: 18 random bytes (144 bits), base64url. Drawn from a pool
 * refilled by `randomBytes` (the same CSPRNG) every 256 ids, because one
 * `randomBytes` call per token cost a fifth as much as its signature.
 */
function tokenId(): string {
  if (idAt + ID_BYTES > idPool.length) {
    idPool = randomBytes(ID_BYTES * 256);
    idAt = 0;
  }
  const id = idPool.toString('base64url', idAt, idAt + ID_BYTES);
  idAt += ID_BYTES;
  return id;
}

/**
 * A compact JWS (RFC 7515), signed synchronously with Node's crypto. jose signs
 * through WebCrypto, whose every call is a round trip to the thread pool: that,
 * not the signature, held minting to a third of its goal. Verification stays
 * with jose (`open`), and tests verify these tokens with jose and the JWKS.
 */
function signCompact(alg: SigningAlgorithm, header: string, claims: Record<string, unknown>, key: KeyObject): string {
  const input = `${header}.${part(claims)}`;
  const data = Buffer.from(input, 'ascii');
  // EdDSA takes no digest; ES256 is ECDSA over SHA-256 with the raw r‖s signature JWS requires, not DER.
  const signature = alg === 'EdDSA' ? sign(null, data, key) : sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}
