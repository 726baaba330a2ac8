/**
 * The decision API Trino's OPA access-control plugin calls, answering in
 * OPA's `{"result": …}` envelope (docs/trino.md):
 *
 * - POST /v1/trino/opa/allow          opa.policy.uri                   → boolean
 * - POST /v1/trino/opa/batch          opa.policy.batched-uri           → allowed indexes
 * - POST /v1/trino/opa/row-filters    opa.policy.row-filters-uri       → [{expression}]
 * - POST /v1/trino/opa/column-mask    opa.policy.column-masking-uri    → {expression} | null
 * - POST /v1/trino/opa/column-masks   opa.policy.batch-column-masking-uri → [{index, viewExpression}]
 *
 * Callers: an admin token, or a user token of a principal listed in
 * STEWARD_TRINO_PRINCIPALS (what the coordinator holds: it may ask about any
 * user, so it should be able to do nothing else). Trino catalog names are
 * translated first (STEWARD_TRINO_CATALOGS, catalog-names.ts). Every request is decided on
 * one engine snapshot, the one /v1/authorize uses, and appended to the
 * decision log as one entry, a batch included.
 */
import { withResidency } from '../residency/residency-trino.js';
import { trinoRegionOf } from '../residency/residency-config.js';
import { z } from 'zod';
import { route, type RouteDef } from '../server/route.js';
import { actorName, type Actor } from '../server/actor.js';
import type { Services } from '../server/services.js';
import type { DecisionResult } from '../store/decision-log.js';
import { invalid, StewardError } from '../errors.js';
import { OpaRequest, type OpaInput } from './opa-input.js';
import { inStewardCatalogs } from './catalog-names.js';
import { decideAllow, decideBatch, decideColumnMask, decideColumnMasks, decideRowFilters, principalOf, type TrinoWorld } from './opa-decide.js';

const ViewExpressionOut = z.object({ expression: z.string() });

function requireTrinoCaller(services: Services, actor: Actor): void {
  if (actor.role === 'admin' || services.config.trinoPrincipals.includes(actor.principal)) return;
  throw new StewardError('STEWARD_E_FORBIDDEN', `\`${actor.principal}\` may not call the trino decision api (an admin token, or a principal in STEWARD_TRINO_PRINCIPALS)`);
}

/** Where a request's resource points, for the log: the first resource named. */
function resourceOf(input: OpaInput): string {
  const r = input.action.resource ?? input.action.filterResources?.[0];
  if (r?.column !== undefined) return `${r.column.catalogName}.${r.column.schemaName}.${r.column.tableName}.${r.column.columnName}`;
  if (r?.table !== undefined) return `${r.table.catalogName}.${r.table.schemaName}.${r.table.tableName}`;
  if (r?.schema !== undefined) return `${r.schema.catalogName}.${r.schema.schemaName}`;
  if (r?.catalog !== undefined) return r.catalog.name;
  return '';
}

interface Outcome {
  readonly result: DecisionResult;
  readonly reason: string;
}

/**
 * Decides on the current snapshot and logs one entry: the calling token as
 * actor, the Trino user as principal, the operation, and what came out.
 */
async function decideAndLog<R>(
  services: Services,
  actor: Actor,
  endpoint: string,
  input: OpaInput,
  decide: (w: TrinoWorld, input: OpaInput) => R,
  outcome: (r: R) => Outcome,
): Promise<R> {
  requireTrinoCaller(services, actor);
  const snap = await services.state.snapshot();
  // Residency guardrails deny tables whose Trino catalog is outside their regions (docs/residency.md).
  const engine = withResidency(snap.engine, snap.world, (catalog) => trinoRegionOf(services.config, catalog));
  const r = decide({ world: snap.world, engine, now: Date.now() }, inStewardCatalogs(services.config.trinoCatalogs, input));
  const o = outcome(r);
  const principal = principalOf(input);
  await services.state.log([
    {
      actor: actorName(actor),
      action: `trino.${endpoint}.${input.action.operation}`,
      resource: resourceOf(input),
      result: o.result,
      reason: o.reason,
      details: {
        principal: principal ?? `invalid trino user \`${input.context.identity.user.slice(0, 64)}\``,
        ...(input.action.filterResources === undefined ? {} : { items: input.action.filterResources.length }),
      },
    },
  ]);
  return r;
}

