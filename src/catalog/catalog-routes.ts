/**
 * HTTP routes for the catalog. Non-admins see only what they may DESCRIBE; a
 * table they may not DESCRIBE answers not-found, exactly like a missing one.
 */
import { z } from 'zod';
import { commit, route, type RouteDef } from '../server/route.js';
import { CatalogNameSchema, DescriptionSchema, NameSchema, OkSchema } from '../server/schemas.js';
import type { Actor } from '../server/actor.js';
import type { PolicyWorld, Table } from '../policy/model.js';
import type { Snapshot } from '../workspace/state-service.js';
import { notFound } from '../errors.js';
import { postgresTableColumns, redactUrl } from './postgres-source.js';
import { effectiveTags, tagValues } from '../policy/tags.js';
import { matchesTagExpression, parseTagExpression } from '../policy/tag-expression.js';
import {
  createCatalog,
  createDatabase,
  dropResource,
  makeTable,
  putTables,
  refreshTable,
  requireTable,
} from './catalog-service.js';

const ColumnOut = z.object({ name: z.string(), type: z.string(), ordinal: z.number() });
const TableOut = z.object({
  catalog: z.string(),
  database: z.string(),
  name: z.string(),
  columns: z.array(ColumnOut),
  source: z.record(z.string(), z.unknown()),
});
const TablePathParams = z.object({ catalog: CatalogNameSchema, database: NameSchema, table: NameSchema }).strict();
const CascadeQuery = z.object({ cascade: z.enum(['true', 'false']).optional() }).strict();

const LakeTableBody = z
  .object({
    catalog: CatalogNameSchema,
    database: NameSchema,
    table: NameSchema,
    location: z.string().min(1).max(4096),
    format: z.enum(['parquet', 'csv', 'json']).optional(),
    hivePartitioning: z.boolean().optional(),
    replace: z.boolean().optional(),
  })
  .strict();

const PostgresSchemaBody = z
  .object({
    catalog: CatalogNameSchema,
    database: NameSchema,
    url: z.string().min(1).max(4096),
    schema: z.string().min(1).max(128),
    replace: z.boolean().optional(),
  })
  .strict();

function describable(actor: Actor, snap: Snapshot, t: Table): boolean {
  if (actor.role === 'admin') return true;
  return (
    snap.engine.authorize({
      principal: actor.principal,
      action: 'DESCRIBE',
      resource: { level: 'table', catalog: t.catalog, database: t.database, table: t.name },
    }).decision === 'allow'
  );
}

function visibleTables(actor: Actor, snap: Snapshot, world: PolicyWorld, q: { catalog?: string; database?: string }): Table[] {
  return world.tables.filter(
    (t) => (q.catalog === undefined || t.catalog === q.catalog) && (q.database === undefined || t.database === q.database) && describable(actor, snap, t),
  );
}

const MAX_SEARCH_RESULTS = 500;
const SearchHit = z.object({
  resource: z.string(),
  level: z.enum(['table', 'column']),
  tags: z.record(z.string(), z.string()),
});

/**
 * Tables and columns whose full name contains `name` (case-insensitive) and
 * whose effective tags match the tag expression `tags`, among the tables the
 * caller may DESCRIBE. A table matches on its own tags; a column on its own.
 */
function searchCatalog(actor: Actor, snap: Snapshot, q: { name?: string; tags?: string }): z.infer<typeof SearchHit>[] {
  const needle = q.name?.trim().toLowerCase() ?? '';
  const expr = q.tags === undefined || q.tags.trim() === '' ? null : parseTagExpression(q.tags);
  const hits: z.infer<typeof SearchHit>[] = [];
  const consider = (resource: string, level: 'table' | 'column', values: Map<string, string>): void => {
    if (needle !== '' && !resource.toLowerCase().includes(needle)) return;
    if (expr !== null && !matchesTagExpression(expr, values)) return;
    hits.push({ resource, level, tags: Object.fromEntries(values) });
  };
  for (const t of visibleTables(actor, snap, snap.world, {})) {
    const table = `${t.catalog}.${t.database}.${t.name}`;
    consider(table, 'table', tagValues(effectiveTags(snap.world, { level: 'table', catalog: t.catalog, database: t.database, table: t.name })));
    for (const c of t.columns) {
      const ref = { level: 'column', catalog: t.catalog, database: t.database, table: t.name, column: c.name } as const;
      consider(`${table}.${c.name}`, 'column', tagValues(effectiveTags(snap.world, ref)));
    }
    if (hits.length >= MAX_SEARCH_RESULTS) break;
  }
  return hits.slice(0, MAX_SEARCH_RESULTS);
}

const tableOut = (t: Table): z.infer<typeof TableOut> => ({ ...t, columns: [...t.columns], source: { ...t.source } });

