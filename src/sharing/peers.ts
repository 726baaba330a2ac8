/**
 * Trusted workspaces, by name and public key (`steward share trust`). Trust
 * is exchanged once, out of band: a producer shares only with a workspace it
 * trusts and accepts share tokens only under that workspace's key; a consumer
 * accepts feeds only under the key it trusted for that producer, and pulls
 * from the URL it was given.
 */
import { REGION_PATTERN } from '../policy/model.js';
import type { CryptoKey } from 'jose';
import { StewardError } from '../errors.js';
import type { Db } from '../store/db.js';
import { importPublicKey } from './identity.js';

export const PEER_NAME = /^[a-z][a-z0-9_-]{0,39}$/;

export interface Peer {
  readonly name: string;
  readonly publicKey: string;
  /** Where to pull from when this peer is a producer; null for a consumer only. */
  readonly url: string | null;
  /** Where the workspace runs, as its admin declared when trusting it; null when not declared (docs/residency.md). */
  readonly region: string | null;
  readonly lastPullAt: string | null;
  readonly lastError: string | null;
}

export interface PeerStore {
  trust(input: { name: string; publicKey: string; url?: string; region?: string }): Promise<Peer>;
  get(name: string): Promise<Peer | undefined>;
  list(): Promise<Peer[]>;
  /** The peer holding `publicKey` and its verifying key, or undefined when no trusted peer holds it. */
  byKey(publicKey: string): Promise<{ readonly peer: string; readonly key: CryptoKey } | undefined>;
}

interface Row {
  name: string;
  public_key: string;
  url: string | null;
  region: string | null;
  last_pull_at: string | Date | null;
  last_error: string | null;
}

const toPeer = (r: Row): Peer => ({
  name: r.name,
  publicKey: r.public_key,
  url: r.url,
  region: r.region,
  lastPullAt: r.last_pull_at === null ? null : new Date(r.last_pull_at).toISOString(),
  lastError: r.last_error,
});

/** A producer URL: http(s) with a host, no credentials, query or fragment; kept as its origin plus path. */
export function checkPeerUrl(url: string): string {
  let u: URL | undefined;
  try {
    u = new URL(url);
  } catch {
    u = undefined;
  }
  if (u === undefined || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') {
    throw new StewardError('STEWARD_E_VALIDATION', `url: \`${url.slice(0, 200)}\` is not an http(s) URL without credentials, query or fragment`, { details: [{ path: 'url', message: 'invalid' }] });
  }
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

export function createPeerStore(db: Db, self: () => Promise<string>): PeerStore {
  return {
    async trust(input) {
      const name = input.name.trim().toLowerCase();
      if (!PEER_NAME.test(name)) {
        throw new StewardError('STEWARD_E_VALIDATION', `name: \`${input.name}\` must be 1 to 40 lowercase letters, digits, \`_\` or \`-\`, starting with a letter`, { details: [{ path: 'name', message: 'invalid' }] });
      }
      await importPublicKey(input.publicKey);
      if (input.publicKey === (await self())) throw new StewardError('STEWARD_E_VALIDATION', 'publicKey: that is this workspace\'s own key', { details: [{ path: 'publicKey', message: 'own key' }] });
      const url = input.url === undefined ? null : checkPeerUrl(input.url);
      const region = input.region === undefined ? null : input.region.trim().toLowerCase();
      if (region !== null && !REGION_PATTERN.test(region)) {
        throw new StewardError('STEWARD_E_VALIDATION', `region: \`${input.region}\` must be a region name (lowercase letters, digits and \`-\`, e.g. \`eu-west-1\`)`, { details: [{ path: 'region', message: 'invalid' }] });
      }
      const other = (await db.query<Row>('SELECT * FROM steward.share_peers WHERE public_key = $1 AND name <> $2', [input.publicKey, name])).rows[0];
      if (other !== undefined) throw new StewardError('STEWARD_E_ALREADY_EXISTS', `that key is already trusted as \`${other.name}\``);
      const existing = (await db.query<Row>('SELECT * FROM steward.share_peers WHERE name = $1', [name])).rows[0];
      // A name keeps its key: re-pointing a trusted name at another key would hand that key the name's shares.
      if (existing !== undefined && existing.public_key !== input.publicKey) {
        throw new StewardError('STEWARD_E_CONFLICT', `\`${name}\` is already trusted with another key; its shares stay bound to that key`);
      }
      const { rows } = await db.query<Row>(
        `INSERT INTO steward.share_peers (name, public_key, url, region, next_pull_at) VALUES ($1, $2, $3, $4, CASE WHEN $3::text IS NULL THEN NULL ELSE now() END)
         ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, region = EXCLUDED.region, next_pull_at = EXCLUDED.next_pull_at RETURNING *`,
        [name, input.publicKey, url, region],
      );
      return toPeer(rows[0] as Row);
    },
    async get(name) {
      const r = (await db.query<Row>('SELECT * FROM steward.share_peers WHERE name = $1', [name])).rows[0];
      return r === undefined ? undefined : toPeer(r);
    },
    async list() {
      return (await db.query<Row>('SELECT * FROM steward.share_peers ORDER BY name')).rows.map(toPeer);
    },
    async byKey(publicKey) {
      const r = (await db.query<Row>('SELECT * FROM steward.share_peers WHERE public_key = $1', [publicKey])).rows[0];
      return r === undefined ? undefined : { peer: r.name, key: await importPublicKey(r.public_key) };
    },
  };
}
