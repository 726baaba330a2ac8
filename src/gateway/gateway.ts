/**
 * Governed lake queries: parse → authorize → rewrite → run.
 *
 * 1. Parse: DuckDB's own parser (`json_serialize_sql`, in an instance that
 *    never executes user text). Syntax errors come back with DuckDB's message
 *    and position; anything that is not one SELECT statement is refused.
 * 2. Authorize and rewrite (`analyze.ts`): every catalog table the query
 *    reaches is authorized for SELECT through the policy engine and replaced by
 *    a subquery over its lake files that
 *      - applies the row predicate in WHERE (so Parquet statistics still prune
 *        row groups), and
 *      - exposes each visible column as `CASE WHEN <cell predicate> THEN col END`,
 *    so whatever DuckDB's optimizer reorders, the user's expressions only ever
 *    see NULL for rows and cells the principal may not see. Hidden columns are
 *    simply not there: `SELECT *` is the visible columns, and naming a hidden
 *    one is refused with the grant that would allow it.
 * 3. Run in the sandbox (`sandbox.ts`): no file or network access beyond the
 *    registered lake locations, configuration locked, under a timeout, a row
 *    cap, a memory limit and concurrency limits.
 *
 * Every query, allowed or refused, is appended to the decision log and to the
 * query history.
 */
import { randomUUID } from 'node:crypto';
import { parse as parseLossless, stringify as stringifyLossless } from 'lossless-json';
import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api';
import { StewardError, isStewardError, type ErrorDetail } from '../errors.js';
import type { Decision } from '../policy/decision.js';
import type { PrincipalRef, Table } from '../policy/model.js';
import { quoteIdent, quoteLiteral, samePredicate, toSql, type Predicate } from '../policy/predicate.js';
import type { Snapshot } from '../workspace/state-service.js';
import type { DecisionLogEntry } from '../store/decision-log.js';
import { analyzeStatement, asciiLower, refusal, type Json, type TableName } from './analyze.js';
import { lakeAccessOf, openParser, openSandbox, sandboxKey, type Parser, type Sandbox } from './sandbox.js';
import { createLimiter, type Limiter } from './limiter.js';
import { placeholdersToParameters } from './template.js';
import { isLeakproof, paramSignature, pinnedType, typeFamily, type ColumnFamilies } from './leakproof.js';

export type ParamValue = string | number | boolean | null;

export interface GatewayLimits {
  /** Longest SQL text accepted, in characters. */
  readonly maxSqlLength: number;
  /** Rows returned at most; a longer result is cut and flagged `truncated`. */
  readonly maxRows: number;
  /** Per-query timeout; the query is interrupted when it passes. */
  readonly timeoutMs: number;
  /** DuckDB memory limit of the execution instance, shared by running queries. */
  readonly memoryLimit: string;
  readonly threads: number;
  /** Queries running at once, in total and per principal. */
  readonly maxConcurrent: number;
  readonly maxPerPrincipal: number;
  /** How long a query waits for a slot, and how many may wait. */
  readonly maxWaitMs: number;
  readonly maxQueue: number;
  readonly maxParameters: number;
}

export const DEFAULT_LIMITS: GatewayLimits = Object.freeze({
  maxSqlLength: 100_000,
  maxRows: 100_000,
  timeoutMs: 60_000,
  memoryLimit: '2GB',
  threads: 2,
  maxConcurrent: 8,
  maxPerPrincipal: 2,
  maxWaitMs: 10_000,
  maxQueue: 64,
  maxParameters: 100,
});

/** A query as the caller asks it. */
export interface QueryRequest {
  /** Whose permissions apply. */
  readonly principal: PrincipalRef;
  /** Who asked, for the logs (`user:admin` when an admin runs `--as`). */
  readonly actor: string;
  readonly sql: string;
  readonly params?: Readonly<Record<string, ParamValue>>;
  readonly maxRows?: number;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Set when an admin runs the query as someone else. */
  readonly impersonatedBy?: string;
  /** Id of the saved query this run comes from. */
  readonly savedQuery?: string;
}

/** The rewritten query, ready to run. */
export interface QueryPlan {
  readonly principal: PrincipalRef;
  /** The SQL the sandbox runs (never shown to users: it names files and predicates). */
  readonly sql: string;
  readonly tables: readonly string[];
  readonly parameters: readonly string[];
  /** The policy snapshot the plan was authorized against. */
  readonly snapshot: Snapshot;
  /** Bound values in DuckDB form: named, or positional for `$1, $2, …`. */
  readonly binds: Record<string, DuckDBValue> | DuckDBValue[] | undefined;
  /** Columns of referenced tables the principal may not read (used to explain binder errors). */
  readonly hidden: ReadonlyMap<string, string>;
  /** The grants that allowed the query, logged so access reviews (and just-in-time requests) can see what each query used. */
  readonly grants: readonly string[];
  /** True when the query took the fast path: columns whose mask is always true under the row predicate are exposed unmasked (leakproof.ts). */
  readonly leakproof: boolean;
  /** Lake locations the query reads, fingerprinted before it runs (see sandbox.ts, "File caches"). */
  readonly files: readonly string[];
  /** The parameters that carry `files` into the readers (`binds` includes them; see `fileParameters`). */
  readonly fileParams: readonly FileParam[];
}

