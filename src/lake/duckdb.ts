/**
 * A small wrapper over DuckDB's Node API (`@duckdb/node-api`): one instance,
 * one connection, bound parameters, and results as plain JS values.
 *
 * SQL text passed here must be constant; anything that comes from a user goes
 * in `params` (bound as `$1`, `$2`, ...), so it is never parsed as SQL.
 *
 * @example
 *   const db = await openDuckDb();
 *   try {
 *     const rows = await db.all<{ n: number }>('SELECT count(*) AS n FROM read_parquet($1)', [path]);
 *   } finally {
 *     db.close();
 *   }
 */
import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api';

type DuckApi = typeof import('@duckdb/node-api');
let api: DuckApi | undefined;

/**
 * DuckDB's Node API, imported on first use: loading its native binding costs
 * a few hundred milliseconds, which commands that never touch the lake (an
 * embedded `authorize`, `--version`) should not pay.
 */
export async function loadDuckApi(): Promise<DuckApi> {
  api ??= await import('@duckdb/node-api');
  return api;
}

/** A value as results hand it out: JSON-compatible, no bigint, no class instances. */
export type PlainValue = string | number | boolean | null | PlainValue[] | { [key: string]: PlainValue };

export type Row = Record<string, PlainValue>;

/** What may be bound to `$n`. Numbers bind as DOUBLE; pass a bigint for BIGINT. */
export type BindValue = string | number | boolean | bigint | null;

export interface DuckDbOptions {
  /** Database file; in memory when omitted. */
  readonly path?: string;
  /** DuckDB settings applied at open (`{ threads: '1' }`). */
  readonly config?: Readonly<Record<string, string>>;
}

export interface DuckDb {
  /** The raw connection, for what the wrapper does not cover (streaming, appenders). */
  readonly connection: DuckDBConnection;
  /** Runs a statement and discards its result. */
  run(sql: string, params?: readonly BindValue[]): Promise<void>;
  /** Runs a query and returns every row with plain JS values (see `toPlainValue`). */
  all<T extends Row = Row>(sql: string, params?: readonly BindValue[]): Promise<T[]>;
  /** Closes the connection and the instance; safe to call twice. */
  close(): void;
}

/** The main handle: also opens more connections to the same instance (closed with it). */
export interface DuckDbInstance extends DuckDb {
  /**
   * Another connection to the same database. DuckDB runs each connection's
   * query on the calling thread, so queries on two connections run at once
   * even with `threads = 1` (the security lake's writer lanes use this).
   */
  connect(): Promise<DuckDb>;
}

export async function openDuckDb(options: DuckDbOptions = {}): Promise<DuckDbInstance> {
  const { DuckDBInstance } = await loadDuckApi();
  const instance = await DuckDBInstance.create(options.path ?? ':memory:', options.config ? { ...options.config } : undefined);
  let main: DuckDb;
  try {
    main = wrapConnection(await instance.connect());
  } catch (e) {
    instance.closeSync();
    throw e;
  }
  const extra: DuckDb[] = [];
  let closed = false;
  return {
    connection: main.connection,
    run: main.run,
    all: main.all,
    async connect() {
      if (closed) throw new Error('DuckDB is closed');
      const c = wrapConnection(await instance.connect());
      extra.push(c);
      return c;
    },
    close() {
      if (closed) return;
      closed = true;
      for (const c of extra) c.close();
      main.close();
      instance.closeSync();
    },
  };
}

