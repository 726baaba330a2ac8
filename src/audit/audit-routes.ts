/**
 * Security lake over HTTP: sources, ingest, quarantine, ingest keys, flush,
 * verify, retention, sandboxed queries, and monitors. Everything is for
 * admins except `POST /v1/audit/ingest/:source`, which takes only an ingest
 * key of that very source (its own token scope: an API token is refused there,
 * and an ingest key opens nothing else).
 */
import { z } from 'zod';
import { route, type CredentialContext, type RouteDef } from '../server/route.js';
import { OkSchema } from '../server/schemas.js';
import { actorName } from '../server/actor.js';
import type { Services } from '../server/services.js';
import { StewardError } from '../errors.js';
import { tokenFrom } from '../server/auth.js';
import { MAX_INGEST_BYTES, MAX_INGEST_LINES } from './audit-service.js';
import type { AuditRuntime } from './runtime.js';
import { MonitorInputSchema } from './monitors.js';
import { MAPPING_NAMES } from './mappings/index.js';
import { openSecuritySql } from './security-sql.js';
import { decisionTimeline, timelineWindow, TimelineQuerySchema, TimelineSchema } from './timeline.js';

function audit(services: Services): AuditRuntime {
  const a = services.audit;
  if (a === undefined) throw new StewardError('STEWARD_E_CONFIG', 'the security lake is not enabled in this workspace');
  return a;
}

/**
 * The ingest key of the request, for the source in its path (compared as
 * sent: the source name is validated only after the key is checked).
 */
async function ingestKeyOf({ services, request, rawParams, authFailed }: CredentialContext): Promise<string> {
  const source = rawParams['source'] ?? '';
  // Unvalidated text goes into neither the log nor the answer (a NUL would not even store).
  const named = /^[a-z][a-z0-9_]{0,62}$/.test(source) ? source : '(malformed)';
  const shown = `\`${named}\``;
  const presented = tokenFrom(request.headers.get('authorization') ?? undefined);
  const key = presented === null ? null : await audit(services).service.verifyIngestKey(presented);
  if (key === null) {
    // Anonymous failures are counted per address and interval, not logged one row each (src/server/auth-failures.ts).
    authFailed(presented === null ? 'missing ingest key' : 'invalid or revoked ingest key', { action: 'auth.ingest-key', resource: named });
    throw new StewardError('STEWARD_E_UNAUTHENTICATED', `an ingest key of source ${shown} is required`);
  }
  if (key.source !== source) {
    await services.state.log([{ actor: `ingest-key:${key.id}`, action: 'auth.ingest-key', resource: named, result: 'deny', reason: `ingest key of source \`${key.source}\`` }]);
    throw new StewardError('STEWARD_E_UNAUTHENTICATED', `an ingest key of source ${shown} is required`);
  }
  return `ingest-key:${key.id}`;
}

const SourceName = z.string().trim().min(1).max(63).regex(/^[a-z][a-z0-9_]*$/, 'must be a lowercase identifier starting with a letter');
const MonitorName = z.string().trim().min(1).max(128);
const Any = z.unknown();