/** A lake location bound as a parameter of the rewritten SQL: `$<name>` in the text. */
export interface FileParam {
  readonly name: string;
  readonly location: string;
}

/** What a query used, for the log: the tables it read and the grants that allowed them. */
type Used = Pick<QueryPlan, 'tables' | 'grants'>;
const NOTHING_USED: Used = { tables: [], grants: [] };

export interface ResultColumn {
  readonly name: string;
  readonly type: string;
}

/** An open, streaming result. Read `batches` once; `summary` settles when the query is over. */
export interface QueryStream {
  readonly columns: readonly ResultColumn[];
  readonly tables: readonly string[];
  /** Row batches (arrays of DuckDB values), at most maxRows rows in total. */
  batches(): AsyncGenerator<DuckDBValue[][]>;
  /** Stops the query and frees its resources (safe to call at any time). */
  cancel(): void;
  readonly summary: Promise<QuerySummary>;
}

export interface QuerySummary {
  readonly rowCount: number;
  readonly truncated: boolean;
  readonly durationMs: number;
}

export interface HistoryEntry {
  readonly principal: string;
  readonly actor: string;
  readonly sql: string;
  readonly tables: readonly string[];
  readonly durationMs: number;
  readonly rowCount: number;
  readonly outcome: 'allowed' | 'refused' | 'failed';
  readonly message?: string;
  readonly savedQuery?: string;
}

export interface GatewayDeps {
  readonly snapshot: () => Promise<Snapshot>;
  readonly log: (entries: DecisionLogEntry[]) => Promise<void>;
  readonly recordHistory?: (entry: HistoryEntry) => Promise<void>;
  readonly limits?: Partial<GatewayLimits>;
  /** Set to false to mask every column on every query (the fast path off: for comparisons in tests and benchmarks). */
  readonly leakproofRewrite?: boolean;
}

export interface Gateway {
  /** Parse, authorize and rewrite; throws the refusal. Logs nothing. */
  plan(principal: PrincipalRef, sql: string, params?: Readonly<Record<string, ParamValue>>): Promise<QueryPlan>;
  /** Plan and start a query, under the concurrency limits; logs the outcome when it ends. */
  open(req: QueryRequest): Promise<QueryStream>;
  readonly limits: GatewayLimits;
  readonly limiter: Limiter;
  close(): Promise<void>;
}

const TABLE_CACHE_MAX = 1000;
const PLAN_CACHE_MAX = 2000;

