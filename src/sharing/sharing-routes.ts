/**
 * Sharing over HTTP.
 *
 * Admin routes (`/v1/shares…`): this workspace's identity, trusting peers,
 * creating, listing and revoking shares, pulling and status.
 *
 * Workspace-to-workspace routes (`/v1/sharing…`), authenticated by a share
 * token (src/sharing/signed.ts) instead of an API token: the offers for the
 * calling consumer, a share's signed change feed, and reads through this
 * workspace's gateway as the share's principal. A refused share token counts
 * against the caller's address like a refused API token.
 */
import { z } from 'zod';
import { StewardError } from '../errors.js';
import { route, type CredentialContext, type HandlerContext, type RouteDef } from '../server/route.js';
import { actorName } from '../server/actor.js';
import { tokenFrom } from '../server/auth.js';
import type { Services } from '../server/services.js';
import { toPlainValue, type PlainValue } from '../lake/duckdb.js';
import type { SharingService } from './sharing-service.js';
import { ANY_SHARE, verifyShareToken } from './signed.js';
import { sharePrincipal } from './producer.js';
import { quoteIdent } from '../policy/predicate.js';
import { MAX_REMOTE_ROWS } from '../gateway/remote.js';

const Name = z.string().trim().min(1).max(40);
/** A share or peer name in a path: the names' own pattern, so `*` (the offers token's share) names no share. */
const ShareName = z.string().regex(/^[a-z][a-z0-9_-]{0,39}$/);
const ShareParams = z.object({ share: ShareName });
const FeedQuery = z.strictObject({
  from: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  nonce: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/),
  full: z.enum(['true', 'false']).optional(),
});
const QueryBody = z.strictObject({ sql: z.string().min(1).max(100_000) });
const Ident = z.string().min(1).max(128);
/** A consumer's gateway asking for columns of one shared table (no SQL: the producer writes the query itself). */
const RowsBody = z.strictObject({ database: Ident, table: Ident, columns: z.array(Ident).min(1).max(1000) });

const Any = z.unknown();
/** Rows a read through a share returns at most: a share is for governed reads, not bulk export. */
export const MAX_SHARE_READ_ROWS = 10_000;

/**
 * Runs `sql` through this workspace's gateway as the share's principal, which
 * holds exactly the share (its tables, its column and row limits) and is
 * bound by every guardrail, and returns at most `maxRows` rows.
 */
async function readAsShare(ctx: Pick<HandlerContext<unknown, unknown, unknown>, 'services'>, peer: string, name: string, sql: string, maxRows: number): Promise<{ columns: { name: string; type: string }[]; rows: PlainValue[][]; truncated: boolean }> {
  const share = await sharingOf(ctx.services).producer.active(peer, name);
  const gateway = ctx.services.gateway?.gateway;
  if (gateway === undefined) throw new StewardError('STEWARD_E_INTERNAL', 'the gateway is not available');
  const stream = await gateway.open({ principal: sharePrincipal(share.name), actor: `share:${peer}`, sql, maxRows });
  const rows: PlainValue[][] = [];
  for await (const batch of stream.batches()) for (const r of batch) rows.push(r.map(toPlainValue));
  const summary = await stream.summary;
  return { columns: stream.columns.map((c) => ({ name: c.name, type: c.type })), rows, truncated: summary.truncated };
}

export function sharingOf(services: Services): SharingService {
  if (services.sharing === undefined) throw new StewardError('STEWARD_E_INTERNAL', 'sharing is not available in this workspace');
  return services.sharing;
}

/**
 * The consumer a share token speaks for, refused (and counted) unless it is
 * for the share in the path (`*` on routes without one): the route's own
 * credentials, checked before anything in the request is validated.
 */
async function consumerOf(ctx: CredentialContext): Promise<string> {
  const sharing = sharingOf(ctx.services);
  const asked = ctx.rawParams['share'] ?? ANY_SHARE;
  // Unvalidated text goes into neither the log nor the answer.
  const named = asked === ANY_SHARE || ShareName.safeParse(asked).success ? asked : '(malformed)';
  const token = tokenFrom(ctx.request.headers.get('authorization') ?? undefined, { basic: false });
  const kind = { action: 'auth.share-token', resource: `share:${named}` };
  if (token === null) {
    ctx.authFailed('missing share token', kind);
    throw new StewardError('STEWARD_E_UNAUTHENTICATED', 'a share token is required');
  }
  let who: { peer: string; share: string };
  try {
    who = await verifyShareToken(token, await sharing.identity.get(), (key) => sharing.peers.byKey(key));
  } catch (e) {
    ctx.authFailed((e as Error).message, kind);
    throw e;
  }
  if (who.share !== asked) {
    ctx.authFailed(`share token for \`${who.share}\` used for \`${named}\``, kind);
    throw new StewardError('STEWARD_E_UNAUTHENTICATED', `share token refused: it is for share \`${who.share}\`, not \`${named}\``);
  }
  return who.peer;
}

