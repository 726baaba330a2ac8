/**
 * The shapes the engine's modules share: the world index and its parts, a
 * principal set, its reach and memo, a resolved request, the scratch buffers.
 * Declared here, apart from the code that builds or reads them, so the
 * builders and the deciders import the shapes, not each other (no import
 * circles: test/architecture/import-cycles.test.ts).
 */
import type { ColumnAccess, Decision, Reason } from '../decision.js';
import type { Grant, PolicyWorld, PrincipalRef, ResourceRef } from '../model.js';
import type { Predicate } from '../predicate.js';
import type { CatalogIndex } from './catalog-index.js';
import type { CompiledExpr, TagIndex } from './tag-signatures.js';

export interface FilterIndex {
  readonly fName: string[];
  readonly fColMask: Uint8Array[];
  readonly fPred: (Predicate | null)[];
  readonly fSql: (string | null)[];
  /** `${table id}/${filter name}` -> filter id. */
  readonly filterByKey: Map<string, number>;
}

export interface GrantIndex {
  readonly grants: readonly Grant[];
  readonly gPid: Int32Array;
  readonly gKind: Uint8Array;
  readonly gPerm: Int32Array;
  readonly gGrantable: Int32Array;
  readonly gExpiry: Float64Array;
  readonly gRank: Int32Array;
  readonly gCat: Int32Array;
  readonly gDb: Int32Array;
  readonly gTable: Int32Array;
  readonly gColMask: (Uint8Array | undefined)[];
  readonly gFilter: Int32Array;
  readonly gExpr: (CompiledExpr | undefined)[];
  readonly gReason: Reason[];
  readonly byCatalog: number[][];
  readonly byDb: number[][];
  readonly byTable: (number[] | undefined)[];
  readonly colGrantsByTable: (number[] | undefined)[];
  readonly filterGrantsByTable: (number[] | undefined)[];
  readonly tagGrants: number[];
}

export interface GuardrailIndex {
  readonly grName: string[];
  readonly grRank: Int32Array;
  readonly grActions: Int32Array;
  readonly grCat: Int32Array;
  readonly grEmpty: Uint8Array;
  readonly grSig: Uint8Array;
  readonly grPrincipals: (Int32Array | null)[];
  readonly grExcept: Int32Array[];
  readonly grReason: Reason[];
  /** Guardrail bitmasks are W 32-bit words. */
  readonly W: number;
  /** Per signature: the guardrails whose expression matches it (the empty expression matches every signature, including 0, a catalog's). */
  readonly sigGuard: Int32Array;
  /** Per catalog: the guardrails in scope there. */
  readonly scopeGuard: Int32Array;
  /** Guardrail indices in name order, for reporting. */
  readonly grByRank: Int32Array;
  /** Per grant: the guardrails it lifts (W words), only for time-bound grants lifting a liftable guardrail. */
  readonly gLift: (Int32Array | undefined)[];
}

/** One table's remembered decisions: slot `action` for the table, `N_ACTIONS * (1 + column) + action` for a column. */
export interface TableMemo {
  readonly catalog: string;
  readonly database: string;
  readonly table: number;
  readonly slots: (Decision | undefined)[];
  /** The next table with the same bare name, in another database. */
  readonly next: TableMemo | undefined;
}

export type TableLevelRef = Extract<ResourceRef, { level: 'table' | 'column' }>;

/** Every principal ref mentioned anywhere in the world, interned; ids exist whether or not the principal does. */
export interface PrincipalIndex {
  readonly pidByRef: Map<string, number>;
  readonly pRef: PrincipalRef[];
  readonly pExists: Uint8Array;
  readonly pParents: number[][];
  readonly pChildren: number[][];
  readonly pIsUser: Uint8Array;
}

export interface PSet {
  readonly bits: Uint8Array;
  readonly members: Int32Array;
  /** By action index: the guardrails that apply to this set and deny that action, as a bitmask of W words per action. */
  readonly guardMask: Int32Array;
  /** By action index (and the pseudo-action I_TABLE_DESCRIBE_SET): tag grants held through the set that carry the action. */
  readonly tagBy: readonly Int32Array[];
  /** Every grant held through the set. */
  readonly held: Int32Array;
  /** Held grants with a `notAfter`: the only ones that can explain a deny as GRANT_EXPIRED. */
  readonly timed: Int32Array;
  /** Lazily built, by `action * catalogs + catalog`. */
  readonly tagPrograms: (TagProgram | undefined)[];
  /**
   * The latest expiry among held grants that lift a guardrail. While `now` is
   * before it, decisions take the per-source path; otherwise no lift can
   * apply and the fast path is exact.
   */
  readonly liftUntil: number;
  /** The distinct finite expiries of held grants, sorted: decisions only change when `now` crosses one. */
  readonly expiries: Float64Array;
  /**
   * Table and column decisions already made, by bare table name. Keyed by the
   * name the caller passes, so a remembered decision costs one lookup: no
   * catalog, database or table resolution.
   */
  readonly memo: Map<string, TableMemo>;
  /** The window of `now` (between two consecutive expiries of held grants) in which every remembered decision holds. */
  memoLo: number;
  memoHi: number;
  memoSize: number;
  /** What any held grant could touch (see reach.ts); built on the set's first table-level request. */
  reach: Reach | undefined;
}