export const auditRoutes: readonly RouteDef[] = [
  route({
    method: 'get',
    path: '/v1/audit/sources',
    summary: 'Security lake sources with their chain head, backlog, retention and catalog table',
    tag: 'audit',
    auth: 'admin',
    response: z.object({ sources: z.array(Any) }),
    handler: async ({ services }) => ({ sources: await audit(services).service.listSources() }),
  }),
  route({
    method: 'post',
    path: '/v1/audit/sources',
    summary: 'Create a custom source (mapping cloudtrail, azure_activity or ocsf)',
    tag: 'audit',
    auth: 'admin',
    status: 201,
    body: z
      .object({
        name: SourceName,
        mapping: z.enum(MAPPING_NAMES),
        description: z.string().max(1024).optional(),
        region: z.string().max(64).optional(),
        accountId: z.string().max(64).optional(),
        retentionDays: z.number().int().min(1).max(36_500).optional(),
      })
      .strict(),
    response: Any,
    handler: async ({ services, actor, body }) => {
      const s = await audit(services).service.createSource(body);
      await services.state.log([{ actor: actorName(actor), action: 'audit.source.create', resource: body.name, result: 'ok', reason: `mapping ${body.mapping}` }]);
      return s;
    },
  }),
  route({
    method: 'put',
    path: '/v1/audit/sources/:source/retention',
    summary: 'Set (or clear, with null) how many days of day partitions a source keeps',
    tag: 'audit',
    auth: 'admin',
    params: z.object({ source: SourceName }).strict(),
    body: z.object({ days: z.number().int().min(1).max(36_500).nullable() }).strict(),
    response: OkSchema,
    handler: async ({ services, actor, params, body }) => {
      await audit(services).service.setRetention(params.source, body.days);
      await services.state.log([
        { actor: actorName(actor), action: 'audit.retention.set', resource: params.source, result: 'ok', reason: body.days === null ? 'kept forever' : `${body.days} day(s)` },
      ]);
      return { ok: true as const };
    },
  }),
  route({
    method: 'delete',
    path: '/v1/audit/sources/:source',
    summary: 'Delete a custom source (its Parquet files stay in the lake)',
    tag: 'audit',
    auth: 'admin',
    params: z.object({ source: SourceName }).strict(),
    response: OkSchema,
    handler: async ({ services, actor, params }) => {
      await audit(services).service.deleteSource(params.source);
      await services.state.log([{ actor: actorName(actor), action: 'audit.source.delete', resource: params.source, result: 'ok', reason: 'deleted' }]);
      return { ok: true as const };
    },
  }),
  route({
    method: 'post',
    path: '/v1/audit/sources/:source/ingest',
    summary: `Ingest JSON lines into a custom source (at most ${MAX_INGEST_LINES} lines per call); unmappable lines go to quarantine`,
    tag: 'audit',
    auth: 'admin',
    status: 202,
    params: z.object({ source: SourceName }).strict(),
    body: z.object({ lines: z.array(z.string().max(MAX_INGEST_BYTES)).max(1_000_000) }).strict(),
    response: Any,
    handler: async ({ services, params, body }) => audit(services).service.ingest(params.source, body.lines),
  }),
  route({
    method: 'post',
    path: '/v1/audit/ingest/:source',
    summary: `Ingest newline-delimited JSON with an ingest key of the source (Authorization: Bearer sik_...); 413 above ${MAX_INGEST_LINES} lines or ${MAX_INGEST_BYTES} bytes`,
    tag: 'audit',
    auth: 'public',
    status: 202,
    credentials: ingestKeyOf,
    params: z.object({ source: SourceName }).strict(),
    rawBody: true,
    response: Any,
    handler: async ({ services, params, request }) => {
      const a = audit(services);
      const length = Number(request.headers.get('content-length') ?? '0');
      if (length > MAX_INGEST_BYTES) throw new StewardError('STEWARD_E_PAYLOAD_TOO_LARGE', `an ingest batch holds at most ${MAX_INGEST_BYTES} bytes; split it`);
      const text = await request.text();
      if (text.length > MAX_INGEST_BYTES) throw new StewardError('STEWARD_E_PAYLOAD_TOO_LARGE', `an ingest batch holds at most ${MAX_INGEST_BYTES} bytes; split it`);
      const lines = text.split('\n');
      if (lines.at(-1) === '') lines.pop();
      return a.service.ingest(params.source, lines);
    },
  }),
  route({
    method: 'get',
    path: '/v1/audit/quarantine',
    summary: 'Records that could not be mapped, with the reason, newest first',
    tag: 'audit',
    auth: 'admin',
    query: z.object({ source: SourceName.optional(), limit: z.coerce.number().int().min(1).max(1000).optional() }).strict(),
    response: z.object({ entries: z.array(Any) }),
    handler: async ({ services, query }) => ({ entries: await audit(services).service.listQuarantine(query.source, query.limit ?? 100) }),
  }),
  route({
    method: 'post',
    path: '/v1/audit/sources/:source/keys',
    summary: 'Create an ingest key for one source; the key is in this response only',
    tag: 'audit',
    auth: 'admin',
    status: 201,
    params: z.object({ source: SourceName }).strict(),
    body: z.object({ name: z.string().trim().min(1).max(128) }).strict(),
    response: z.object({ id: z.string(), key: z.string(), source: z.string() }),
    handler: async ({ services, actor, params, body }) => {
      const k = await audit(services).service.createIngestKey(params.source, body.name);
      await services.state.log([{ actor: actorName(actor), action: 'audit.key.create', resource: params.source, result: 'ok', reason: `ingest key ${k.id}` }]);
      return k;
    },
  }),
  route({
    method: 'get',
    path: '/v1/audit/keys',
    summary: 'List ingest keys (never their secrets)',
    tag: 'audit',
    auth: 'admin',
    response: z.object({ keys: z.array(Any) }),
    handler: async ({ services }) => ({ keys: await audit(services).service.listIngestKeys() }),
  }),
  route({
    method: 'delete',
    path: '/v1/audit/keys/:id',
    summary: 'Revoke an ingest key',
    tag: 'audit',
    auth: 'admin',
    params: z.object({ id: z.string().trim().min(1).max(64) }).strict(),
    response: OkSchema,
    handler: async ({ services, actor, params }) => {
      await audit(services).service.revokeIngestKey(params.id);
      await services.state.log([{ actor: actorName(actor), action: 'audit.key.revoke', resource: params.id, result: 'ok', reason: 'revoked' }]);
      return { ok: true as const };
    },
  }),
  route({
    method: 'post',
    path: '/v1/audit/flush',
    summary: 'Write every waiting event to Parquet now (all sources, or one)',
    tag: 'audit',
    auth: 'admin',
    body: z.object({ source: SourceName.optional() }).strict(),
    response: z.object({ results: z.array(Any) }),
    handler: async ({ services, body }) => ({ results: await audit(services).service.flush(body.source) }),
  }),
  route({
    method: 'get',
    path: '/v1/audit/verify',
    summary: "Check every source's hash chain (after completing any batch a killed flush left pending)",
    tag: 'audit',
    auth: 'admin',
    response: z.object({ ok: z.boolean(), reports: z.array(Any) }),
    handler: async ({ services, actor }) => {
      const reports = await audit(services).service.verifyAll();
      const bad = reports.filter((r) => !r.ok);
      await services.state.log([
        {
          actor: actorName(actor),
          action: 'audit.verify',
          resource: '*',
          result: bad.length === 0 ? 'ok' : 'error',
          reason: bad.length === 0 ? `${reports.length} source(s) intact` : `problems in ${bad.map((r) => r.source).join(', ')}`,
        },
      ]);
      return { ok: bad.length === 0, reports };
    },
  }),
  route({
    method: 'get',
    path: '/v1/audit/sources/:source/verify',
    summary: "Check a source's hash chain: which events were modified, deleted or reordered",
    tag: 'audit',
    auth: 'admin',
    params: z.object({ source: SourceName }).strict(),
    response: Any,
    handler: async ({ services, actor, params }) => {
      const r = await audit(services).service.verify(params.source);
      await services.state.log([
        { actor: actorName(actor), action: 'audit.verify', resource: params.source, result: r.ok ? 'ok' : 'error', reason: r.ok ? `${r.events} event(s) intact` : `${r.problems.length} problem(s)` },
      ]);
      return r;
    },
  }),
  route({
    method: 'post',
    path: '/v1/audit/retention',
    summary: 'Remove expired day partitions now (the server also does it hourly)',
    tag: 'audit',
    auth: 'admin',
    body: z.object({ source: SourceName.optional() }).strict(),
    response: z.object({ results: z.array(Any) }),
    handler: async ({ services, body }) => ({ results: await audit(services).service.applyRetention(body.source) }),
  }),
  route({
    method: 'post',
    path: '/v1/audit/compact',
    summary: 'Merge the small files of each closed day partition into one, recorded in the hash chain (the server also does it hourly, after retention)',
    tag: 'audit',
    auth: 'admin',
    body: z.object({ source: SourceName.optional() }).strict(),
    response: z.object({ results: z.array(Any) }),
    handler: async ({ services, body }) => ({ results: await audit(services).service.compact(body.source) }),
  }),
  route({
    method: 'get',
    path: '/v1/audit/timeline',
    summary: 'Security-lake events per time bucket and source, allowed against denied; a governed query run as the caller (`from`/`to` ISO-8601, default the last 24 h; `bucket` 1m..1d, default 1h; `source`, default steward)',
    tag: 'audit',
    auth: 'user',
    query: TimelineQuerySchema,
    response: TimelineSchema,
    handler: async ({ services, actor, query, request }) => {
      const gateway = services.gateway;
      if (gateway === undefined) throw new StewardError('STEWARD_E_CONFIG', 'the query gateway is not configured on this server');
      return decisionTimeline({ gateway, principal: actor.principal, actor: actorName(actor), signal: request.signal }, timelineWindow(query));
    },
  }),
  route({
    method: 'post',
    path: '/v1/audit/query',
    summary: 'Run one SELECT over the security tables in the monitor sandbox (admins; for governed access use the catalog tables)',
    tag: 'audit',
    auth: 'admin',
    body: z.object({ sql: z.string().min(1).max(20_000), limit: z.number().int().min(1).max(10_000).optional() }).strict(),
    response: z.object({ rows: z.array(Any) }),
    handler: async ({ services, actor, body }) => {
      const a = audit(services);
      const sandbox = await openSecuritySql(services.config.lakeDir, await a.service.sourceNames());
      try {
        const rows = await sandbox.query(body.sql, body.limit ?? 1000);
        await services.state.log([{ actor: actorName(actor), action: 'audit.query', resource: 'steward.security', result: 'ok', reason: `${rows.length} row(s)`, details: { sql: body.sql.slice(0, 2000) } }]);
        return { rows };
      } finally {
        sandbox.close();
      }
    },
  }),
  route({
    method: 'get',
    path: '/v1/monitors',
    summary: 'List monitors with their last run',
    tag: 'monitors',
    auth: 'admin',
    response: z.object({ monitors: z.array(Any) }),
    handler: async ({ services }) => ({ monitors: await audit(services).monitors.list() }),
  }),
  route({
    method: 'post',
    path: '/v1/monitors',
    summary: 'Create a monitor: scheduled SQL over the security tables, a condition, a severity, throttling and an action',
    tag: 'monitors',
    auth: 'admin',
    status: 201,
    body: MonitorInputSchema,
    response: Any,
    handler: async ({ services, actor, body }) => {
      const m = await audit(services).monitors.create(body);
      await services.state.log([{ actor: actorName(actor), action: 'monitor.create', resource: m.name, result: 'ok', reason: `${m.action.kind}, every ${m.scheduleSeconds}s` }]);
      return m;
    },
  }),
  route({
    method: 'get',
    path: '/v1/monitors/:name',
    summary: 'One monitor',
    tag: 'monitors',
    auth: 'admin',
    params: z.object({ name: MonitorName }).strict(),
    response: Any,
    handler: async ({ services, params }) => audit(services).monitors.get(params.name),
  }),
  route({
    method: 'delete',
    path: '/v1/monitors/:name',
    summary: 'Delete a monitor',
    tag: 'monitors',
    auth: 'admin',
    params: z.object({ name: MonitorName }).strict(),
    response: OkSchema,
    handler: async ({ services, actor, params }) => {
      await audit(services).monitors.delete(params.name);
      await services.state.log([{ actor: actorName(actor), action: 'monitor.delete', resource: params.name, result: 'ok', reason: 'deleted' }]);
      return { ok: true as const };
    },
  }),
  route({
    method: 'post',
    path: '/v1/monitors/:name/test',
    summary: 'Run a monitor now and send a test notification (ignores throttling, records no firing)',
    tag: 'monitors',
    auth: 'admin',
    params: z.object({ name: MonitorName }).strict(),
    body: z.object({ send: z.boolean().default(true) }).strict(),
    response: Any,
    handler: async ({ services, params, body }) => {
      return audit(services).monitors.run(params.name, { test: true, send: body.send });
    },
  }),
];
