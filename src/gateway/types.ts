/**
 * The gateway's types: what a caller passes in (requests, limits, parameter
 * values), what a plan is, and what comes back (streams, summaries, history).
 * Shared by every step of the pipeline (see `gateway.ts`), so that no step
 * imports another's module for a type.
 */
import type { DuckDBValue } from '@duckdb/node-api';
import type { PrincipalRef } from '../policy/model.js';
import type { Predicate } from '../policy/predicate.js';
import type { Snapshot } from '../workspace/state-service.js';
import type { DecisionLogEntry } from '../store/decision-log.js';
import type { PlainValue } from '../lake/duckdb.js';
import type { Limiter } from './limiter.js';
import type { Parser } from './sandbox.js';

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
  /** Set for an embedded-analytics session (src/embed/): its row predicates apply on top of the principal's. */
  readonly session?: SessionScope;
}

/**
 * An embedded-analytics session's share of a query: row predicates compiled
 * from the session's tags (src/embed/tag-rules.ts) and who the session is,
 * for the log. The principal's own grants, filters and guardrails still apply.
 */
export interface SessionScope {
  /** Row predicates by table (`catalog.database.table`), ANDed with the principal's row filter. A table not listed is refused: a session reads only its datasets. */
  readonly rows: ReadonlyMap<string, Predicate>;
  /** The vendor's user id the token vouches for (never a Steward principal). */
  readonly user: string;
  readonly tags: Readonly<Record<string, string>>;
  /** The token's id (`jti`), so every query of one embed session can be found together. */
  readonly id: string;
  readonly dashboard?: string;
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
  /** The grants that allowed the query, logged so access reviews (and just-in-time requests) can see what each query used. */
  readonly grants: readonly string[];
  /** True when the query took the fast path: columns whose mask is always true under the row predicate are exposed unmasked (leakproof.ts). */
  readonly leakproof: boolean;
  /** Lake locations the query reads, fingerprinted before it runs (see sandbox.ts, "File caches"). */
  readonly files: readonly string[];
  /** The parameters that carry `files` into the readers (`binds` includes them; see `fileParameters`). */
  readonly fileParams: readonly FileParam[];
  /** Tables whose rows are fetched from another workspace before the query runs (see remote.ts); none when absent. */
  readonly remote?: readonly RemoteRead[];
}

/** One remote table of a plan: which columns to fetch, and the temporary table of the query's connection they land in. */
export interface RemoteRead {
  readonly catalog: string;
  readonly database: string;
  readonly table: string;
  readonly columns: readonly string[];
  /** The temporary table's name (unquoted), unique within the plan. */
  readonly temp: string;
}

/** Rows of a remote table as its owner lets this workspace read them, with the owner's DuckDB types. */
export interface RemoteRows {
  readonly columns: readonly ResultColumn[];
  readonly rows: readonly (readonly PlainValue[])[];
  /** True when the owner had more rows than it sent (`MAX_REMOTE_ROWS`): the query is refused, not run on part of the table. */
  readonly truncated: boolean;
}

/**
 * Tables of this catalog whose rows live in another workspace: the replicas of
 * shares (src/sharing/), read through their producer. The gateway governs them
 * like lake tables and asks this source for their rows, per query.
 */
export interface RemoteTables {
  /** Catalogs whose `virtual` tables are read through their owner. */
  catalogs(): Promise<ReadonlySet<string>>;
  /** The rows of `columns` of one table; throws a StewardError the caller reports as is. */
  fetch(read: Pick<RemoteRead, 'catalog' | 'database' | 'table' | 'columns'>, signal: AbortSignal): Promise<RemoteRows>;
}

/** A lake location bound as a parameter of the rewritten SQL: `$<name>` in the text. */
export interface FileParam {
  readonly name: string;
  readonly location: string;
}

/** What a query used, for the log: the tables it read and the grants that allowed them. */
export type Used = Pick<QueryPlan, 'tables' | 'grants'>;

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
  /** Where rows of remote tables come from; without it a `virtual` table is refused as before. */
  readonly remote?: RemoteTables;
}

export interface Gateway {
  /** Parse, authorize and rewrite; throws the refusal. Logs nothing. */
  plan(principal: PrincipalRef, sql: string, params?: Readonly<Record<string, ParamValue>>, session?: Pick<SessionScope, 'rows'>): Promise<QueryPlan>;
  /** Plan and start a query, under the concurrency limits; logs the outcome when it ends. */
  open(req: QueryRequest): Promise<QueryStream>;
  /**
   * Starts a plan built elsewhere (clean rooms, src/cleanroom/, which check their own rules and write their own
   * log) on the same sandbox, under the same limits. `log: false` leaves the gateway's log and history out of it.
   */
  openPlan(req: QueryRequest, plan: QueryPlan, options?: { readonly log?: boolean }): Promise<QueryStream>;
  /** The parser instance (never executes user text), for callers that check trees of their own. */
  readonly parser: Parser;
  readonly limits: GatewayLimits;
  readonly limiter: Limiter;
  close(): Promise<void>;
}