export const catalogRoutes: readonly RouteDef[] = [
  route({
    method: 'get',
    path: '/v1/catalogs',
    summary: 'List catalogs',
    tag: 'catalog',
    auth: 'user',
    response: z.object({ catalogs: z.array(z.object({ name: z.string(), description: z.string().optional() })) }),
    handler: async ({ services, actor }) => {
      const snap = await services.state.snapshot();
      const visible = new Set(visibleTables(actor, snap, snap.world, {}).map((t) => t.catalog));
      return { catalogs: snap.world.catalogs.filter((c) => actor.role === 'admin' || visible.has(c.name)).map((c) => ({ ...c })) };
    },
  }),
  route({
    method: 'post',
    path: '/v1/catalogs',
    summary: 'Create a catalog (one per account or tenant)',
    tag: 'catalog',
    auth: 'admin',
    status: 201,
    body: z.object({ name: CatalogNameSchema, description: DescriptionSchema.optional() }).strict(),
    response: OkSchema,
    handler: async ({ services, actor, body }) => {
      return commit({ services, actor }, 'catalog.create', body.name, (w) => createCatalog(w, body));
    },
  }),
  route({
    method: 'delete',
    path: '/v1/catalogs/:catalog',
    summary: 'Drop a catalog; refuses while policy points into it unless cascade=true',
    tag: 'catalog',
    auth: 'admin',
    params: z.object({ catalog: CatalogNameSchema }).strict(),
    query: CascadeQuery,
    response: OkSchema,
    handler: async ({ services, actor, params, query }) => {
      return commit({ services, actor }, 'catalog.drop', params.catalog, (w) => dropResource(w, { catalog: params.catalog }, query.cascade === 'true'));
    },
  }),
  route({
    method: 'get',
    path: '/v1/databases',
    summary: 'List databases',
    tag: 'catalog',
    auth: 'user',
    query: z.object({ catalog: CatalogNameSchema.optional() }).strict(),
    response: z.object({ databases: z.array(z.object({ catalog: z.string(), name: z.string(), description: z.string().optional() })) }),
    handler: async ({ services, actor, query }) => {
      const snap = await services.state.snapshot();
      const visible = new Set(visibleTables(actor, snap, snap.world, query).map((t) => `${t.catalog}.${t.database}`));
      return {
        databases: snap.world.databases
          .filter((d) => (query.catalog === undefined || d.catalog === query.catalog) && (actor.role === 'admin' || visible.has(`${d.catalog}.${d.name}`)))
          .map((d) => ({ ...d })),
      };
    },
  }),
  route({
    method: 'post',
    path: '/v1/databases',
    summary: 'Create a database',
    tag: 'catalog',
    auth: 'admin',
    status: 201,
    body: z.object({ catalog: CatalogNameSchema, name: NameSchema, description: DescriptionSchema.optional() }).strict(),
    response: OkSchema,
    handler: async ({ services, actor, body }) => {
      return commit({ services, actor }, 'database.create', `${body.catalog}.${body.name}`, (w) => createDatabase(w, body));
    },
  }),
  route({
    method: 'delete',
    path: '/v1/databases/:catalog/:database',
    summary: 'Drop a database and its tables; refuses while policy points into it unless cascade=true',
    tag: 'catalog',
    auth: 'admin',
    params: z.object({ catalog: CatalogNameSchema, database: NameSchema }).strict(),
    query: CascadeQuery,
    response: OkSchema,
    handler: async ({ services, actor, params, query }) => {
      return commit({ services, actor }, 'database.drop', `${params.catalog}.${params.database}`, (w) => dropResource(w, params, query.cascade === 'true'));
    },
  }),
  route({
    method: 'get',
    path: '/v1/tables',
    summary: 'List tables',
    tag: 'catalog',
    auth: 'user',
    query: z.object({ catalog: CatalogNameSchema.optional(), database: NameSchema.optional() }).strict(),
    response: z.object({ tables: z.array(TableOut) }),
    handler: async ({ services, actor, query }) => {
      const snap = await services.state.snapshot();
      return { tables: visibleTables(actor, snap, snap.world, query).map(tableOut) };
    },
  }),
  route({
    method: 'get',
    path: '/v1/catalog/search',
    summary: `Find tables and columns by name (substring) and by tag expression (\`pii=true AND region IN (east, west)\`), among those the caller may DESCRIBE; at most ${MAX_SEARCH_RESULTS}`,
    tag: 'catalog',
    auth: 'user',
    query: z.object({ name: z.string().max(520).optional(), tags: z.string().max(4096).optional() }).strict(),
    response: z.object({ results: z.array(SearchHit), truncated: z.boolean() }),
    handler: async ({ services, actor, query }) => {
      const results = searchCatalog(actor, await services.state.snapshot(), query);
      return { results, truncated: results.length >= MAX_SEARCH_RESULTS };
    },
  }),
  route({
    method: 'get',
    path: '/v1/tables/:catalog/:database/:table',
    summary: 'Show a table with its columns',
    tag: 'catalog',
    auth: 'user',
    params: TablePathParams,
    response: TableOut,
    handler: async ({ services, actor, params }) => {
      const snap = await services.state.snapshot();
      const t = requireTable(snap.world, params);
      if (!describable(actor, snap, t)) throw notFound('table', `${params.catalog}.${params.database}.${params.table}`);
      return tableOut(t);
    },
  }),
  route({
    method: 'post',
    path: '/v1/tables/lake',
    summary: 'Register a lake table from Parquet, CSV or JSON files, a glob, or a hive-partitioned folder',
    tag: 'catalog',
    auth: 'admin',
    status: 201,
    body: LakeTableBody,
    response: z.object({ ok: z.literal(true), version: z.number(), table: TableOut, files: z.number() }),
    handler: async ({ services, actor, body }) => {
      const inspected = await services.lake.inspectLake({
        location: body.location,
        ...(body.format === undefined ? {} : { format: body.format }),
        ...(body.hivePartitioning === undefined ? {} : { hivePartitioning: body.hivePartitioning }),
      });
      const table = makeTable(body, inspected.columns, inspected.source);
      const r = await commit({ services, actor }, 'table.register', `${body.catalog}.${body.database}.${body.table}`, (w) =>
        putTables(w, [table], body.replace === true),
      );
      return { ok: true as const, version: r.version, table: tableOut(table), files: inspected.files };
    },
  }),
  route({
    method: 'post',
    path: '/v1/tables/postgres',
    summary: 'Register every table of a PostgreSQL schema',
    tag: 'catalog',
    auth: 'admin',
    status: 201,
    body: PostgresSchemaBody,
    response: z.object({ ok: z.literal(true), version: z.number(), tables: z.array(z.string()) }),
    handler: async ({ services, actor, body }) => {
      const found = await services.lake.inspectPostgresSchema(body.url, body.schema);
      const connection = redactUrl(body.url);
      const tables = found.map((t) =>
        makeTable({ catalog: body.catalog, database: body.database, table: t.table }, t.columns, {
          kind: 'postgres',
          schema: body.schema,
          table: t.table,
          connection,
        }),
      );
      const r = await commit({ services, actor }, 'table.register', `${body.catalog}.${body.database}`, (w) => putTables(w, tables, body.replace === true), {
        connection,
        schema: body.schema,
      });
      return { ok: true as const, version: r.version, tables: found.map((t) => `${body.catalog}.${body.database}.${t.table}`) };
    },
  }),
  route({
    method: 'post',
    path: '/v1/tables/:catalog/:database/:table/refresh',
    summary: 'Re-read the table schema; reports added, removed and retyped columns',
    tag: 'catalog',
    auth: 'admin',
    params: TablePathParams,
    body: z.object({ sourceUrl: z.string().min(1).max(4096).optional() }).strict(),
    response: z.object({
      ok: z.literal(true),
      version: z.number(),
      added: z.array(ColumnOut),
      removed: z.array(ColumnOut),
      retyped: z.array(z.object({ name: z.string(), from: z.string(), to: z.string() })),
    }),
    handler: async ({ services, actor, params, body }) => {
      const snap = await services.state.snapshot();
      const table = requireTable(snap.world, params);
      const columns =
        table.source.kind === 'postgres'
          ? await postgresTableColumns((url, schema) => services.lake.inspectPostgresSchema(url, schema), table.source, body.sourceUrl)
          : await services.lake.columnsOf(table);
      let diff = refreshTable(snap.world, table, columns).diff;
      const r = await commit({ services, actor }, 'table.refresh', `${params.catalog}.${params.database}.${params.table}`, (w) => {
        const outcome = refreshTable(w, requireTable(w, params), columns);
        diff = outcome.diff;
        return outcome.changes;
      });
      return { ok: true as const, version: r.version, added: [...diff.added], removed: [...diff.removed], retyped: [...diff.retyped] };
    },
  }),
  route({
    method: 'delete',
    path: '/v1/tables/:catalog/:database/:table',
    summary: 'Unregister a table; refuses while policy points at it unless cascade=true',
    tag: 'catalog',
    auth: 'admin',
    params: TablePathParams,
    query: CascadeQuery,
    response: OkSchema,
    handler: async ({ services, actor, params, query }) => {
      return commit({ services, actor }, 'table.drop', `${params.catalog}.${params.database}.${params.table}`, (w) =>
        dropResource(w, params, query.cascade === 'true'),
      );
    },
  }),
];

