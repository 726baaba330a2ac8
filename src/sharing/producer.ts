/**
 * The producer's side: shares and their change feeds.
 *
 * A share is a principal of its own, `user:share.<name>`, holding grants on
 * what is shared (and a data filter `share-<name>` where the share limits a
 * table's columns or rows). Everything the consumer gets, metadata and rows,
 * is decided for that principal by the engine, so the share's limits, the
 * producer's guardrails and the rest of its policy are the ceiling.
 *
 * The feed is materialized on demand: serving a pull projects the share
 * (`projection.ts`) when the policy version moved since the last one, and
 * each key whose content changed gets the next sequence number, under the
 * share row's lock (`FOR UPDATE`), so concurrent pulls and servers give out
 * each number once and the cursor only grows.
 */
import { createHash } from 'node:crypto';
import { StewardError, notFound } from '../errors.js';
import type { Change } from '../policy/changes.js';
import { stableJson } from '../policy/changes.js';
import type { DataFilter, Grant, PolicyWorld, PrincipalRef, Table } from '../policy/model.js';
import { findTable } from '../policy/model.js';
import type { Predicate } from '../policy/predicate.js';
import type { Db } from '../store/db.js';
import type { StateService } from '../workspace/state-service.js';
import { admitShareTarget, screenShareTables, shareResidencyEntry } from './admit.js';
import type { DecisionLogEntry } from '../store/decision-log.js';
import type { IdentityStore } from './identity.js';
import type { Peer, PeerStore } from './peers.js';
import { projectShare, type FeedEntry, type ShareScope, type SharedEntity } from './projection.js';
import { signFeed, type Feed } from './signed.js';

export const SHARE_NAME = /^[a-z][a-z0-9_-]{0,39}$/;

export interface ShareSpec {
  readonly databases: readonly string[];
  readonly tables: readonly string[];
  /** By `database.table`: columns the consumer never sees. */
  readonly excludeColumns: Readonly<Record<string, readonly string[]>>;
  /** By `database.table`: the rows the consumer may read (SQL predicate). */
  readonly rows: Readonly<Record<string, string>>;
  /** The consumer may read the files of tables the share does not limit directly (same storage); see projection.ts. */
  readonly directFiles?: boolean;
}

export interface ShareInput {
  readonly name: string;
  readonly peer: string;
  /** `catalog.database` (a whole database) and `catalog.database.table`, all of one catalog. */
  readonly objects: readonly string[];
  /** By `catalog.database.table`. */
  readonly excludeColumns?: Readonly<Record<string, readonly string[]>>;
  readonly rows?: Readonly<Record<string, string>>;
  readonly directFiles?: boolean;
}

export interface ShareRow {
  readonly name: string;
  readonly peer: string;
  readonly catalog: string;
  readonly spec: ShareSpec;
  readonly status: 'active' | 'revoked';
  readonly cursor: number;
  readonly createdAt: string;
  readonly revokedAt: string | null;
  readonly lastServedAt: string | null;
  /** Tables the share names but keeps from its consumer now, and the residency guardrail that does (as of the last pull). */
  readonly withheld: readonly { readonly table: string; readonly guardrail: string }[];
}

export interface Producer {
  create(input: ShareInput, actor: string): Promise<ShareRow>;
  list(): Promise<ShareRow[]>;
  get(name: string): Promise<ShareRow | undefined>;
  revoke(name: string, actor: string): Promise<ShareRow>;
  /** The shares offered to `peer` (revoked ones too, so the consumer learns of the revocation). */
  offers(peer: string): Promise<{ name: string; status: string }[]>;
  /** The signed feed of `share` for `peer` after `from` (everything when `full`). */
  feed(peer: string, share: string, from: number, nonce: string, full: boolean): Promise<string>;
  /** The share a reader may use: active and offered to `peer`; anything else is not found. */
  active(peer: string, share: string): Promise<ShareRow>;
}

export const sharePrincipal = (name: string): PrincipalRef => `user:share.${name}`;
export const shareFilter = (name: string): string => `share-${name}`;

interface Row {
  name: string;
  peer: string;
  catalog: string;
  spec: ShareSpec;
  status: 'active' | 'revoked';
  cursor: string | number;
  published_version: string | number;
  created_at: string | Date;
  revoked_at: string | Date | null;
  last_served_at: string | Date | null;
  /** From `SELECT_SHARES` only. */
  withheld?: { key: string; digest: string }[] | null;
}

