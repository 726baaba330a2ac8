/**
 * The two signed messages between workspaces, both compact JWTs under
 * Ed25519 (jose), each checked with a key trusted beforehand and never with
 * anything the message itself carries:
 *
 * - a **share token**, signed by the consumer: "workspace `iss` asks producer
 *   `aud` about share `share`", valid one minute. It is the consumer's
 *   credential for the feed and for reads; it names one share, so it opens
 *   nothing else.
 * - a **feed**, signed by the producer: the changes after the consumer's
 *   cursor, bound to the consumer (`aud`), the share, the cursor asked from
 *   and the nonce of that one request, so an old feed replayed later, or one
 *   meant for another consumer or share, is refused.
 */
import { SignJWT, decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type CryptoKey, type JWTPayload } from 'jose';
import { StewardError } from '../errors.js';
import type { WorkspaceIdentity } from './identity.js';
import type { FeedEntry } from './projection.js';

const TOKEN_TYPE = 'steward-share+jwt';
const FEED_TYPE = 'steward-share-feed+jwt';
/** A share token is good for one minute: long enough for one pull or read, short enough that a leaked one soon dies. */
export const SHARE_TOKEN_SECONDS = 60;
const FEED_SECONDS = 300;
/** `share` of a token that may only list the shares offered to its consumer. */
export const ANY_SHARE = '*';

export interface Feed {
  readonly share: string;
  readonly nonce: string;
  /** The cursor the consumer asked from (0 for a full feed). */
  readonly from: number;
  /** The producer's cursor when the feed was cut: the consumer's next `from`. */
  readonly to: number;
  readonly full: boolean;
  readonly revoked: boolean;
  readonly entries: readonly FeedEntry[];
}

const refused = (why: string): StewardError => new StewardError('STEWARD_E_UNAUTHENTICATED', `share token refused: ${why}`);
const feedRefused = (why: string): StewardError => new StewardError('STEWARD_E_FORBIDDEN', `feed refused: ${why}`);

export async function signShareToken(me: WorkspaceIdentity, producerKey: string, share: string): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  return new SignJWT({ share })
    .setProtectedHeader({ alg: 'EdDSA', typ: TOKEN_TYPE })
    .setIssuer(me.publicKey)
    .setAudience(producerKey)
    .setIssuedAt(iat)
    .setExpirationTime(iat + SHARE_TOKEN_SECONDS)
    .sign(me.privateKey);
}

/**
 * Who sent a share token and for which share. `keyOf` finds the verifying key
 * of a trusted peer by its public key (undefined: not trusted). Nothing in the
 * token is believed before its signature verifies under that key.
 */
export async function verifyShareToken(
  token: string,
  me: Pick<WorkspaceIdentity, 'publicKey'>,
  keyOf: (publicKey: string) => Promise<{ readonly peer: string; readonly key: CryptoKey } | undefined>,
): Promise<{ readonly peer: string; readonly share: string }> {
  if (token.length > 4096) throw refused('too long');
  let iss: unknown;
  try {
    const header = decodeProtectedHeader(token);
    if (header.alg !== 'EdDSA' || header.typ !== TOKEN_TYPE) throw refused('not an EdDSA share token');
    iss = decodeJwt(token).iss;
  } catch (e) {
    if (e instanceof StewardError) throw e;
    throw refused('malformed');
  }
  const trusted = typeof iss === 'string' ? await keyOf(iss) : undefined;
  if (trusted === undefined) throw refused('signed by a workspace this one does not trust');
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, trusted.key, {
      algorithms: ['EdDSA'],
      typ: TOKEN_TYPE,
      issuer: iss as string,
      audience: me.publicKey,
      requiredClaims: ['exp', 'iat', 'share'],
      maxTokenAge: SHARE_TOKEN_SECONDS,
    }));
  } catch (e) {
    throw refused(verifyFailure(e));
  }
  const share = payload['share'];
  if (typeof share !== 'string') throw refused('malformed share claim');
  return { peer: trusted.peer, share };
}

export async function signFeed(me: WorkspaceIdentity, consumerKey: string, feed: Feed): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  return new SignJWT({ feed })
    .setProtectedHeader({ alg: 'EdDSA', typ: FEED_TYPE })
    .setIssuer(me.publicKey)
    .setAudience(consumerKey)
    .setIssuedAt(iat)
    .setExpirationTime(iat + FEED_SECONDS)
    .sign(me.privateKey);
}

/**
 * The feed a producer answered, checked against what this consumer asked:
 * signed by the trusted producer key, addressed to us, for this share, from
 * our cursor, with our request's nonce, and its entries in order after it.
 */
export async function verifyFeed(
  jwt: string,
  expect: { readonly producerKey: string; readonly producer: CryptoKey; readonly me: string; readonly share: string; readonly from: number; readonly nonce: string },
): Promise<Feed> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(jwt, expect.producer, { algorithms: ['EdDSA'], typ: FEED_TYPE, issuer: expect.producerKey, audience: expect.me, requiredClaims: ['exp', 'iat'] }));
  } catch (e) {
    throw feedRefused(`${verifyFailure(e)} (not signed by the trusted key of this producer, or not for this workspace)`);
  }
  const feed = payload['feed'] as Feed | undefined;
  if (feed === undefined || typeof feed !== 'object' || !Array.isArray(feed.entries)) throw feedRefused('malformed');
  if (feed.share !== expect.share) throw feedRefused(`it is for share \`${String(feed.share)}\`, not \`${expect.share}\``);
  if (feed.nonce !== expect.nonce) throw feedRefused('it answers another request (a replayed feed)');
  if (feed.from !== expect.from || !Number.isSafeInteger(feed.to) || feed.to < feed.from) throw feedRefused(`it starts at cursor ${String(feed.from)}, not ${expect.from}`);
  let last = feed.from;
  for (const e of feed.entries) {
    if (!Number.isSafeInteger(e.seq) || e.seq <= last || e.seq > feed.to) throw feedRefused('entries out of order');
    last = e.seq;
  }
  return feed;
}

function verifyFailure(e: unknown): string {
  if (e instanceof StewardError) return e.message;
  if (e instanceof joseErrors.JWTExpired) return 'expired';
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'signature does not verify';
  if (e instanceof joseErrors.JWTClaimValidationFailed) return `claim \`${e.claim}\` is not valid (${e.reason})`;
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  return 'malformed';
}