export async function createGateway(deps: GatewayDeps): Promise<Gateway> {
  const limits: GatewayLimits = Object.freeze({ ...DEFAULT_LIMITS, ...deps.limits });
  const parser = await openParser();
  const limiter = createLimiter({ global: limits.maxConcurrent, perPrincipal: limits.maxPerPrincipal, maxWaitMs: limits.maxWaitMs, maxQueue: limits.maxQueue });
  // Parsed governed subqueries by their SQL text (the text already encodes the table, decision and source).
  const subqueries = new Map<string, Json>();
  // Names no user text can guess; see `rewrite`.
  const placeholderSchema = `__steward_${randomUUID().replaceAll('-', '')}`;
  const fileParamPrefix = `__steward_${randomUUID().replaceAll('-', '')}_f`;
  const plans = new Map<string, { readonly plan: QueryPlan; readonly validUntil: number }>();
  let sandbox: Promise<Sandbox> | null = null;
  let sandboxFor = '';
  let closed = false;

  // Lake access per policy world (worlds are immutable snapshots): computed once, not per query.
  const accessByWorld = new WeakMap<object, { access: ReturnType<typeof lakeAccessOf>; key: string }>();
  const replaceSandbox = (access: ReturnType<typeof lakeAccessOf>, key: string): Promise<Sandbox> => {
    const previous = sandbox;
    sandboxFor = key;
    const next = openSandbox(access, { memoryLimit: limits.memoryLimit, threads: limits.threads });
    sandbox = next;
    next.catch(() => {
      if (sandbox === next) {
        sandbox = null;
        sandboxFor = '';
      }
    });
    if (previous !== null) previous.then((s) => s.retire(), () => undefined);
    return next;
  };
  /**
   * The sandbox for the world's lake locations, with no cache older than the files `files` (see sandbox.ts, "File
   * caches"), entered (the caller leaves it when the query ends): a sandbox retired meanwhile stays open for it.
   */
  const sandboxOf = async (snap: Snapshot, files: readonly string[]): Promise<Sandbox> => {
    let known = accessByWorld.get(snap.world);
    if (known === undefined) {
      const access = lakeAccessOf(snap.world.tables.flatMap((t) => (t.source.kind === 'lake' ? [t.source.location] : [])));
      known = { access, key: sandboxKey(access) };
      accessByWorld.set(snap.world, known);
    }
    const { access, key } = known;
    let current = sandbox === null || key !== sandboxFor ? replaceSandbox(access, key) : sandbox;
    // A file changed since the sandbox may have cached its footer or bytes: a new instance, empty caches. The new
    // one records fingerprints taken before it reads anything; a file that keeps changing is refused, not trusted.
    for (let attempt = 0; ; attempt++) {
      const box = await current;
      if (box.enter()) {
        if (!(await box.stale(files))) return box;
        box.leave();
      }
      if (attempt === 3) throw new StewardError('STEWARD_E_CONFLICT', 'the lake files of this query changed while it started: run it again');
      // Another query may already have replaced it (same locations): use that one, which records its own fingerprints.
      current = sandbox !== null && sandbox !== current && sandboxFor === key ? sandbox : replaceSandbox(access, key);
    }
  };

  const subqueryRef = async (sql: string): Promise<Json> => {
    const cached = subqueries.get(sql);
    if (cached !== undefined) return cached;
    const parsed = parseTree(await parser.serialize(`SELECT * FROM (${sql}) AS t`));
    const st = firstStatement(parsed);
    const node = st['node'] as Json;
    const ref = node['from_table'] as Json;
    if (subqueries.size >= TABLE_CACHE_MAX) subqueries.clear();
    subqueries.set(sql, ref);
    return ref;
  };

  /**
   * SQL text for the rewritten tree. Each catalog table reference is first
   * printed as a placeholder table (`__steward_<nonce>.s<i>e`, under the user's
   * alias, sample and column aliases) and the placeholder is then replaced by
   * the governed subquery's text: DuckDB prints a much smaller tree, and the
   * governed subqueries are never parsed per query. A placeholder that does not
   * occur exactly once in the printed text (user text can never produce one
   * that matches, but if it did) falls back to printing the whole tree with the
   * governed subqueries parsed into it.
   */
  const rewrite = async (statement: Json, pending: readonly { node: Json; sql: string }[]): Promise<string> => {
    const saved = pending.map((p) => ({ ...p.node }));
    pending.forEach((p, i) => {
      Object.assign(p.node, { type: 'BASE_TABLE', catalog_name: '', schema_name: placeholderSchema, table_name: `s${i}e`, at_clause: null });
    });
    const printed = await parser.deserialize(stringifyLossless({ error: false, statements: [statement] }) ?? '');
    const out = splicePlaceholders(printed, placeholderSchema, pending.map((p) => p.sql));
    if (out !== null) return out;
    // Fallback: the governed subqueries parsed into the tree, the whole tree printed.
    for (const [i, p] of pending.entries()) {
      for (const k of Object.keys(p.node)) delete p.node[k];
      Object.assign(p.node, saved[i]);
      p.node['subquery'] = (await subqueryRef(p.sql))['subquery'];
    }
    return parser.deserialize(stringifyLossless({ error: false, statements: [statement] }) ?? '');
  };

  const plan = async (principal: PrincipalRef, sqlText: string, params: Readonly<Record<string, ParamValue>> = {}): Promise<QueryPlan> => {
    checkText(sqlText, limits.maxSqlLength);
    const paramNames = Object.keys(params);
    if (paramNames.length > limits.maxParameters) throw new StewardError('STEWARD_E_VALIDATION', `at most ${limits.maxParameters} parameters are accepted`);
    const { sql } = placeholdersToParameters(sqlText);
    const snap = await deps.snapshot();
    // Same text, principal and policy version: same rewrite (parsing is a function of the text, and only texts that
    // planned successfully are cached). Parameterized queries (saved queries, apps) and repeated texts skip parsing.
    // The fast path (unmasked columns) depends on the parameters' types, so they are part of the key.
    const cacheKey = `${snap.version}\u0000${principal}\u0000${paramSignature(params)}\u0000${sql}`;
    const now = Date.now();
    const cached = plans.get(cacheKey);
    // A time-bound grant can expire without the policy version changing: a plan is only reused before the next expiry.
    if (cached !== undefined && now < cached.validUntil) {
      return { ...cached.plan, binds: withFiles(bindValues(cached.plan.parameters, params), cached.plan.fileParams), snapshot: snap };
    }
    const parsed = parseTree(await parser.serialize(sql));
    if (parsed['error'] === true) throw parseError(parsed, sqlText);
    const statements = parsed['statements'];
    if (!Array.isArray(statements) || statements.length === 0) throw new StewardError('STEWARD_E_VALIDATION', 'the query is empty');
    if (statements.length > 1) {
      throw refusal(`only one statement may run at a time, found ${statements.length}: multiple statements are refused`);
    }
    // Authorization runs synchronously inside the walk; subqueries are parsed afterwards and patched in.
    const tables: { node: Json; render: (location: string) => string; location: string }[] = [];
    const hidden = new Map<string, string>();
    const visibleNames = new Set<string>();
    const grants = new Set<string>();
    const files = new Set<string>();
    // Decided on the tree as written, before the rewrite changes it (see leakproof.ts).
    const leakproof = deps.leakproofRewrite !== false && isLeakproof(statements[0], (name) => columnFamilies(snap, name), params);
    const analysis = analyzeStatement(statements[0] as Json, (name, written, node) => {
      const { render, hiddenColumns, visibleColumns, full, matchedGrants, location } = governedTable(snap, principal, name, written, leakproof);
      for (const g of matchedGrants) grants.add(g);
      files.add(location);
      for (const c of hiddenColumns) if (!hidden.has(c)) hidden.set(c, full);
      for (const c of visibleColumns) visibleNames.add(c);
      tables.push({ node, render, location });
    });
    for (const name of analysis.valueFunctions) {
      if (!visibleNames.has(name)) throw refusal(`\`${name}\` reveals the environment and is not allowed in governed queries`);
    }
    const fileParams = fileParameters(analysis.parameters, [...files], fileParamPrefix);
    const binds = withFiles(bindValues(analysis.parameters, params), fileParams);
    const paramOf = new Map(fileParams.map((f) => [f.location, f.name]));
    const pending = tables.map((t) => ({ node: t.node, sql: t.render(`$${paramOf.get(t.location) ?? ''}`) }));
    const finalSql = await rewrite(analysis.statement, pending);
    const result = {
      principal,
      sql: finalSql,
      tables: analysis.tables,
      parameters: analysis.parameters,
      binds,
      hidden,
      grants: [...grants].sort(),
      snapshot: snap,
      leakproof,
      files: [...files],
      fileParams,
    };
    if (plans.size >= PLAN_CACHE_MAX) plans.clear();
    plans.set(cacheKey, { plan: result, validUntil: nextExpiry(snap.world.grants, now) });
    return result;
  };

  const record = async (req: QueryRequest, outcome: HistoryEntry['outcome'], used: Used, durationMs: number, rowCount: number, message: string): Promise<void> => {
    const { tables } = used;
    const details: Record<string, unknown> = { principal: req.principal, sql: req.sql.slice(0, 4000), tables, durationMs, rows: rowCount };
    if (used.grants.length > 0) details['grants'] = used.grants;
    if (req.impersonatedBy !== undefined) details['impersonatedBy'] = req.impersonatedBy;
    if (req.savedQuery !== undefined) details['savedQuery'] = req.savedQuery;
    const entry: DecisionLogEntry = {
      actor: req.actor,
      action: req.impersonatedBy === undefined ? 'query.run' : 'query.run-as',
      resource: tables.length === 0 ? '-' : tables.join(','),
      result: outcome === 'allowed' ? 'allow' : outcome === 'refused' ? 'deny' : 'error',
      reason: message,
      details,
    };
    const tasks: Promise<void>[] = [deps.log([entry])];
    if (deps.recordHistory !== undefined) {
      tasks.push(
        deps.recordHistory({
          principal: req.principal,
          actor: req.actor,
          sql: req.sql,
          tables,
          durationMs: Math.round(durationMs),
          rowCount,
          outcome,
          message,
          ...(req.savedQuery === undefined ? {} : { savedQuery: req.savedQuery }),
        }),
      );
    }
    await Promise.all(tasks);
  };

  const open = async (req: QueryRequest): Promise<QueryStream> => {
    if (closed) throw new StewardError('STEWARD_E_INTERNAL', 'the gateway is closed');
    const started = performance.now();
    let p: QueryPlan;
    try {
      p = await plan(req.principal, req.sql, req.params ?? {});
    } catch (e) {
      const outcome = isStewardError(e) && ['STEWARD_E_FORBIDDEN', 'STEWARD_E_NOT_FOUND'].includes(e.code) ? 'refused' : 'failed';
      await record(req, outcome, NOTHING_USED, performance.now() - started, 0, messageOf(e));
      throw e;
    }
    const maxRows = Math.max(0, Math.min(req.maxRows ?? limits.maxRows, limits.maxRows));
    const timeoutMs = Math.max(1, Math.min(req.timeoutMs ?? limits.timeoutMs, limits.timeoutMs));
    let release: () => void;
    try {
      release = await limiter.acquire(req.principal, req.signal);
    } catch (e) {
      await record(req, 'failed', p, performance.now() - started, 0, messageOf(e));
      throw e;
    }
    let box: Sandbox | undefined;
    let con: DuckDBConnection | undefined;
    let timer: NodeJS.Timeout | undefined;
    let stop: 'timeout' | 'cancel' | null = null;
    let finished = false;
    const onAbort = (): void => cancel('cancel');
    const cancel = (why: 'timeout' | 'cancel'): void => {
      if (finished) return;
      stop ??= why;
      con?.interrupt();
    };
    const cleanup = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
      try {
        con?.closeSync();
      } catch {
        // already closed
      }
      box?.leave();
      release();
    };
    const fail = (e: unknown): StewardError => {
      if (stop === 'timeout') return new StewardError('STEWARD_E_TIMEOUT', `query exceeded the time limit of ${timeoutMs} ms and was stopped`);
      if (stop === 'cancel') return new StewardError('STEWARD_E_TIMEOUT', 'query cancelled');
      return runtimeError(e, p, req.principal);
    };
    let result: Awaited<ReturnType<DuckDBConnection['stream']>>;
    try {
      box = await sandboxOf(p.snapshot, p.files);
      con = await box.connect();
      timer = setTimeout(() => cancel('timeout'), timeoutMs);
      req.signal?.addEventListener('abort', onAbort, { once: true });
      if (req.signal?.aborted === true) cancel('cancel');
      // Prepared directly, not through `con.stream(sql)`, which first splits the text into statements (one more
      // round trip and parse): the rewrite is one statement, and `prepare` refuses more than one.
      const prepared = await con.prepare(p.sql);
      try {
        if (p.binds !== undefined) prepared.bind(p.binds);
        result = await prepared.stream();
      } finally {
        prepared.destroySync();
      }
      // The footers are read: a file rewritten since `sandboxOf` checked it may have been read through the cache.
      if (!(await box.unchanged(p.files))) {
        throw new StewardError('STEWARD_E_CONFLICT', 'the lake files of this query changed while it started: run it again');
      }
    } catch (e) {
      const err = isStewardError(e) && stop === null ? e : fail(e);
      cleanup();
      const refused = err.code === 'STEWARD_E_FORBIDDEN';
      await record(req, refused ? 'refused' : 'failed', p, performance.now() - started, 0, messageOf(err));
      throw err;
    }
    const names = result.deduplicatedColumnNames();
    const columns = names.map((name, i) => ({ name, type: result.columnType(i).toString() }));
    let rowCount = 0;
    let truncated = false;
    let settle!: (s: QuerySummary) => void;
    let reject!: (e: unknown) => void;
    const summary = new Promise<QuerySummary>((res, rej) => {
      settle = res;
      reject = rej;
    });
    summary.catch(() => undefined);
    let consumed = false;
    async function* batches(): AsyncGenerator<DuckDBValue[][]> {
      if (consumed) throw new StewardError('STEWARD_E_INTERNAL', 'a result can be read once');
      consumed = true;
      try {
        while (rowCount < maxRows || maxRows === 0) {
          if (stop !== null) throw fail(null);
          const chunk = await result.fetchChunk();
          if (chunk === null || chunk.rowCount === 0) break;
          let rows = chunk.getRows();
          if (rowCount + rows.length > maxRows) {
            rows = rows.slice(0, maxRows - rowCount);
            truncated = true;
          }
          rowCount += rows.length;
          if (rows.length > 0) yield rows;
          if (truncated) break;
        }
        if (rowCount >= maxRows && !truncated) {
          // Exactly maxRows so far: one more chunk tells whether the result was cut.
          const more = await result.fetchChunk();
          truncated = more !== null && more.rowCount > 0;
        }
        const durationMs = performance.now() - started;
        cleanup();
        await record(req, 'allowed', p, durationMs, rowCount, truncated ? `${rowCount} row(s), truncated` : `${rowCount} row(s)`);
        settle({ rowCount, truncated, durationMs });
      } catch (e) {
        const err = isStewardError(e) ? e : fail(e);
        cleanup();
        await record(req, err.code === 'STEWARD_E_FORBIDDEN' ? 'refused' : 'failed', p, performance.now() - started, rowCount, messageOf(err)).catch(() => undefined);
        reject(err);
        throw err;
      } finally {
        if (!finished) {
          // The reader stopped early (client went away): free the connection now.
          cancel('cancel');
          cleanup();
          await record(req, 'failed', p, performance.now() - started, rowCount, 'query cancelled').catch(() => undefined);
          reject(new StewardError('STEWARD_E_TIMEOUT', 'query cancelled'));
        }
      }
    }
    return {
      columns,
      tables: p.tables,
      batches,
      cancel: () => {
        cancel('cancel');
        if (!consumed) {
          consumed = true;
          cleanup();
          void record(req, 'failed', p, performance.now() - started, 0, 'query cancelled').catch(() => undefined);
          reject(new StewardError('STEWARD_E_TIMEOUT', 'query cancelled'));
        }
      },
      summary,
    };
  };

  return {
    plan,
    open,
    limits,
    limiter,
    close: async () => {
      closed = true;
      parser.close();
      if (sandbox !== null) await sandbox.then((s) => s.retire(), () => undefined);
    },
  };
}