const batchSize = (input: OpaInput): number => input.action.filterResources?.length ?? 0;

export const trinoRoutes: readonly RouteDef[] = [
  route({
    method: 'post',
    path: '/v1/trino/opa/allow',
    summary: 'Trino OPA plugin (opa.policy.uri): may the user perform the operation on the resource',
    tag: 'trino',
    auth: 'user',
    body: OpaRequest,
    response: z.object({ result: z.boolean() }),
    handler: async ({ services, actor, body }) => {
      const result = await decideAndLog(services, actor, 'allow', body.input, decideAllow, (ok) => ({
        result: ok ? 'allow' : 'deny',
        reason: ok ? 'allowed by steward policy' : 'denied: no grant, a guardrail, or an operation steward does not map',
      }));
      return { result };
    },
  }),
  route({
    method: 'post',
    path: '/v1/trino/opa/batch',
    summary: 'Trino OPA plugin (opa.policy.batched-uri): the indexes of the resources the user may see',
    tag: 'trino',
    auth: 'user',
    body: OpaRequest,
    response: z.object({ result: z.array(z.number().int()) }),
    handler: async ({ services, actor, body }) => {
      if (body.input.action.filterResources === undefined) {
        throw invalid('input.action.filterResources', 'required in a batch request');
      }
      if (body.input.action.operation === 'FilterColumns' && body.input.action.filterResources.length !== 1) {
        throw invalid('input.action.filterResources', 'FilterColumns takes exactly one table');
      }
      const result = await decideAndLog(services, actor, 'batch', body.input, decideBatch, (ids) => {
        const of = body.input.action.operation === 'FilterColumns' ? (body.input.action.filterResources?.[0]?.table?.columns?.length ?? 0) : batchSize(body.input);
        // A batch that allows some items is logged `allow` (the reason says how many).
        return { result: ids.length === 0 && of > 0 ? 'deny' : 'allow', reason: `${ids.length} of ${of} allowed` };
      });
      return { result };
    },
  }),
  route({
    method: 'post',
    path: '/v1/trino/opa/row-filters',
    summary: 'Trino OPA plugin (opa.policy.row-filters-uri): the row filter of a table for the user, in Trino SQL',
    tag: 'trino',
    auth: 'user',
    body: OpaRequest,
    response: z.object({ result: z.array(ViewExpressionOut) }),
    handler: async ({ services, actor, body }) => {
      const result = await decideAndLog(services, actor, 'row-filters', body.input, decideRowFilters, (fs) => ({
        result: 'ok',
        reason: fs.length === 0 ? 'no row filter' : `row filter ${fs[0]?.expression.slice(0, 200) ?? ''}`,
      }));
      return { result };
    },
  }),
  route({
    method: 'post',
    path: '/v1/trino/opa/column-mask',
    summary: 'Trino OPA plugin (opa.policy.column-masking-uri): the mask of one column for the user, or null',
    tag: 'trino',
    auth: 'user',
    body: OpaRequest,
    response: z.object({ result: ViewExpressionOut.nullable() }),
    handler: async ({ services, actor, body }) => {
      const result = await decideAndLog(services, actor, 'column-mask', body.input, decideColumnMask, (m) => ({
        result: 'ok',
        reason: m === null ? 'no mask' : `mask ${m.expression.slice(0, 200)}`,
      }));
      return { result };
    },
  }),
  route({
    method: 'post',
    path: '/v1/trino/opa/column-masks',
    summary: 'Trino OPA plugin (opa.policy.batch-column-masking-uri): the masks of several columns, by index',
    tag: 'trino',
    auth: 'user',
    body: OpaRequest,
    response: z.object({ result: z.array(z.object({ index: z.number().int(), viewExpression: ViewExpressionOut })) }),
    handler: async ({ services, actor, body }) => {
      const result = await decideAndLog(services, actor, 'column-masks', body.input, decideColumnMasks, (ms) => ({
        result: 'ok',
        reason: `${ms.length} of ${batchSize(body.input)} column(s) masked`,
      }));
      return { result };
    },
  }),
];
