/**
 * Governed lake queries: the gateway wires the pipeline's steps together.
 *
 * 1. Parse (`parse.ts`): DuckDB's own parser, in an instance that never
 *    executes user text; anything that is not one SELECT statement is refused.
 * 2. Analyze and authorize (`analyze.ts`, `authorize.ts`): the tree is walked
 *    with one handler per node kind (fail closed), and every catalog table it
 *    reaches is authorized for SELECT through the policy engine.
 * 3. Rewrite (`rewrite.ts`): each table reference becomes a subquery over its
 *    lake files that applies the row predicate in WHERE and masks each visible
 *    column with its cell predicate; hidden columns are simply not there.
 * 4. Execute (`execute.ts`) in the sandbox (`sandbox.ts`): no file or network
 *    access beyond the registered lake locations, configuration locked, under
 *    a timeout, a row cap, a memory limit and concurrency limits (`limiter.ts`).
 *
 * Plans are cached (`plan-cache.ts`). Every query, allowed or refused, is
 * appended to the decision log and to the query history (`query-log.ts`).
 */
import { StewardError, isStewardError } from '../errors.js';
import type { PrincipalRef } from '../policy/model.js';
import { authorizeQuery } from './authorize.js';
import { bindValues, withFiles } from './binds.js';
import { execute } from './execute.js';
import { createLimiter } from './limiter.js';
import { checkText, parseQuery } from './parse.js';
import { createPlanCache, nextExpiry, planCacheKey } from './plan-cache.js';
import { NOTHING_USED, createRecorder, messageOf } from './query-log.js';
import { remoteCatalogsCache } from './remote.js';
import { createRewriter } from './rewrite.js';
import { createSandboxPool, lazyParser } from './sandbox.js';
import { placeholdersToParameters } from './template.js';
import { DEFAULT_LIMITS, type Gateway, type GatewayDeps, type GatewayLimits, type ParamValue, type QueryPlan, type QueryRequest, type QueryStream, type SessionScope } from './types.js';

export * from './types.js';
export { fileParameters } from './binds.js';
export { firstKeyword } from './parse.js';
export { nextExpiry } from './plan-cache.js';
export { governedSql, splicePlaceholders } from './rewrite.js';

export async function createGateway(deps: GatewayDeps): Promise<Gateway> {
  const limits: GatewayLimits = Object.freeze({ ...DEFAULT_LIMITS, ...deps.limits });
  const parser = lazyParser();
  const limiter = createLimiter({ global: limits.maxConcurrent, perPrincipal: limits.maxPerPrincipal, maxWaitMs: limits.maxWaitMs, maxQueue: limits.maxQueue });
  const rewriter = createRewriter(parser);
  const plans = createPlanCache();
  const sandboxes = createSandboxPool({ memoryLimit: limits.memoryLimit, threads: limits.threads });
  const record = createRecorder(deps);
  const remoteCatalogs = remoteCatalogsCache(deps.remote);
  let closed = false;

  const plan = async (principal: PrincipalRef, sqlText: string, params: Readonly<Record<string, ParamValue>> = {}, session?: Pick<SessionScope, 'rows'>): Promise<QueryPlan> => {
    checkText(sqlText, limits.maxSqlLength);
    if (Object.keys(params).length > limits.maxParameters) throw new StewardError('STEWARD_E_VALIDATION', `at most ${limits.maxParameters} parameters are accepted`);
    const { sql } = placeholdersToParameters(sqlText);
    const snap = await deps.snapshot();
    const cacheKey = planCacheKey(snap.version, principal, params, sql, session);
    const now = Date.now();
    const cached = plans.get(cacheKey, now);
    if (cached !== undefined) return { ...cached, binds: withFiles(bindValues(cached.parameters, params), cached.fileParams), snapshot: snap };
    const statement = await parseQuery(parser, sql, sqlText);
    const authorized = authorizeQuery({
      snapshot: snap,
      principal,
      statement,
      params,
      leakproofRewrite: deps.leakproofRewrite !== false,
      remoteCatalogs: await remoteCatalogs(snap.world),
      ...(session === undefined ? {} : { sessionRows: session.rows }),
    });
    const rewritten = await rewriter.rewrite(authorized, params);
    const result: QueryPlan = {
      principal,
      sql: rewritten.sql,
      tables: authorized.analysis.tables,
      parameters: authorized.analysis.parameters,
      binds: rewritten.binds,
      grants: authorized.grants,
      snapshot: snap,
      leakproof: authorized.leakproof,
      files: authorized.files,
      fileParams: rewritten.fileParams,
      ...(rewritten.remote.length === 0 ? {} : { remote: rewritten.remote }),
    };
    plans.set(cacheKey, result, nextExpiry(snap.world.grants, now));
    return result;
  };

  const open = async (req: QueryRequest): Promise<QueryStream> => {
    if (closed) throw new StewardError('STEWARD_E_INTERNAL', 'the gateway is closed');
    const started = performance.now();
    let p: QueryPlan;
    try {
      p = await plan(req.principal, req.sql, req.params ?? {}, req.session);
    } catch (e) {
      const outcome = isStewardError(e) && ['STEWARD_E_FORBIDDEN', 'STEWARD_E_NOT_FOUND'].includes(e.code) ? 'refused' : 'failed';
      await record(req, outcome, NOTHING_USED, performance.now() - started, 0, messageOf(e));
      throw e;
    }
    return run(req, p, started, record);
  };

  /** Runs a plan under the limits: a concurrency slot, the row cap and the timeout. */
  const run = async (req: QueryRequest, p: QueryPlan, started: number, rec: typeof record): Promise<QueryStream> => {
    const maxRows = Math.max(0, Math.min(req.maxRows ?? limits.maxRows, limits.maxRows));
    const timeoutMs = Math.max(1, Math.min(req.timeoutMs ?? limits.timeoutMs, limits.timeoutMs));
    let release: () => void;
    try {
      // Embed sessions share one principal: each vendor user gets its own per-principal slots, so one viewer cannot starve the rest.
      release = await limiter.acquire(req.session === undefined ? req.principal : `embed:${req.session.user}`, req.signal);
    } catch (e) {
      await rec(req, 'failed', p, performance.now() - started, 0, messageOf(e));
      throw e;
    }
    return execute({ plan: p, request: req, started, maxRows, timeoutMs, release, sandboxes, record: rec, ...(deps.remote === undefined ? {} : { remote: deps.remote }) });
  };

  const openPlan = async (req: QueryRequest, p: QueryPlan, options: { readonly log?: boolean } = {}): Promise<QueryStream> => {
    if (closed) throw new StewardError('STEWARD_E_INTERNAL', 'the gateway is closed');
    return run(req, p, performance.now(), options.log === false ? async () => undefined : record);
  };

  return {
    plan,
    open,
    openPlan,
    parser,
    limits,
    limiter,
    close: async () => {
      closed = true;
      parser.close();
      await sandboxes.close();
    },
  };
}