function wrapConnection(connection: DuckDBConnection): DuckDb {
  let closed = false;
  const bind = (params: readonly BindValue[] | undefined): DuckDBValue[] | undefined =>
    params === undefined || params.length === 0 ? undefined : [...params];
  return {
    connection,
    async run(sql, params) {
      await connection.run(sql, bind(params));
    },
    async all<T extends Row = Row>(sql: string, params?: readonly BindValue[]): Promise<T[]> {
      const reader = await connection.runAndReadAll(sql, bind(params));
      // Rows are built from the column names with fromEntries, not by assignment into `{}`
      // (as getRowObjects does): a column named `__proto__` must stay a column.
      const names = reader.deduplicatedColumnNames();
      return reader.getRows().map((values) => Object.fromEntries(values.map((v, i) => [names[i] as string, toPlainValue(v)])) as T);
    },
    close() {
      if (closed) return;
      closed = true;
      connection.closeSync();
    },
  };
}

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function isoFromMicros(micros: bigint, fallback: string, utc: boolean): string {
  // Floor division so that instants before 1970 keep a non-negative fraction.
  let seconds = micros / 1_000_000n;
  if (seconds * 1_000_000n > micros) seconds -= 1n;
  const frac = micros - seconds * 1_000_000n;
  // JS dates cover ±8.64e15 ms; outside that (and for infinities) keep DuckDB's own text.
  if (seconds < -8_640_000_000_000n || seconds > 8_640_000_000_000n) return fallback;
  const base = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  // Keep microseconds: `2025-01-02T03:04:05.123456`.
  const text = frac === 0n ? base : `${base}.${String(frac).padStart(6, '0')}`;
  return utc ? `${text}Z` : text;
}

/**
 * The one converter from DuckDB values to plain JS values:
 * - BIGINT/HUGEINT: number when it is a safe integer, else its decimal string;
 * - DECIMAL: number (nearest double);
 * - DATE: `YYYY-MM-DD`; TIMESTAMP: ISO-8601 without zone; TIMESTAMPTZ: ISO-8601 in UTC (`Z`);
 * - LIST/ARRAY: arrays; STRUCT: objects; MAP: `{ key, value }[]`;
 * - anything else (TIME, INTERVAL, UUID, BLOB, ...): DuckDB's text form.
 */
export function toPlainValue(value: DuckDBValue): PlainValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value.toString();
  // A DuckDB value object exists only once the API is loaded.
  const {
    DuckDBArrayValue,
    DuckDBDateValue,
    DuckDBDecimalValue,
    DuckDBListValue,
    DuckDBMapValue,
    DuckDBStructValue,
    DuckDBTimestampMillisecondsValue,
    DuckDBTimestampNanosecondsValue,
    DuckDBTimestampSecondsValue,
    DuckDBTimestampTZValue,
    DuckDBTimestampValue,
    DuckDBUnionValue,
    DuckDBVariantValue,
  } = api as DuckApi;
  if (value instanceof DuckDBDecimalValue) return value.toDouble();
  if (value instanceof DuckDBDateValue) return value.isFinite ? value.toString() : value.days > 0 ? 'infinity' : '-infinity';
  if (value instanceof DuckDBTimestampTZValue) return isoFromMicros(value.micros, value.toString(), true);
  if (value instanceof DuckDBTimestampValue) {
    return value.isFinite ? isoFromMicros(value.micros, value.toString(), false) : value.micros > 0n ? 'infinity' : '-infinity';
  }
  if (value instanceof DuckDBTimestampSecondsValue) return isoFromMicros(value.seconds * 1_000_000n, value.toString(), false);
  if (value instanceof DuckDBTimestampMillisecondsValue) return isoFromMicros(value.millis * 1000n, value.toString(), false);
  if (value instanceof DuckDBTimestampNanosecondsValue) return isoFromMicros(value.nanos / 1000n, value.toString(), false);
  if (value instanceof DuckDBListValue || value instanceof DuckDBArrayValue) return value.items.map(toPlainValue);
  if (value instanceof DuckDBStructValue) {
    const out: { [key: string]: PlainValue } = {};
    for (const [k, v] of Object.entries(value.entries)) out[k] = toPlainValue(v);
    return out;
  }
  if (value instanceof DuckDBMapValue) return value.entries.map((e) => ({ key: toPlainValue(e.key), value: toPlainValue(e.value) }));
  if (value instanceof DuckDBUnionValue) return toPlainValue(value.value);
  if (value instanceof DuckDBVariantValue) return toPlainValue(value.value);
  return value.toString();
}