// ------------------------------------------------------------ helpers

/**
 * Replaces each placeholder table `<schema>.s<i>e` of the printed SQL with
 * `(<subqueries[i]>)`. Null unless every placeholder occurs exactly once and
 * the schema name nowhere else (the caller then prints the tree the slow way).
 */
export function splicePlaceholders(printed: string, schema: string, subqueries: readonly string[]): string | null {
  const at: { index: number; marker: string; sql: string }[] = [];
  for (const [i, sql] of subqueries.entries()) {
    const marker = `${schema}.s${i}e`;
    const index = printed.indexOf(marker);
    if (index < 0 || printed.indexOf(marker, index + 1) >= 0) return null;
    at.push({ index, marker, sql });
  }
  let count = 0;
  for (let i = printed.indexOf(schema); i >= 0; i = printed.indexOf(schema, i + 1)) count++;
  if (count !== subqueries.length) return null;
  at.sort((a, b) => a.index - b.index);
  let out = '';
  let from = 0;
  for (const { index, marker, sql } of at) {
    out += `${printed.slice(from, index)}(${sql})`;
    from = index + marker.length;
  }
  return out + printed.slice(from);
}

function parseTree(json: string): Json {
  const v = parseLossless(json);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new StewardError('STEWARD_E_INTERNAL', 'the parser returned no tree');
  return v as Json;
}

