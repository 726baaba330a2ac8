/**
 * The address a request comes from, for counting failed authentications and
 * rate limits per client.
 *
 * By default it is the socket's peer: forwarding headers are written by the
 * client and cannot be trusted. Behind a reverse proxy every request has the
 * proxy's address, so one client's failures would lock everyone out. With
 * `STEWARD_TRUSTED_PROXIES` (exact addresses of the proxies), a request whose
 * peer is one of them is counted against the address the proxies recorded in
 * `X-Forwarded-For`: the right-most entry that is not itself a trusted proxy
 * (entries left of it were written by the client and are ignored). A header
 * that is missing, too long or holds a non-address there leaves the peer.
 */
import { isIP } from 'node:net';
import { StewardError } from '../errors.js';

export const TRUSTED_PROXIES_ENV = 'STEWARD_TRUSTED_PROXIES';

export type TrustedProxies = ReadonlySet<string>;

/** What of a request the address needs (a Hono context is one). */
export interface AddressedRequest {
  readonly env?: { readonly incoming?: { readonly socket?: { readonly remoteAddress?: string | undefined } } } | undefined;
  readonly req: { header(name: string): string | undefined };
}

export type ClientAddress = (c: AddressedRequest) => string;

const MAX_FORWARDED = 2048;

/** `::ffff:10.0.0.1` and `10.0.0.1` are one address; IPv6 compares in lower case. */
function canonical(address: string): string {
  const a = address.trim().toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  return mapped === null ? a : (mapped[1] as string);
}

export function parseTrustedProxies(entries: readonly string[]): TrustedProxies {
  const out = new Set<string>();
  for (const entry of entries.map((e) => e.trim()).filter((e) => e !== '')) {
    if (isIP(entry) === 0) {
      throw new StewardError('STEWARD_E_CONFIG', `${TRUSTED_PROXIES_ENV}: \`${entry}\` is not an IP address (list the proxies' exact addresses, comma-separated; ranges are not accepted)`);
    }
    out.add(canonical(entry));
  }
  return out;
}

export function trustedProxiesFromEnv(env: NodeJS.ProcessEnv = process.env): TrustedProxies {
  const raw = env[TRUSTED_PROXIES_ENV]?.trim() ?? '';
  return parseTrustedProxies(raw === '' ? [] : raw.split(','));
}

/** The client's address given the socket peer and the `X-Forwarded-For` header (pure, for tests). */
export function clientAddressOf(peer: string, forwardedFor: string | undefined, trusted: TrustedProxies): string {
  if (trusted.size === 0 || !trusted.has(canonical(peer)) || forwardedFor === undefined || forwardedFor.length > MAX_FORWARDED) return peer;
  const hops = forwardedFor.split(',').map(canonical);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] as string;
    if (isIP(hop) === 0) return peer;
    if (!trusted.has(hop)) return hop;
  }
  return peer;
}

export function clientAddress(trusted: TrustedProxies): ClientAddress {
  return (c) => {
    const peer = c.env?.incoming?.socket?.remoteAddress ?? 'in-process';
    return clientAddressOf(peer, c.req.header('x-forwarded-for'), trusted);
  };
}
