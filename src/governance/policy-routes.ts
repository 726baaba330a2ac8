/**
 * Data filters, grants and guardrails over HTTP. Request bodies have exactly
 * the shape of the matching entry in a policy file, and a write is an edit of
 * the policy document followed by a plan: one language and one validation path
 * for the API, the CLI and policy-as-code.
 */
import { z } from 'zod';
import { commit, route, type RouteDef } from '../server/route.js';
import { LabelSchema, OkSchema, PrincipalSchema } from '../server/schemas.js';
import type { Services } from '../server/services.js';
import type { Actor } from '../server/actor.js';
import { PolicyDocumentSchema, type DocGrant, type PolicyDocument } from '../code/schema.js';
import { fromWorld, grantIdOf, preparePredicates, toManagedWorld } from '../code/convert.js';
import { planPolicy } from '../code/plan.js';
import type { Change } from '../policy/changes.js';
import { parseResource, type PolicyWorld } from '../policy/model.js';
import { checkGrantOption } from '../policy/grant-option.js';
import { StewardError, notFound } from '../errors.js';

const GrantBody = PolicyDocumentSchema.shape.grants.unwrap().element;
const FilterSpecBody = PolicyDocumentSchema.shape.filters.unwrap().valueType.valueType;
const GuardrailBody = PolicyDocumentSchema.shape.guardrails.unwrap().valueType;
const TableParam = z
  .string()
  .max(400)
  .transform((s) => s.trim().toLowerCase())
  .refine((s) => parseResource(s)?.level === 'table', 'must be `catalog.database.table`');

/**
 * Edits the policy document of the current world and returns the changes
 * that make the world match it, validated like a policy file.
 */
export async function editPolicy(services: Pick<Services, 'lake'>, world: PolicyWorld, edit: (doc: PolicyDocument) => PolicyDocument): Promise<Change[]> {
  const doc = edit(fromWorld(world));
  const parsePredicate = await preparePredicates(doc, (sql) => services.lake.parsePredicate(sql));
  return [...planPolicy(world, toManagedWorld(doc, { parsePredicate, catalog: world })).changes];
}

function requireGrantOption(actor: Actor, world: PolicyWorld, changes: readonly Change[]): void {
  if (actor.role === 'admin') return;
  for (const c of changes) {
    if (c.op !== 'put' || c.kind !== 'grant') throw new StewardError('STEWARD_E_FORBIDDEN', 'only admins may change anything but grants');
    const verdict = checkGrantOption(world, actor.principal, c.entity, Date.now());
    if (!verdict.ok) throw new StewardError('STEWARD_E_GRANT_OPTION', verdict.reason);
  }
}

