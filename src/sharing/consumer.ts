/**
 * The consumer's side: pulling the shares a trusted producer offers into
 * local catalogs, by hand (`steward share pull`) or on the scheduler's loop.
 *
 * One pull of a producer at a time, across processes: the producer's row is
 * leased (`lease_until`, taken by a conditional UPDATE that only one process
 * can win, the lease pattern of the access scheduler's timers),
 * so two feeds of one share are never applied out of order. A feed is
 * applied in one state change and the cursor advances only after it commits;
 * a process killed in between pulls the same entries again, and applying an
 * entry twice changes nothing (entities have natural keys), so a crash leaves
 * neither gaps nor duplicates. Every `FULL_EVERY_MS` a pull is a full
 * reconciliation: the producer's whole state, and whatever it does not name
 * is removed here.
 */
import { randomBytes } from 'node:crypto';
import { StewardError, isStewardError, notFound } from '../errors.js';
import type { Change } from '../policy/changes.js';
import type { Db } from '../store/db.js';
import type { StateService } from '../workspace/state-service.js';
import type { IdentityStore } from './identity.js';
import { importPublicKey } from './identity.js';
import type { Peer, PeerStore } from './peers.js';
import type { FeedEntry } from './projection.js';
import { dropReplica, replicaChanges, type Conflict } from './replica.js';
import { ANY_SHARE, signShareToken, verifyFeed, type Feed } from './signed.js';
import type { RemoteRows, RemoteTables } from '../gateway/types.js';

export const DEFAULT_PULL_INTERVAL_MS = 1000;
export const FULL_EVERY_MS = 60_000;
/** A pull holds its producer this long, renewed before each share it applies; a killed process's lease lapses after it. */
const LEASE_SECONDS = 10;
const HTTP_TIMEOUT_MS = 30_000;

export interface Subscription {
  readonly peer: string;
  readonly share: string;
  readonly catalog: string;
  readonly status: 'active' | 'revoked' | 'conflict';
  readonly cursor: number;
  readonly tables: number;
  readonly conflicts: readonly Conflict[];
  readonly lastPullAt: string | null;
  readonly lastError: string | null;
}

export interface PullReport {
  readonly peer: string;
  readonly share: string;
  readonly catalog: string;
  readonly status: Subscription['status'];
  readonly from: number;
  readonly to: number;
  readonly entries: number;
  readonly full: boolean;
  readonly conflicts: readonly Conflict[];
  readonly error?: string;
}

export interface Consumer {
  /** Pulls every share `peer` offers (every producer when omitted), now. */
  pull(opts: { readonly peer?: string; readonly full?: boolean }, actor: string): Promise<PullReport[]>;
  subscriptions(): Promise<Subscription[]>;
  /** The local catalogs replication owns (read-only for everything else). */
  replicaCatalogs(): Promise<Set<string>>;
  /** Scheduler hooks: pull producers whose time has come; `sweep` has nothing extra to do (full pulls ride on runDue). */
  runDue(): Promise<number>;
  sweep(): Promise<number>;
  nextDue(): Promise<number | null>;
  /** A read through the producer's gateway (`POST /v1/sharing/query/:share`), with a share token. */
  query(peer: string, share: string, sql: string): Promise<unknown>;
  /** The replicas as the gateway's remote tables: their rows come from the producer (`POST /v1/sharing/rows/:share`). */
  readonly remote: RemoteTables;
}

interface SubRow {
  peer: string;
  share: string;
  catalog: string;
  status: Subscription['status'];
  cursor: string | number;
  tables: number;
  conflicts: Conflict[];
  last_pull_at: string | Date | null;
  last_error: string | null;
}

const toSub = (r: SubRow): Subscription => ({
  peer: r.peer,
  share: r.share,
  catalog: r.catalog,
  status: r.status,
  cursor: Number(r.cursor),
  tables: r.tables,
  conflicts: r.conflicts,
  lastPullAt: r.last_pull_at === null ? null : new Date(r.last_pull_at).toISOString(),
  lastError: r.last_error,
});