function firstStatement(tree: Json): Json {
  const sts = tree['statements'];
  if (tree['error'] === true || !Array.isArray(sts) || sts.length !== 1) throw new StewardError('STEWARD_E_INTERNAL', 'the parser refused governed SQL');
  return sts[0] as Json;
}

function checkText(sql: string, max: number): void {
  if (typeof sql !== 'string' || sql.trim() === '') throw new StewardError('STEWARD_E_VALIDATION', 'the query is empty');
  if (sql.length > max) throw new StewardError('STEWARD_E_PAYLOAD_TOO_LARGE', `the query is ${sql.length} characters long, the maximum is ${max}`);
  if (sql.includes('\u0000')) throw new StewardError('STEWARD_E_VALIDATION', 'the query contains a NUL character');
}

/** The first keyword of a statement, for messages only (comments and parentheses skipped). */
export function firstKeyword(sql: string): string {
  let i = 0;
  while (i < sql.length) {
    const c = sql[i] as string;
    if (c === '-' && sql[i + 1] === '-') {
      const j = sql.indexOf('\n', i);
      i = j < 0 ? sql.length : j + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      const j = sql.indexOf('*/', i + 2);
      i = j < 0 ? sql.length : j + 2;
    } else if (c === '(' || c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === ';') {
      i++;
    } else break;
  }
  let j = i;
  while (j < sql.length && /[A-Za-z_]/.test(sql[j] as string)) j++;
  return sql.slice(i, j).toUpperCase();
}