/** Shares with the tables they withhold for residency (share_entries rows `withheld:<guardrail>`). */
const SELECT_SHARES = `SELECT s.*, (SELECT json_agg(json_build_object('key', e.key, 'digest', e.digest) ORDER BY e.key) FROM steward.share_entries e
  WHERE e.share = s.name AND e.digest LIKE 'withheld:%') AS withheld FROM steward.shares s`;

const iso = (v: string | Date | null): string | null => (v === null ? null : new Date(v).toISOString());
const toShare = (r: Row): ShareRow => ({
  name: r.name,
  peer: r.peer,
  catalog: r.catalog,
  spec: r.spec,
  status: r.status,
  cursor: Number(r.cursor),
  createdAt: iso(r.created_at) as string,
  revokedAt: iso(r.revoked_at),
  lastServedAt: iso(r.last_served_at),
  withheld: (r.withheld ?? []).map((w) => ({ table: `${r.catalog}.${w.key.slice('table:'.length)}`, guardrail: w.digest.slice(WITHHELD.length) })),
});

const bad = (path: string, message: string): StewardError => new StewardError('STEWARD_E_VALIDATION', `${path}: ${message}`, { details: [{ path, message }] });

export function createProducer(deps: {
  readonly db: Db;
  readonly state: Pick<StateService, 'snapshot' | 'change' | 'log'>;
  readonly identity: IdentityStore;
  readonly peers: PeerStore;
  readonly parsePredicate: (sql: string) => Promise<Predicate>;
}): Producer {
  const { db } = deps;
  const get = async (name: string): Promise<ShareRow | undefined> => {
    const r = (await db.query<Row>(`${SELECT_SHARES} WHERE s.name = $1`, [name])).rows[0];
    return r === undefined ? undefined : toShare(r);
  };

  /**
   * Publishes the share's state as of `version`: the changed keys get the next sequence numbers. Tables the
   * residency guardrails keep from the target now are left out (a delete when they were published) and recorded as
   * `withheld:<guardrail>`, so each is reported once, when it is first withheld; the returned log entries say so.
   */
  const materialize = async (tx: Db, share: Row, target: Pick<Peer, 'name' | 'region'>, world: PolicyWorld, version: number, engine: Parameters<typeof projectShare>[1]): Promise<{ cursor: number; log: DecisionLogEntry[] }> => {
    let cursor = Number(share.cursor);
    if (Number(share.published_version) === version) return { cursor, log: [] };
    const scope: ShareScope = { catalog: share.catalog, databases: share.spec.databases, tables: share.spec.tables, principal: sharePrincipal(share.name), directFiles: share.spec.directFiles === true };
    const now = share.status === 'active' ? projectShare(world, engine, scope) : new Map<string, SharedEntity>();
    const tables = [...now.values()].flatMap((e) => (e.kind === 'table' ? [e] : []));
    const screened = screenShareTables({ peer: target.name, region: target.region }, world, share.catalog, tables);
    const { rows } = await tx.query<{ key: string; digest: string }>('SELECT key, digest FROM steward.share_entries WHERE share = $1', [share.name]);
    const before = new Map(rows.map((r) => [r.key, r.digest]));
    const log: DecisionLogEntry[] = [];
    const changed: { key: string; seq: number; digest: string; entity: SharedEntity | null }[] = [];
    const withheld = new Set<string>();
    for (const [table, v] of screened.withheld) {
      const key = `table:${table}`;
      now.delete(key);
      withheld.add(key);
      const digest = `${WITHHELD}${v.guardrail}`;
      if (before.get(key) === digest) continue;
      changed.push({ key, seq: ++cursor, digest, entity: null });
      log.push(shareResidencyEntry(v, share.name, target.name));
    }
    for (const v of screened.reported) if (!before.has(`table:${v.table.slice(share.catalog.length + 1)}`)) log.push(shareResidencyEntry(v, share.name, target.name));
    for (const [key, entity] of [...now].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const digest = digestOf(entity);
      if (before.get(key) !== digest) changed.push({ key, seq: ++cursor, digest, entity });
    }
    for (const [key, digest] of before) if (!now.has(key) && !withheld.has(key) && digest !== TOMBSTONE && !digest.startsWith(WITHHELD)) changed.push({ key, seq: ++cursor, digest: TOMBSTONE, entity: null });
    for (let i = 0; i < changed.length; i += 2000) {
      await tx.query(
        `INSERT INTO steward.share_entries (share, key, seq, digest, entity)
           SELECT $1, x.key, x.seq, x.digest, x.entity FROM jsonb_to_recordset($2::jsonb) AS x(key text, seq bigint, digest text, entity jsonb)
         ON CONFLICT (share, key) DO UPDATE SET seq = EXCLUDED.seq, digest = EXCLUDED.digest, entity = EXCLUDED.entity`,
        [share.name, JSON.stringify(changed.slice(i, i + 2000))],
      );
    }
    await tx.query('UPDATE steward.shares SET cursor = $2, published_version = $3 WHERE name = $1', [share.name, cursor, version]);
    return { cursor, log };
  };

  return {
    get,
    async list() {
      return (await db.query<Row>(`${SELECT_SHARES} ORDER BY s.name`)).rows.map(toShare);
    },

    async create(input, actor) {
      if (!SHARE_NAME.test(input.name)) throw bad('name', `\`${input.name}\` must be 1 to 40 lowercase letters, digits, \`_\` or \`-\`, starting with a letter`);
      const peer = await deps.peers.get(input.peer);
      if (peer === undefined) throw notFound('trusted workspace', input.peer);
      if ((await get(input.name)) !== undefined) throw new StewardError('STEWARD_E_ALREADY_EXISTS', `share \`${input.name}\` already exists`);
      const parsed = parseObjects(input);
      const predicates = new Map<string, Predicate>();
      for (const [t, sql] of Object.entries(parsed.spec.rows)) {
        try {
          predicates.set(t, await deps.parsePredicate(sql));
        } catch (e) {
          if (!(e instanceof StewardError)) throw e;
          throw new StewardError(e.code, `rows.${parsed.catalog}.${t}: ${e.message}`, { details: [{ path: `rows.${parsed.catalog}.${t}`, message: e.message }], cause: e });
        }
      }
      let reported: DecisionLogEntry[] = [];
      await deps.state.change({
        actor,
        action: 'share.create',
        resource: `share:${input.name}`,
        details: { peer: input.peer, objects: input.objects },
        build: (world) => {
          const tables = sharedTables(world, parsed.catalog, parsed.spec);
          reported = admitShareTarget({ peer: peer.name, publicKey: peer.publicKey, url: peer.url, region: peer.region }, tables, world, actor);
          return shareChanges(world, input.name, parsed.catalog, parsed.spec, predicates);
        },
      });
      // Report-only residency violations: allowed, and on the record.
      if (reported.length > 0) await deps.state.log(reported);
      await db.query('INSERT INTO steward.shares (name, peer, catalog, spec, status, created_by) VALUES ($1, $2, $3, $4, $5, $6)', [
        input.name,
        input.peer,
        parsed.catalog,
        JSON.stringify(parsed.spec),
        'active',
        actor,
      ]);
      return (await get(input.name)) as ShareRow;
    },

    async revoke(name, actor) {
      // The row first: every read and pull checks it, so reads stop when this commits, before the grants go.
      const { rows } = await db.query<Row>(`UPDATE steward.shares SET status = 'revoked', revoked_at = now() WHERE name = $1 AND status = 'active' RETURNING *`, [name]);
      if (rows.length === 0) {
        const s = await get(name);
        if (s === undefined) throw notFound('share', name);
        return s;
      }
      const principal = sharePrincipal(name);
      await deps.state.change({
        actor,
        action: 'share.revoke',
        resource: `share:${name}`,
        build: (world) => [
          ...world.grants.filter((g) => g.principal === principal).map((g): Change => ({ op: 'delete', kind: 'grant', key: g.id })),
          ...world.memberships.filter((m) => m.member === principal).map((m): Change => ({ op: 'delete', kind: 'membership', key: `${m.group}<${m.member}` })),
          ...world.filters.filter((f) => f.name === shareFilter(name)).map((f): Change => ({ op: 'delete', kind: 'filter', key: `${f.catalog}.${f.database}.${f.table}/${f.name}` })),
          ...(world.users.some((u) => `user:${u.name}` === principal) ? [{ op: 'delete', kind: 'user', key: principal.slice('user:'.length) } as Change] : []),
        ],
      });
      return (await get(name)) as ShareRow;
    },

    async offers(peer) {
      const { rows } = await db.query<{ name: string; status: string }>('SELECT name, status FROM steward.shares WHERE peer = $1 ORDER BY name', [peer]);
      return rows;
    },

    async active(peer, share) {
      const s = await get(share);
      // Another consumer's share, a revoked one and a missing one look alike: a consumer learns nothing about shares that are not its own.
      if (s === undefined || s.peer !== peer || s.status !== 'active') throw notFound('share', share);
      return s;
    },

    async feed(peer, shareName, from, nonce, full) {
      const me = await deps.identity.get();
      const consumer = await deps.peers.get(peer);
      if (consumer === undefined) throw notFound('share', shareName);
      // The snapshot before the transaction: an embedded store has one connection, which the transaction holds.
      const snap = await deps.state.snapshot();
      let residency: DecisionLogEntry[] = [];
      const feed = await db.transaction(async (tx): Promise<Feed> => {
        const share = (await tx.query<Row>('SELECT * FROM steward.shares WHERE name = $1 AND peer = $2 FOR UPDATE', [shareName, peer])).rows[0];
        if (share === undefined) throw notFound('share', shareName);
        const published = await materialize(tx, share, consumer, snap.world, snap.version, snap.engine);
        residency = published.log;
        const to = published.cursor;
        const whole = full || from > to;
        const { rows } = await tx.query<{ key: string; seq: string | number; entity: SharedEntity | null }>(
          whole
            ? 'SELECT key, seq, entity FROM steward.share_entries WHERE share = $1 AND entity IS NOT NULL ORDER BY seq'
            : 'SELECT key, seq, entity FROM steward.share_entries WHERE share = $1 AND seq > $2 ORDER BY seq',
          whole ? [shareName] : [shareName, from],
        );
        await tx.query('UPDATE steward.shares SET last_served_at = now() WHERE name = $1', [shareName]);
        const entries: FeedEntry[] = rows.map((r) => (r.entity === null ? { seq: Number(r.seq), key: r.key, op: 'delete' } : { seq: Number(r.seq), key: r.key, op: 'put', entity: r.entity }));
        return { share: shareName, nonce, from, to, full: whole, revoked: share.status === 'revoked', entries };
      });
      // Tables withheld for residency, once each: a decision-log entry, hence a security-lake event.
      if (residency.length > 0) await deps.state.log(residency);
      if (feed.entries.length > 0 || feed.revoked) {
        await deps.state.log([{ actor: `share:${peer}`, action: 'share.feed.serve', resource: `share:${shareName}`, result: 'ok', reason: `${feed.entries.length} entr(ies) after cursor ${from}`, details: { peer, from, to: feed.to, full: feed.full, revoked: feed.revoked } }]);
      }
      return signFeed(me, consumer.publicKey, feed);
    },
  };
}