/** Local catalogs filled by replication, with the `peer/share` that fills each. */
export async function readReplicaOwners(db: Pick<Db, 'query'>): Promise<Map<string, string>> {
  const { rows } = await db.query<{ catalog: string; peer: string; share: string; status: string }>('SELECT catalog, peer, share, status FROM steward.share_subscriptions');
  // A conflicting subscription never filled its catalog: the local one of that name is not a replica.
  return new Map(rows.filter((r) => r.status !== 'conflict').map((r) => [r.catalog, `${r.peer}/${r.share}`]));
}

export const replicaCatalog = (peer: string, share: string): string => `${peer}-${share}`;

export function createConsumer(deps: {
  readonly db: Db;
  readonly state: Pick<StateService, 'snapshot' | 'change' | 'log'>;
  readonly identity: IdentityStore;
  readonly peers: PeerStore;
  readonly pullIntervalMs?: number;
}): Consumer {
  const { db } = deps;
  const interval = deps.pullIntervalMs ?? DEFAULT_PULL_INTERVAL_MS;

  const call = async (peer: Peer, share: string, method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal): Promise<unknown> => {
    if (peer.url === null) throw new StewardError('STEWARD_E_VALIDATION', `trusted workspace \`${peer.name}\` has no URL to pull from; trust it again with --url`);
    const token = await signShareToken(await deps.identity.get(), peer.publicKey, share);
    let res: Response;
    try {
      res = await fetch(`${peer.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: signal === undefined ? AbortSignal.timeout(HTTP_TIMEOUT_MS) : AbortSignal.any([signal, AbortSignal.timeout(HTTP_TIMEOUT_MS)]),
        redirect: 'error',
      });
    } catch (e) {
      throw new StewardError('STEWARD_E_SOURCE', `producer \`${peer.name}\` is unreachable: ${(e as Error).message}`, { cause: e });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new StewardError(res.status === 404 ? 'STEWARD_E_NOT_FOUND' : 'STEWARD_E_SOURCE', `producer \`${peer.name}\` answered ${res.status}: ${err?.message ?? 'no message'}`);
    }
    return json;
  };

  const lease = async (peer: string): Promise<string | undefined> => {
    const token = randomBytes(12).toString('base64url');
    const { rows } = await db.query<{ name: string }>(
      `UPDATE steward.share_peers SET lease_until = now() + interval '${LEASE_SECONDS} seconds', lease_token = $2
        WHERE name = $1 AND (lease_until IS NULL OR lease_until < now()) RETURNING name`,
      [peer, token],
    );
    return rows.length === 0 ? undefined : token;
  };

  const release = async (peer: string, token: string, full: boolean, error: string | null): Promise<void> => {
    await db.query(
      `UPDATE steward.share_peers SET lease_until = NULL, lease_token = NULL, last_pull_at = now(), last_error = $3,
              last_full_at = CASE WHEN $4::boolean THEN now() ELSE last_full_at END,
              next_pull_at = now() + ($5::int * interval '1 millisecond')
        WHERE name = $1 AND lease_token = $2`,
      [peer, token, error, full, interval],
    );
  };

  /**
   * The subscription row of a share, created on first sight. A catalog of the
   * replica's name that exists here before then is local: the subscription
   * starts in conflict and never touches it. From the row's creation on, the
   * name is the replica's (the read-only guard refuses a local catalog of it).
   */
  const subscription = async (peer: string, share: string): Promise<Subscription> => {
    const catalog = replicaCatalog(peer, share);
    const taken = (await deps.state.snapshot()).world.catalogs.some((c) => c.name === catalog);
    await db.query(`INSERT INTO steward.share_subscriptions (peer, share, catalog, status) VALUES ($1, $2, $3, $4) ON CONFLICT (peer, share) DO NOTHING`, [peer, share, catalog, taken ? 'conflict' : 'active']);
    const row = (await db.query<SubRow>('SELECT * FROM steward.share_subscriptions WHERE peer = $1 AND share = $2', [peer, share])).rows[0] as SubRow;
    return toSub(row);
  };

  const record = async (s: Subscription, fields: { status: Subscription['status']; cursor: number; conflicts: readonly Conflict[]; error: string | null }): Promise<void> => {
    const snap = await deps.state.snapshot();
    const tables = snap.world.tables.filter((t) => t.catalog === s.catalog).length;
    await db.query(
      `UPDATE steward.share_subscriptions SET status = $3, cursor = $4, conflicts = $5, last_error = $6, tables = $7, last_pull_at = now() WHERE peer = $1 AND share = $2`,
      [s.peer, s.share, fields.status, fields.cursor, JSON.stringify(fields.conflicts.slice(0, 1000)), fields.error, tables],
    );
  };

  /** Applies a verified feed in one change, or entry by entry when the whole is refused, so one bad entry blocks nothing else. */
  const apply = async (s: Subscription, peer: Peer, feed: Feed, actor: string): Promise<Conflict[]> => {
    const target = { catalog: s.catalog, description: `replicated from \`${peer.name}\`, share \`${s.share}\`` };
    const commit = async (entries: readonly FeedEntry[], full: boolean): Promise<Conflict[]> => {
      let conflicts: Conflict[] = [];
      await deps.state.change({
        actor,
        action: 'share.pull',
        resource: s.catalog,
        details: { peer: peer.name, share: s.share, from: feed.from, to: feed.to, entries: entries.length, full },
        build: (world): Change[] => {
          const plan = replicaChanges(world, target, entries, full);
          conflicts = plan.conflicts;
          return plan.changes;
        },
      });
      return conflicts;
    };
    try {
      return await commit(feed.entries, feed.full);
    } catch (e) {
      if (!isStewardError(e) || e.status >= 500) throw e;
      const conflicts: Conflict[] = [];
      for (const entry of feed.entries) {
        try {
          conflicts.push(...(await commit([entry], false)));
        } catch (err) {
          if (!isStewardError(err) || err.status >= 500) throw err;
          conflicts.push({ key: entry.key, message: err.message });
        }
      }
      return conflicts;
    }
  };

  const pullShare = async (peer: Peer, offer: { name: string; status: string }, full: boolean, actor: string, renew: () => Promise<void>): Promise<PullReport> => {
    const s = await subscription(peer.name, offer.name);
    const base = { peer: peer.name, share: s.share, catalog: s.catalog, from: s.cursor, to: s.cursor, entries: 0, full, conflicts: [] as Conflict[] };
    if (s.status === 'revoked') return { ...base, status: 'revoked' };
    if (s.status === 'conflict' && (await deps.state.snapshot()).world.catalogs.some((c) => c.name === s.catalog)) {
      const error = `local catalog \`${s.catalog}\` already exists; drop or rename it to receive share \`${s.share}\``;
      await record(s, { status: 'conflict', cursor: s.cursor, conflicts: [], error });
      return { ...base, status: 'conflict', error };
    }
    const from = full ? 0 : s.cursor;
    const nonce = randomBytes(18).toString('base64url');
    const answer = (await call(peer, s.share, 'GET', `/v1/sharing/feed/${encodeURIComponent(s.share)}?from=${from}&nonce=${nonce}&full=${full ? 'true' : 'false'}`)) as { feed?: unknown };
    const me = await deps.identity.get();
    const feed = await verifyFeed(typeof answer?.feed === 'string' ? answer.feed : '', { producerKey: peer.publicKey, producer: await importPublicKey(peer.publicKey), me: me.publicKey, share: s.share, from, nonce });
    await renew();
    if (feed.revoked) {
      await deps.state.change({ actor, action: 'share.pull.revoked', resource: s.catalog, details: { peer: peer.name, share: s.share }, build: (world) => dropReplica(world, s.catalog) });
      await record(s, { status: 'revoked', cursor: feed.to, conflicts: [], error: null });
      return { ...base, status: 'revoked', to: feed.to, full: feed.full };
    }
    const conflicts = await apply(s, peer, feed, actor);
    await record(s, { status: 'active', cursor: feed.to, conflicts, error: null });
    return { ...base, status: 'active', to: feed.to, entries: feed.entries.length, full: feed.full, conflicts };
  };

  const pullPeer = async (peer: Peer, full: boolean, actor: string, renew: () => Promise<void>): Promise<PullReport[]> => {
    const listing = (await call(peer, ANY_SHARE, 'GET', '/v1/sharing/offers')) as { shares?: { name: string; status: string }[] };
    const reports: PullReport[] = [];
    for (const offer of listing?.shares ?? []) {
      if (typeof offer?.name !== 'string' || !/^[a-z][a-z0-9_-]{0,39}$/.test(offer.name)) continue;
      try {
        reports.push(await pullShare(peer, offer, full, actor, renew));
      } catch (e) {
        const error = (e as Error).message;
        const s = await subscription(peer.name, offer.name);
        await db.query('UPDATE steward.share_subscriptions SET last_error = $3 WHERE peer = $1 AND share = $2', [peer.name, offer.name, error]);
        await deps.state.log([{ actor, action: 'share.pull', resource: s.catalog, result: 'error', reason: error, details: { peer: peer.name, share: offer.name } }]);
        reports.push({ peer: peer.name, share: s.share, catalog: s.catalog, status: s.status, from: s.cursor, to: s.cursor, entries: 0, full, conflicts: [], error });
      }
    }
    return reports;
  };

  /** Pulls `peer` under its lease; undefined when another pull holds it. */
  const leasedPull = async (peer: Peer, full: boolean, actor: string): Promise<PullReport[] | undefined> => {
    const token = await lease(peer.name);
    if (token === undefined) return undefined;
    let error: string | null = null;
    try {
      return await pullPeer(peer, full, actor, async () => {
        const { rows } = await db.query(`UPDATE steward.share_peers SET lease_until = now() + interval '${LEASE_SECONDS} seconds' WHERE name = $1 AND lease_token = $2 RETURNING name`, [peer.name, token]);
        // Our lease lapsed and another pull may have applied newer feeds: applying this one now could go backwards.
        if (rows.length === 0) throw new StewardError('STEWARD_E_CONFLICT', `the pull of \`${peer.name}\` took longer than its lease; the next pull resumes from the cursor`);
      });
    } catch (e) {
      error = (e as Error).message;
      throw e;
    } finally {
      await release(peer.name, token, full && error === null, error);
    }
  };

  /** Another pull of this producer may be running (the loop, or another process): wait for it rather than apply feeds out of order. */
  const waitAndPull = async (peer: Peer, full: boolean, actor: string): Promise<PullReport[]> => {
    const deadline = Date.now() + (LEASE_SECONDS + 5) * 1000;
    for (;;) {
      const r = await leasedPull(peer, full, actor);
      if (r !== undefined) return r;
      if (Date.now() > deadline) throw new StewardError('STEWARD_E_BUSY', `another pull of \`${peer.name}\` is running; retry`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  return {
    async pull(opts, actor) {
      const peers = opts.peer === undefined ? (await deps.peers.list()).filter((p) => p.url !== null) : [await deps.peers.get(opts.peer)];
      const out: PullReport[] = [];
      for (const peer of peers) {
        if (peer === undefined) throw notFound('trusted workspace', opts.peer ?? '');
        try {
          out.push(...(await waitAndPull(peer, opts.full === true, actor)));
        } catch (e) {
          // One unreachable or misbehaving producer is reported and blocks nothing else.
          if (!isStewardError(e) || e.status >= 500) throw e;
          out.push({ peer: peer.name, share: '*', catalog: '', status: 'active', from: 0, to: 0, entries: 0, full: opts.full === true, conflicts: [], error: e.message });
        }
      }
      return out;
    },

    async subscriptions() {
      return (await db.query<SubRow>('SELECT * FROM steward.share_subscriptions ORDER BY peer, share')).rows.map(toSub);
    },

    async replicaCatalogs() {
      return new Set((await readReplicaOwners(db)).keys());
    },

    async runDue() {
      const { rows } = await db.query<{ name: string; full: boolean }>(
        `SELECT name, (last_full_at IS NULL OR last_full_at < now() - ($1::int * interval '1 millisecond')) AS full FROM steward.share_peers
          WHERE url IS NOT NULL AND next_pull_at <= now() AND (lease_until IS NULL OR lease_until < now()) ORDER BY next_pull_at LIMIT 4`,
        [FULL_EVERY_MS],
      );
      let pulled = 0;
      for (const r of rows) {
        const peer = await deps.peers.get(r.name);
        if (peer === undefined) continue;
        try {
          if ((await leasedPull(peer, r.full, 'system:share-pull')) !== undefined) pulled++;
        } catch {
          // Recorded on the peer row (`last_error`, shown by `steward share status`); the next tick tries again.
        }
      }
      return pulled;
    },

    sweep: async () => 0,

    async nextDue() {
      const { rows } = await db.query<{ at: string | Date | null }>('SELECT min(next_pull_at) AS at FROM steward.share_peers WHERE url IS NOT NULL');
      const at = rows[0]?.at;
      return at === null || at === undefined ? null : new Date(at).getTime();
    },

    async query(peerName, share, sql) {
      const peer = await deps.peers.get(peerName);
      if (peer === undefined) throw notFound('trusted workspace', peerName);
      return call(peer, share, 'POST', `/v1/sharing/query/${encodeURIComponent(share)}`, { sql });
    },

    remote: {
      async catalogs() {
        const { rows } = await db.query<{ catalog: string }>(`SELECT catalog FROM steward.share_subscriptions WHERE status = 'active'`);
        return new Set(rows.map((r) => r.catalog));
      },
      async fetch(read, signal) {
        const full = `${read.catalog}.${read.database}.${read.table}`;
        const sub = (await db.query<SubRow>(`SELECT * FROM steward.share_subscriptions WHERE catalog = $1 AND status = 'active'`, [read.catalog])).rows[0];
        const peer = sub === undefined ? undefined : await deps.peers.get(sub.peer);
        if (sub === undefined || peer === undefined) throw new StewardError('STEWARD_E_NOT_FOUND', `table \`${full}\` not found or not permitted`);
        const answer = await call(peer, sub.share, 'POST', `/v1/sharing/rows/${encodeURIComponent(sub.share)}`, { database: read.database, table: read.table, columns: read.columns }, signal);
        return rowsOf(answer, peer.name);
      },
    },
  };
}

/** The producer's answer to a rows request, in shape (`remote.ts` checks the columns against the request). */
function rowsOf(answer: unknown, peer: string): RemoteRows {
  const a = answer as { columns?: unknown; rows?: unknown; truncated?: unknown } | undefined;
  const columns = Array.isArray(a?.columns) ? a.columns : undefined;
  const okColumns = columns?.every((c: { name?: unknown; type?: unknown }) => typeof c?.name === 'string' && typeof c?.type === 'string') === true;
  if (!okColumns || !Array.isArray(a?.rows) || !a.rows.every(Array.isArray) || typeof a?.truncated !== 'boolean') {
    throw new StewardError('STEWARD_E_SOURCE', `producer \`${peer}\` answered rows in an unknown shape`);
  }
  return { columns: columns as RemoteRows['columns'], rows: a.rows as RemoteRows['rows'], truncated: a.truncated };
}