function parseError(tree: Json, sql: string): StewardError {
  const message = String(tree['error_message'] ?? 'cannot parse the query');
  const type = String(tree['error_type'] ?? '');
  if (type === 'parser') {
    const pos = tree['position'] === undefined ? undefined : Number(String(tree['position']));
    const where = pos === undefined || Number.isNaN(pos) ? '' : ` at position ${pos}`;
    const details: ErrorDetail[] = pos === undefined || Number.isNaN(pos) ? [{ message }] : [{ path: `sql:${pos}`, message }];
    return new StewardError('STEWARD_E_PARSE', `syntax error${where}: ${message}`, { details });
  }
  if (message.includes('Only SELECT statements')) {
    const kw = firstKeyword(sql);
    return refusal(
      `only read-only SELECT queries may run through the gateway: ${kw === '' ? 'this statement is' : `\`${kw}\` statements are`} refused (COPY, ATTACH, DETACH, INSTALL, LOAD, PRAGMA, SET, RESET, CALL, EXPORT, IMPORT, PREPARE, EXECUTE, macros, DDL and DML never run)`,
      [{ path: 'statement', message: kw }],
    );
  }
  return refusal(`the query cannot be accepted: ${message}`);
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function bindValues(used: readonly string[], params: Readonly<Record<string, ParamValue>>): QueryPlan['binds'] {
  const given = Object.keys(params);
  for (const name of given) {
    if (!used.includes(name)) throw new StewardError('STEWARD_E_VALIDATION', `unknown parameter \`${name}\`: the query has no \`$${name}\``, { details: [{ path: `params.${name}`, message: 'unknown parameter' }] });
  }
  for (const name of used) {
    if (!(name in params)) throw new StewardError('STEWARD_E_VALIDATION', `missing value for parameter \`$${name}\``, { details: [{ path: `params.${name}`, message: 'missing value' }] });
  }
  if (used.length === 0) return undefined;
  const convert = (v: ParamValue): DuckDBValue => {
    if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : v;
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
    throw new StewardError('STEWARD_E_VALIDATION', 'parameter values must be strings, numbers, booleans or null');
  };
  if (used.every((n) => /^[0-9]+$/.test(n))) {
    const max = Math.max(...used.map(Number));
    const out: DuckDBValue[] = [];
    for (let i = 1; i <= max; i++) {
      const key = String(i);
      if (!(key in params)) throw new StewardError('STEWARD_E_VALIDATION', `missing value for parameter \`$${key}\``);
      out.push(convert(params[key] as ParamValue));
    }
    return out;
  }
  if (used.some((n) => /^[0-9]+$/.test(n))) throw new StewardError('STEWARD_E_VALIDATION', 'a query cannot mix named and numbered parameters');
  const out: Record<string, DuckDBValue> = {};
  for (const name of used) out[name] = convert(params[name] as ParamValue);
  return out;
}