const TOMBSTONE = 'deleted';
/** The digest prefix of a table kept out of the feed by a residency guardrail (`withheld:<guardrail>`). */
const WITHHELD = 'withheld:';

function digestOf(entity: SharedEntity): string {
  return createHash('sha256').update(stableJson(entity)).digest('base64url');
}

/** `catalog.database[.table]` objects → one catalog and the spec by `database[.table]`; limits only on tables named one by one. */
function parseObjects(input: ShareInput): { catalog: string; spec: ShareSpec } {
  if (input.objects.length === 0) throw bad('objects', 'name at least one table (`catalog.database.table`) or database (`catalog.database`)');
  let catalog: string | undefined;
  const databases: string[] = [];
  const tables: string[] = [];
  input.objects.forEach((o, i) => {
    const parts = o.trim().toLowerCase().split('.');
    if ((parts.length !== 2 && parts.length !== 3) || parts.some((p) => p === '')) throw bad(`objects[${i}]`, `\`${o}\` is not \`catalog.database\` or \`catalog.database.table\``);
    if (catalog !== undefined && parts[0] !== catalog) throw bad(`objects[${i}]`, `\`${o}\` is in another catalog than \`${catalog}\`; a share covers one catalog`);
    catalog = parts[0] as string;
    (parts.length === 2 ? databases : tables).push(parts.slice(1).join('.'));
  });
  const local = (path: string, key: string): string => {
    const parts = key.trim().toLowerCase().split('.');
    const t = parts.slice(1).join('.');
    if (parts.length !== 3 || parts[0] !== catalog || !tables.includes(t)) throw bad(path, `\`${key}\` is not one of the tables the share names one by one`);
    if (databases.includes(parts[1] as string)) throw bad(path, `\`${key}\` is also shared whole with its database; limit it by sharing the table alone`);
    return t;
  };
  const excludeColumns: Record<string, string[]> = {};
  for (const [k, cols] of Object.entries(input.excludeColumns ?? {})) excludeColumns[local(`excludeColumns.${k}`, k)] = cols.map((c) => c.trim().toLowerCase());
  const rows: Record<string, string> = {};
  for (const [k, sql] of Object.entries(input.rows ?? {})) rows[local(`rows.${k}`, k)] = sql;
  // Files carry every column and row: a share that limits either is read through this workspace's gateway only.
  if (input.directFiles === true && (Object.keys(excludeColumns).length > 0 || Object.keys(rows).length > 0)) {
    throw bad('directFiles', 'a share with column or row limits (`excludeColumns`, `rows`) cannot be read from files; its limits apply only through this workspace\'s gateway');
  }
  const direct = input.directFiles === true ? { directFiles: true } : {};
  return { catalog: catalog as string, spec: { databases: [...new Set(databases)], tables: [...new Set(tables)], excludeColumns, rows, ...direct } };
}