/** The peer `credentials` found (every workspace-to-workspace route has them). */
const peerOf = (ctx: Pick<HandlerContext<unknown, unknown, unknown>, 'caller'>): string => {
  if (ctx.caller === undefined) throw new StewardError('STEWARD_E_INTERNAL', 'a sharing route ran without its share token check');
  return ctx.caller;
};

const PeerOut = z.object({ name: z.string(), publicKey: z.string(), url: z.string().nullable(), region: z.string().nullable(), lastPullAt: z.string().nullable(), lastError: z.string().nullable() });

export const sharingRoutes: readonly RouteDef[] = [
  route({
    method: 'get',
    path: '/v1/shares/identity',
    summary: "This workspace's public key, for another workspace to trust",
    tag: 'sharing',
    auth: 'admin',
    response: z.object({ publicKey: z.string() }),
    handler: async ({ services }) => ({ publicKey: (await sharingOf(services).identity.get()).publicKey }),
  }),
  route({
    method: 'post',
    path: '/v1/shares/peers',
    summary: 'Trust another workspace by name and public key (with the URL to pull from when it is a producer)',
    tag: 'sharing',
    auth: 'admin',
    status: 201,
    body: z.strictObject({ name: Name, publicKey: z.string().trim().max(100), url: z.string().trim().max(2000).optional(), region: z.string().trim().max(63).optional() }),
    response: PeerOut,
    handler: async ({ services, actor, body }) => {
      const peer = await sharingOf(services).peers.trust(body);
      await services.state.log([{ actor: actorName(actor), action: 'share.trust', resource: `peer:${peer.name}`, result: 'ok', reason: 'workspace trusted', details: { publicKey: peer.publicKey, url: peer.url, region: peer.region } }]);
      return peer;
    },
  }),
  route({
    method: 'get',
    path: '/v1/shares/peers',
    summary: 'Trusted workspaces',
    tag: 'sharing',
    auth: 'admin',
    response: z.object({ peers: z.array(PeerOut) }),
    handler: async ({ services }) => ({ peers: await sharingOf(services).peers.list() }),
  }),
  route({
    method: 'post',
    path: '/v1/shares',
    summary: 'Share tables or whole databases of one catalog with a trusted workspace, optionally hiding columns and limiting rows per table',
    tag: 'sharing',
    auth: 'admin',
    status: 201,
    body: z.strictObject({
      name: Name,
      to: Name,
      objects: z.array(z.string().trim().max(400)).min(1).max(1000),
      excludeColumns: z.record(z.string().max(400), z.array(z.string().max(128)).min(1).max(1000)).optional(),
      rows: z.record(z.string().max(400), z.string().min(1).max(10_000)).optional(),
      directFiles: z.boolean().optional(),
    }),
    response: Any,
    handler: async ({ services, actor, body }) =>
      sharingOf(services).producer.create(
        {
          name: body.name,
          peer: body.to,
          objects: body.objects,
          ...(body.excludeColumns === undefined ? {} : { excludeColumns: body.excludeColumns }),
          ...(body.rows === undefined ? {} : { rows: body.rows }),
          ...(body.directFiles === undefined ? {} : { directFiles: body.directFiles }),
        },
        actorName(actor),
      ),
  }),
  route({
    method: 'get',
    path: '/v1/shares',
    summary: 'Shares this workspace produces, and the ones it receives',
    tag: 'sharing',
    auth: 'admin',
    response: z.object({ shares: z.array(Any), subscriptions: z.array(Any) }),
    handler: async ({ services }) => {
      const s = sharingOf(services);
      return { shares: await s.producer.list(), subscriptions: await s.consumer.subscriptions() };
    },
  }),
  route({
    method: 'post',
    path: '/v1/shares/:name/revoke',
    summary: 'Revoke a share: reads stop at once, and the consumer removes its tables at its next pull',
    tag: 'sharing',
    auth: 'admin',
    params: z.object({ name: Name }),
    body: z.strictObject({}),
    response: Any,
    handler: async ({ services, actor, params }) => sharingOf(services).producer.revoke(params.name, actorName(actor)),
  }),
  route({
    method: 'post',
    path: '/v1/shares/pull',
    summary: 'Pull the shares trusted producers offer now (one producer with `peer`; the whole state with `full`)',
    tag: 'sharing',
    auth: 'admin',
    body: z.strictObject({ peer: Name.optional(), full: z.boolean().optional() }),
    response: z.object({ pulls: z.array(Any) }),
    handler: async ({ services, actor, body }) => ({
      pulls: await sharingOf(services).consumer.pull({ ...(body.peer === undefined ? {} : { peer: body.peer }), ...(body.full === undefined ? {} : { full: body.full }) }, actorName(actor)),
    }),
  }),
  route({
    method: 'get',
    path: '/v1/shares/status',
    summary: 'Identity, peers, produced shares (cursor, last served) and received shares (cursor, last pull, conflicts, errors)',
    tag: 'sharing',
    auth: 'admin',
    response: z.object({ publicKey: z.string(), peers: z.array(PeerOut), shares: z.array(Any), subscriptions: z.array(Any) }),
    handler: async ({ services }) => {
      const s = sharingOf(services);
      return { publicKey: (await s.identity.get()).publicKey, peers: await s.peers.list(), shares: await s.producer.list(), subscriptions: await s.consumer.subscriptions() };
    },
  }),
  route({
    method: 'post',
    path: '/v1/shares/read',
    summary: "Read a received share through its producer's gateway (SQL in the producer's names; the producer applies the share's limits)",
    tag: 'sharing',
    auth: 'admin',
    body: z.strictObject({ peer: Name, share: Name, sql: z.string().min(1).max(100_000) }),
    response: Any,
    handler: async ({ services, body }) => sharingOf(services).consumer.query(body.peer, body.share, body.sql),
  }),

  // ------------------------------------------------ workspace to workspace
  route({
    method: 'get',
    path: '/v1/sharing/offers',
    summary: 'The shares offered to the calling workspace (share token for `*`)',
    tag: 'sharing',
    auth: 'public',
    credentials: consumerOf,
    response: z.object({ shares: z.array(z.object({ name: z.string(), status: z.string() })) }),
    handler: async (ctx) => ({ shares: await sharingOf(ctx.services).producer.offers(peerOf(ctx)) }),
  }),
  route({
    method: 'get',
    path: '/v1/sharing/feed/:share',
    summary: "A share's signed change feed after a cursor (share token for that share)",
    tag: 'sharing',
    auth: 'public',
    credentials: consumerOf,
    params: ShareParams,
    query: FeedQuery,
    response: z.object({ feed: z.string() }),
    handler: async (ctx) => ({ feed: await sharingOf(ctx.services).producer.feed(peerOf(ctx), ctx.params.share, ctx.query.from, ctx.query.nonce, ctx.query.full === 'true') }),
  }),
  route({
    method: 'post',
    path: '/v1/sharing/query/:share',
    summary: "Read shared tables through this workspace's gateway as the share's principal (share token for that share)",
    tag: 'sharing',
    auth: 'public',
    credentials: consumerOf,
    params: ShareParams,
    body: QueryBody,
    response: z.object({ columns: z.array(z.string()), rows: z.array(z.array(Any)), truncated: z.boolean() }),
    handler: async (ctx) => {
      const r = await readAsShare(ctx, peerOf(ctx), ctx.params.share, ctx.body.sql, MAX_SHARE_READ_ROWS);
      return { columns: r.columns.map((c) => c.name), rows: r.rows, truncated: r.truncated };
    },
  }),
  route({
    method: 'post',
    path: '/v1/sharing/rows/:share',
    summary: "Columns of one shared table, for the consumer's gateway, as the share's principal (share token for that share)",
    tag: 'sharing',
    auth: 'public',
    credentials: consumerOf,
    params: ShareParams,
    body: RowsBody,
    response: z.object({ columns: z.array(z.object({ name: z.string(), type: z.string() })), rows: z.array(z.array(Any)), truncated: z.boolean() }),
    handler: async (ctx) => {
      const peer = peerOf(ctx);
      const name = ctx.params.share;
      const body = ctx.body;
      const share = await sharingOf(ctx.services).producer.active(peer, name);
      // Names quoted, never spliced: the consumer names a table and columns, the producer writes the query. The
      // share's principal reaches only the share's tables, so a table outside it is not found, a hidden column refused.
      const from = [share.catalog, body.database, body.table].map(quoteIdent).join('.');
      return readAsShare(ctx, peer, name, `SELECT ${body.columns.map(quoteIdent).join(', ')} FROM ${from}`, MAX_REMOTE_ROWS);
    },
  }),
];