/**
 * The parameters that carry lake locations into the rewritten SQL. The
 * locations are bound, not written as literals, so that preparing the
 * statement cannot bind the readers (DuckDB defers a statement whose table
 * function arguments are unknown to its execution): a prepared `read_parquet`
 * with a literal path is bound at prepare and bound again at execution,
 * reading the footers twice. Numbered after the user's own `$1…$n` when the
 * query uses numbered parameters, otherwise named with an unguessable prefix
 * (DuckDB cannot mix the two styles).
 */
export function fileParameters(userParams: readonly string[], locations: readonly string[], prefix: string): FileParam[] {
  if (userParams.some((n) => n.startsWith(prefix))) throw refusal('parameter names starting with `__steward_` are reserved');
  const numbered = userParams.every((n) => /^[0-9]+$/.test(n));
  const base = userParams.length === 0 ? 0 : Math.max(...userParams.map(Number));
  return locations.map((location, i) => ({ name: numbered ? String(base + i + 1) : `${prefix}${i}`, location }));
}

/** The user's binds plus the lake locations (see `fileParameters`). */
function withFiles(binds: QueryPlan['binds'], files: readonly FileParam[]): QueryPlan['binds'] {
  if (files.length === 0) return binds;
  if (binds === undefined || Array.isArray(binds)) {
    const out: DuckDBValue[] = binds === undefined ? [] : [...binds];
    for (const f of files) out[Number(f.name) - 1] = f.location;
    for (let i = 0; i < out.length; i++) if (!(i in out)) throw new StewardError('STEWARD_E_INTERNAL', 'file parameters out of order');
    return out;
  }
  const out: Record<string, DuckDBValue> = { ...binds };
  for (const f of files) out[f.name] = f.location;
  return out;
}

/** Tables by catalog, database and name, built once per policy world (a linear scan per table reference cost ~0.3 ms on 100k tables). */
const tableIndexes = new WeakMap<Snapshot['world'], ReadonlyMap<string, Table>>();

function findTable(snap: Snapshot, name: TableName): Table | undefined {
  let index = tableIndexes.get(snap.world);
  if (index === undefined) {
    index = new Map(snap.world.tables.map((t) => [`${t.catalog}\u0000${t.database}\u0000${t.name}`, t]));
    tableIndexes.set(snap.world, index);
  }
  return index.get(`${name.catalog}\u0000${name.database}\u0000${name.table}`);
}

/** Every column of a catalog table (visible or not) with its type family, for the leakproof check. */
function columnFamilies(snap: Snapshot, name: TableName): ColumnFamilies | undefined {
  const table = findTable(snap, name);
  if (table === undefined || table.source.kind !== 'lake') return undefined;
  return new Map(table.columns.map((c) => [asciiLower(c.name), typeFamily(c.type)]));
}

const GRANT_KINDS = 'a grant of SELECT on the table, its database or its catalog, a columns grant, a data-filter grant, or a tag grant matching its tags';

/** Authorizes SELECT on one table and returns its governed SQL, or throws the explained refusal. */
function governedTable(
  snap: Snapshot,
  principal: PrincipalRef,
  name: TableName,
  written: string,
  leakproof: boolean,
): { render: (location: string) => string; hiddenColumns: string[]; visibleColumns: string[]; full: string; matchedGrants: readonly string[]; location: string } {
  const full = `${name.catalog}.${name.database}.${name.table}`;
  const resource = { level: 'table' as const, catalog: name.catalog, database: name.database, table: name.table };
  const table = findTable(snap, name);
  const notFound = (): StewardError =>
    new StewardError('STEWARD_E_NOT_FOUND', `table \`${written}\` not found or not permitted`, { details: [{ path: 'table', message: written }] });
  if (table === undefined) throw notFound();
  const decision = snap.engine.authorize({ principal, action: 'SELECT', resource });
  if (decision.decision !== 'allow') {
    const describe = snap.engine.authorize({ principal, action: 'DESCRIBE', resource });
    if (describe.decision !== 'allow') throw notFound();
    throw refusal(`permission denied: \`${principal}\` lacks SELECT on table \`${full}\`; ${whyDenied(decision, GRANT_KINDS)}`, [
      { path: full, message: 'SELECT' },
    ]);
  }
  if (table.source.kind !== 'lake') {
    throw refusal(`table \`${full}\` is not stored in the lake (${table.source.kind}); the gateway queries lake tables only`);
  }
  const visible = new Set((decision.columns ?? []).map((c) => c.name));
  const hiddenColumns = table.columns.map((c) => c.name).filter((c) => !visible.has(c));
  return { render: (location) => governedSql(table, decision, leakproof, location), hiddenColumns, visibleColumns: [...visible], full, matchedGrants: decision.matchedGrants, location: table.source.location };
}

function whyDenied(d: Decision, grants: string): string {
  const guard = d.reasons.find((r) => r.code === 'GUARDRAIL');
  if (guard !== undefined && guard.code === 'GUARDRAIL') return `denied by guardrail \`${guard.guardrail}\`, which overrides every grant`;
  return `it needs ${grants}`;
}