/**
 * By database id, a bit when a held catalog or database grant covers it
 * (`(databases + 31) >>> 5` words); then per catalog, `(nSigs + 31) >>> 5`
 * words with a bit per tag signature some held tag grant of that catalog
 * matches (reach.ts).
 */
export type Reach = Int32Array;

/** A resolved resource: level and ids (-1 where not applicable). */
export interface Res {
  readonly level: number;
  readonly cat: number;
  readonly db: number;
  readonly table: number;
  /** Column position within the table. */
  readonly col: number;
}

/**
 * The tag grants of one principal set for one action in one catalog, indexed by
 * the value of each expression's first key: a signature only needs to be
 * matched against grants whose first key it carries with an allowed value.
 * One flat array (tag-programs.ts), so matching reads adjacent words:
 *   [nAlways, always grants..., nPivots, pivot keys...,
 *    when nPivots > 0: start table by key=value id (nKv + 1 absolute offsets),
 *    entries (grant, key count, then per key: key, value count, values)...]
 * Grants with the empty expression are the "always" ones (they match every
 * signature); the entries of grants whose first key allows value v run from
 * `start[v]` to `start[v + 1]`. Expiries are read from `gExpiry`.
 */
export type TagProgram = Int32Array;

export type Index = CatalogIndex &
  TagIndex &
  PrincipalIndex &
  FilterIndex &
  GrantIndex &
  GuardrailIndex & {
    readonly world: PolicyWorld;
    /** Whether table and column decisions are memoized (see memo.ts). */
    readonly useMemo: boolean;
    /**
     * Per table, one cache line of what every decision on it reads, at
     * `t * TABLE_STRIDE`: signature, first column id, column count, which
     * per-table grant lists exist (most tables have none, so those lists are
     * not even looked at), and its database and catalog ids.
     */
    readonly tableInfo: Int32Array;
    /**
     * Per table, W words: the guardrails whose expression matches the table,
     * its database or the catalog (signature 0), before scope and principals.
     * One read where a decision read three signatures' rows.
     */
    readonly tableGuard: Int32Array;
    readonly psets: (PSet | undefined)[];
    /** By key=value id, `(nSigs + 31) >>> 5` words: the signatures carrying it, a bit each (reach.ts). */
    readonly kvSigBits: Int32Array;
    /** By grant id, for tag grants: the signatures its expression matches, a bit each, filled on first use (reach.ts). */
    readonly tagGrantSigs: (Int32Array | undefined)[];
    /** Tag programs by their grant list (ids joined by commas), shared by the principal sets holding that list (tag-programs.ts). */
    readonly tagProgramsByGrants: Map<string, TagProgram>;
    /** The principal sets already built, by the principal text callers pass: one lookup on the hot path. */
    readonly psetByRef: Map<string, PSet>;
    // one-element answers, shared because a single matched grant is the common case
    readonly gIdList: (readonly string[])[];
    readonly gReasonList: (readonly Reason[])[];
    // lazily built all-rows column answers per column-name list (see catalog-index), by visible-column bitmask
    readonly fullColumns: Map<readonly string[], Map<number, readonly ColumnAccess[]>>;
    /** Frozen deny answers of table-level decisions, by a hash of the denying guardrails' bitmask. */
    readonly guardAnswers: Map<number, GuardAnswer[]>;
    readonly scratch: Scratch;
  };

/** What a decision denied by a set of guardrails reports, shared by every such decision. */
export interface GuardAnswer {
  readonly words: Int32Array;
  readonly reasons: readonly Reason[];
  readonly deniedBy: readonly string[];
}

/** Reusable buffers, so the hot path does not allocate. */
export interface Scratch {
  readonly grantMark: Int32Array;
  grantEpoch: number;
  readonly matched: number[];
  /** The guardrails denying the last request (W words). */
  readonly denied: Int32Array;
  /** The guardrails that removed a column in the last SELECT (W words). */
  readonly removed: Int32Array;
  readonly wide: Int32Array;
  readonly colGrants: Int32Array;
  readonly filterGrants: Int32Array;
  nFilterGrants: number;
  readonly tagAtTable: Int32Array;
  readonly tagAtCol: Int32Array;
  readonly visible: Uint8Array;
  readonly allRows: Uint8Array;
  /** Lifts used by the last decision, as flat (guardrail, grant) pairs. */
  readonly lifted: number[];
}