export const policyRoutes: readonly RouteDef[] = [
  route({
    method: 'get',
    path: '/v1/grants',
    summary: 'List grants (as in policy files), optionally for one principal',
    tag: 'grants',
    auth: 'admin',
    query: z.object({ principal: PrincipalSchema.optional() }).strict(),
    response: z.object({ grants: z.array(z.record(z.string(), z.unknown())) }),
    handler: async ({ services, query }) => {
      const doc = fromWorld((await services.state.snapshot()).world);
      const grants = (doc.grants ?? []).filter((g) => query.principal === undefined || g.principal === query.principal);
      return { grants: grants.map((g) => ({ ...g, id: grantIdOf(g) })) };
    },
  }),
  route({
    method: 'post',
    path: '/v1/grants',
    summary: 'Grant permissions on a catalog, database, table, columns, data filter or tag expression (non-admins need the grant option)',
    tag: 'grants',
    auth: 'user',
    status: 201,
    body: GrantBody,
    response: z.object({ ok: z.literal(true), version: z.number(), id: z.string() }),
    handler: async ({ services, actor, body }) => {
      const grant = body as DocGrant;
      const id = grantIdOf(grant);
      const r = await commit(
        { services, actor },
        'grant.create',
        grant.principal,
        async (world) => {
          if (world.grants.some((g) => g.id === id)) throw new StewardError('STEWARD_E_ALREADY_EXISTS', `grant \`${id}\` already exists; revoke it first or choose another id`);
          const changes = await editPolicy(services, world, (doc) => ({ ...doc, grants: [...(doc.grants ?? []), grant] }));
          requireGrantOption(actor, world, changes);
          return changes;
        },
        { id },
      );
      return { ...r, id };
    },
  }),
  route({
    method: 'delete',
    path: '/v1/grants/:id',
    summary: 'Revoke a grant',
    tag: 'grants',
    auth: 'admin',
    params: z.object({ id: LabelSchema }).strict(),
    response: OkSchema,
    handler: async ({ services, actor, params }) => {
      // The decision log names the grantee (the security lake's Account Change `user`); the resource stays the grant id.
      const grantee = (await services.state.snapshot()).world.grants.find((g) => g.id === params.id)?.principal;
      return commit(
        { services, actor },
        'grant.revoke',
        params.id,
        (world) => {
          const grant = world.grants.find((g) => g.id === params.id);
          if (grant === undefined) throw notFound('grant', params.id);
          if (grant.principal !== grantee) throw new StewardError('STEWARD_E_CONFLICT', `grant \`${params.id}\` changed while it was being revoked; retry`);
          return [{ op: 'delete', kind: 'grant', key: params.id }];
        },
        { id: params.id, ...(grantee === undefined ? {} : { grantee }) },
      );
    },
  }),
  route({
    method: 'get',
    path: '/v1/filters',
    summary: 'List data filters, optionally of one table',
    tag: 'filters',
    auth: 'admin',
    query: z.object({ table: TableParam.optional() }).strict(),
    response: z.object({
      filters: z.array(
        z.object({ table: z.string(), name: z.string(), rowFilter: z.string().nullable(), columns: z.array(z.string()).optional(), excludedColumns: z.array(z.string()).optional() }),
      ),
    }),
    handler: async ({ services, query }) => {
      const { world } = await services.state.snapshot();
      return {
        filters: world.filters
          .map((f) => ({
            table: `${f.catalog}.${f.database}.${f.table}`,
            name: f.name,
            rowFilter: f.rowFilter,
            ...(f.columns === undefined ? {} : { columns: [...f.columns] }),
            ...(f.excludedColumns === undefined ? {} : { excludedColumns: [...f.excludedColumns] }),
          }))
          .filter((f) => query.table === undefined || f.table === query.table),
      };
    },
  }),
  route({
    method: 'post',
    path: '/v1/filters',
    summary: 'Create or replace a data filter: a row predicate (parsed by DuckDB) and/or a column list',
    tag: 'filters',
    auth: 'admin',
    status: 201,
    body: z.intersection(z.object({ table: TableParam, name: LabelSchema }), FilterSpecBody),
    response: OkSchema,
    handler: ({ services, actor, body }) => {
      const { table, name, ...spec } = body;
      return commit({ services, actor }, 'filter.put', `${table}/${name}`, (world) =>
        editPolicy(services, world, (doc) => ({ ...doc, filters: { ...doc.filters, [table]: { ...doc.filters?.[table], [name]: spec } } })),
      );
    },
  }),
  route({
    method: 'delete',
    path: '/v1/filters/:table/:name',
    summary: 'Delete a data filter (refused while a grant uses it)',
    tag: 'filters',
    auth: 'admin',
    params: z.object({ table: TableParam, name: LabelSchema }).strict(),
    response: OkSchema,
    handler: ({ services, actor, params }) =>
      commit({ services, actor }, 'filter.delete', `${params.table}/${params.name}`, (world) =>
        editPolicy(services, world, (doc) => {
          const byName = doc.filters?.[params.table];
          if (byName?.[params.name] === undefined) throw notFound('filter', `${params.table}/${params.name}`);
          const { [params.name]: _removed, ...rest } = byName;
          return { ...doc, filters: { ...doc.filters, [params.table]: rest } };
        }),
      ),
  }),
  route({
    method: 'get',
    path: '/v1/guardrails',
    summary: 'List guardrails',
    tag: 'guardrails',
    auth: 'admin',
    response: z.object({ guardrails: z.array(z.record(z.string(), z.unknown())) }),
    handler: async ({ services }) => {
      const doc = fromWorld((await services.state.snapshot()).world);
      return { guardrails: Object.entries(doc.guardrails ?? {}).map(([name, g]) => ({ name, ...g })) };
    },
  }),
  route({
    method: 'put',
    path: '/v1/guardrails/:name',
    summary: 'Create or replace a guardrail: deny actions on resources matching a tag expression',
    tag: 'guardrails',
    auth: 'admin',
    params: z.object({ name: LabelSchema }).strict(),
    body: GuardrailBody,
    response: OkSchema,
    handler: ({ services, actor, params, body }) =>
      commit({ services, actor }, 'guardrail.put', params.name, (world) =>
        editPolicy(services, world, (doc) => ({ ...doc, guardrails: { ...doc.guardrails, [params.name]: body } })),
      ),
  }),
  route({
    method: 'delete',
    path: '/v1/guardrails/:name',
    summary: 'Delete a guardrail',
    tag: 'guardrails',
    auth: 'admin',
    params: z.object({ name: LabelSchema }).strict(),
    response: OkSchema,
    handler: ({ services, actor, params }) =>
      commit({ services, actor }, 'guardrail.delete', params.name, (world) => {
        if (!world.guardrails.some((g) => g.name === params.name)) throw notFound('guardrail', params.name);
        return [{ op: 'delete', kind: 'guardrail', key: params.name }];
      }),
  }),
];