/**
 * The subquery that stands for a catalog table: the visible columns, each cell
 * masked by its predicate, over the rows the row predicate admits.
 *
 * With `leakproof` (the query passed `isLeakproof`), a column whose mask is
 * always true under the row predicate (no cell predicate, or the row predicate
 * itself) is exposed unmasked, pinned to its catalog type: DuckDB can then push
 * the user's filters into the Parquet scan. Other cell predicates keep their mask.
 *
 * @example
 *   SELECT CASE WHEN ("hospital" = 'North Hospital') THEN "amount" END AS "amount", …
 *   FROM read_parquet('/lake/claims.parquet', hive_partitioning = false)
 *   WHERE ("hospital" = 'North Hospital')
 *   -- leakproof: SELECT TRY_CAST("amount" AS DOUBLE) AS "amount", … (same FROM and WHERE)
 */
export function governedSql(table: Table, decision: Decision, leakproof = false, locationSql?: string): string {
  const source = table.source;
  if (source.kind !== 'lake') throw new StewardError('STEWARD_E_INTERNAL', 'not a lake table');
  const hive = `hive_partitioning = ${source.hivePartitioning ? 'true' : 'false'}`;
  const location = locationSql ?? quoteLiteral(source.location);
  const reader = (() => {
    switch (source.format) {
      case 'parquet':
        return `read_parquet(${location}, ${hive})`;
      case 'csv':
        return `read_csv(${location}, ${hive})`;
      case 'json':
        return `read_json(${location}, ${hive})`;
      default: {
        const never: never = source.format;
        return never;
      }
    }
  })();
  const rowFilter: Predicate | null = decision.rowFilter ?? null;
  const types = new Map(table.columns.map((c) => [c.name, c.type]));
  const columns = (decision.columns ?? []).map((c) => {
    const cell = c.rowFilter ?? rowFilter;
    const id = quoteIdent(c.name);
    // `cell === rowFilter` (a column with no cell predicate of its own) spares printing both predicates to compare them.
    if (leakproof && (cell === null || cell === rowFilter || samePredicate(cell, rowFilter))) {
      // Without a row predicate every row is visible: nothing to pin against.
      const pinned = rowFilter === null ? null : pinnedType(types.get(c.name) ?? '');
      return pinned === null ? id : `TRY_CAST(${id} AS ${pinned}) AS ${id}`;
    }
    return cell === null ? id : `CASE WHEN ${toSql(cell)} THEN ${id} END AS ${id}`;
  });
  if (columns.length === 0) throw new StewardError('STEWARD_E_INTERNAL', 'an allowed SELECT without visible columns');
  return `SELECT ${columns.join(', ')} FROM ${reader}${rowFilter === null ? '' : ` WHERE ${toSql(rowFilter)}`}`;
}

/**
 * DuckDB's error for a failed query, cut to its first line: the rest echoes
 * the rewritten SQL (file paths, predicates). A binder error about a column
 * the principal may not read becomes the explained refusal.
 */
function runtimeError(e: unknown, p: QueryPlan, principal: PrincipalRef): StewardError {
  const text = e instanceof Error ? e.message : String(e);
  const first = (text.split('\n')[0] ?? text).trim();
  if (first.startsWith('Binder Error')) {
    const quoted = [...first.matchAll(/"([^"]+)"/g)].map((m) => asciiLower(m[1] as string));
    for (const q of quoted) {
      const table = p.hidden.get(q);
      if (table !== undefined) {
        const [catalog = '', database = '', name = ''] = table.split('.');
        const d = p.snapshot.engine.authorize({ principal, action: 'SELECT', resource: { level: 'column', catalog, database, table: name, column: q } });
        return refusal(
          `permission denied: \`${principal}\` may not read column \`${q}\` of \`${table}\`; ${whyDenied(d, 'SELECT on that column: a table grant, a columns grant that includes it, or a data-filter grant whose columns include it')}`,
          [{ path: `${table}.${q}`, message: 'SELECT' }],
        );
      }
    }
    return new StewardError('STEWARD_E_VALIDATION', scrub(first));
  }
  if (first.startsWith('INTERRUPT')) return new StewardError('STEWARD_E_TIMEOUT', 'query interrupted');
  if (first.startsWith('Out of Memory')) return new StewardError('STEWARD_E_VALIDATION', `query ran out of memory: ${scrub(first)}`);
  if (first.startsWith('Permission Error')) return refusal('the query tried to read a file or setting it may not: only catalog tables can be read');
  return new StewardError('STEWARD_E_VALIDATION', `query failed: ${scrub(first)}`);
}

/** Generated CTE names are ours, not the user's. */
function scrub(message: string): string {
  return message.replace(/__steward_cte_\d+/g, 'cte');
}

/** The first instant after `now` at which some grant stops counting (Infinity when none will). */
export function nextExpiry(grants: readonly { readonly notAfter?: string }[], now: number): number {
  let next = Number.POSITIVE_INFINITY;
  for (const g of grants) {
    if (g.notAfter === undefined) continue;
    const t = Date.parse(g.notAfter);
    // An unparseable notAfter already counts as expired in the engine; never cache across it.
    if (Number.isNaN(t)) return now;
    if (t > now && t < next) next = t;
  }
  return next;
}