function sharedTables(world: PolicyWorld, catalog: string, spec: ShareSpec): Table[] {
  const out: Table[] = [];
  for (const d of spec.databases) {
    if (!world.databases.some((x) => x.catalog === catalog && x.name === d)) throw notFound('database', `${catalog}.${d}`);
    out.push(...world.tables.filter((t) => t.catalog === catalog && t.database === d));
  }
  for (const t of spec.tables) {
    const [database = '', table = ''] = t.split('.');
    const found = findTable(world, { catalog, database, table });
    if (found === undefined) throw notFound('table', `${catalog}.${t}`);
    out.push(found);
  }
  return out;
}

/** The share's principal, its grants and its filters. */
function shareChanges(world: PolicyWorld, name: string, catalog: string, spec: ShareSpec, predicates: ReadonlyMap<string, Predicate>): Change[] {
  const principal = sharePrincipal(name);
  const user = principal.slice('user:'.length);
  if (world.users.some((u) => u.name === user)) throw new StewardError('STEWARD_E_ALREADY_EXISTS', `user \`${user}\` already exists; shares use it as their principal`);
  const changes: Change[] = [{ op: 'put', kind: 'user', entity: { name: user, displayName: `share ${name}` } }];
  const grant = (id: string, resource: Grant['resource'], permissions: Grant['permissions']): void => {
    changes.push({ op: 'put', kind: 'grant', entity: { id: `share:${name}:${id}`, principal, resource, permissions, grantable: [], description: `share ${name}` } });
  };
  for (const database of spec.databases) grant(`db:${database}`, { kind: 'database', catalog, database }, ['DESCRIBE', 'SELECT']);
  for (const t of spec.tables) {
    const [database = '', table = ''] = t.split('.');
    const excluded = spec.excludeColumns[t];
    const predicate = predicates.get(t);
    if (excluded === undefined && predicate === undefined) {
      grant(`table:${t}`, { kind: 'table', catalog, database, table }, ['DESCRIBE', 'SELECT']);
      continue;
    }
    const filter: DataFilter = {
      name: shareFilter(name),
      catalog,
      database,
      table,
      rowFilter: spec.rows[t] ?? null,
      predicate: predicate ?? null,
      ...(excluded === undefined ? {} : { excludedColumns: excluded }),
    };
    changes.push({ op: 'put', kind: 'filter', entity: filter });
    grant(`table:${t}`, { kind: 'table', catalog, database, table }, ['DESCRIBE']);
    grant(`filter:${t}`, { kind: 'filter', catalog, database, table, filter: filter.name }, ['SELECT']);
  }
  return changes;
}
