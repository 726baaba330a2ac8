/**
 * The smallest SQL interface the store needs, with two drivers behind it:
 * PGlite (embedded PostgreSQL in WebAssembly, persisted in a directory) and a
 * real PostgreSQL server through a `pg` pool. Everything above this file speaks
 * only `Db`, so both drivers run the same SQL and the same conformance tests.
 *
 * Both drivers parse values the same way, so callers never branch on `kind`:
 * - int8 (bigint, count(*), bigserial) → JS number (exact below 2^53, which
 *   counters and ids never reach);
 * - numeric → string; timestamptz → Date; json/jsonb → parsed value.
 *
 * Parameters: pass JSON as a string and cast in SQL (`$1::jsonb`); `pg` would
 * turn a JS array into a PostgreSQL array literal, PGlite would not.
 */
import path from 'node:path';
import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import type { Transaction as PgliteTransaction } from '@electric-sql/pglite';
import type pg from 'pg';
import { StewardError } from '../errors.js';
import { migrate } from './migrations.js';

export interface QueryResult<T> {
  readonly rows: T[];
}

export interface Db {
  /** One statement with bound parameters (`$1`, `$2`, …). */
  query<T>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>>;
  /** One or more statements without parameters (DDL, migrations). */
  exec(sql: string): Promise<void>;
  /**
   * Runs `fn` in a transaction: commit when it resolves, roll back when it
   * throws. Inside a transaction, `transaction()` reuses the open one (no
   * savepoint), so repository functions can open one without knowing whether
   * their caller already did.
   */
  transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  readonly kind: 'pglite' | 'postgres';
  /**
   * The embedded store only: calls `onPayload` with each notification on
   * `channel`. PGlite delivers it as the notifying transaction commits, before
   * the writer's `transaction()` resolves (change-feed.ts relies on it).
   */
  readonly listen?: (channel: string, onPayload: (payload: string) => void) => Promise<() => Promise<void>>;
}

const INT8_OID = 20;
const parseInt8 = (text: string): number => Number(text);

// ------------------------------------------------------------------- PGlite

/**
 * PGlite's own start parameters, and `wal_init_zero=off`: PGlite runs on the
 * server's event loop, and zero-filling each new 16 MB WAL segment (every few
 * seconds under load) held every request behind one INSERT for 35-45 ms. A
 * new segment is then created at its full size without writing 16 MB of zeros
 * (a setting PostgreSQL supports; WAL records are validated by their CRC, not
 * by zeroed space).
 */
const PGLITE_START: string[] = [...PGlite.defaultStartParams, '-c', 'wal_init_zero=off'];

/**
 * Opens PGlite persisted in `dir` (created when missing), or in memory.
 * Startup costs about a second (more on a busy machine): open it once per process.
 */
export async function openPglite(dir: string | 'memory'): Promise<Db> {
  let pglite: PGlite;
  try {
    if (dir === 'memory') {
      pglite = await PGlite.create({ parsers: { [INT8_OID]: parseInt8 } });
    } else {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      pglite = await PGlite.create({ dataDir: path.resolve(dir), parsers: { [INT8_OID]: parseInt8 }, startParams: PGLITE_START });
    }
  } catch (cause) {
    throw new StewardError('STEWARD_E_CONFIG', `cannot open the embedded database in \`${dir}\`: ${messageOf(cause)}`, { cause });
  }
  return pgliteDb(pglite);
}

function pgliteDb(pglite: PGlite): Db {
  const db: Db = {
    kind: 'pglite',
    async query<T>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<T>> {
      const r = await pglite.query<T>(sql, [...params]);
      return { rows: r.rows };
    },
    async exec(sql: string): Promise<void> {
      await pglite.exec(sql);
    },
    transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
      // PGlite is one connection: its transaction() holds a mutex, so queries
      // on `db` from elsewhere wait until this transaction ends.
      return pglite.transaction((tx) => fn(pgliteTxDb(tx)));
    },
    async close(): Promise<void> {
      if (!pglite.closed) await pglite.close();
    },
    listen: (channel, onPayload) => pglite.listen(channel, onPayload),
  };
  return db;
}

function pgliteTxDb(tx: PgliteTransaction): Db {
  const db: Db = {
    kind: 'pglite',
    async query<T>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<T>> {
      const r = await tx.query<T>(sql, [...params]);
      return { rows: r.rows };
    },
    async exec(sql: string): Promise<void> {
      await tx.exec(sql);
    },
    transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
      return fn(db);
    },
    close(): Promise<void> {
      return Promise.reject(new StewardError('STEWARD_E_INTERNAL', 'cannot close the database from inside a transaction'));
    },
  };
  return db;
}

// --------------------------------------------------------------- PostgreSQL

/** Where a connection goes, without the password: safe for messages and logs. */
export interface ConnectionTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
}

/** Parses a `postgres://` URL into its target and password. Never echoes the URL in errors. */
export function parseDatabaseUrl(url: string): ConnectionTarget & { readonly password: string | undefined } {
  let u: URL;
  try {
    // `postgres://user@/db?host=/socket/dir` is valid for libpq but not for WHATWG URL (credentials without a host).
    u = new URL(url.replace(/^(postgres(?:ql)?:\/\/[^/?#]*@)(?=[/?#]|$)/, '$1localhost'));
  } catch {
    throw new StewardError('STEWARD_E_CONFIG', 'the database url is not a valid url (expected `postgres://user:password@host:port/database`)');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new StewardError('STEWARD_E_CONFIG', `the database url must start with \`postgres://\`, not \`${u.protocol}//\``);
  }
  const socketHost = u.searchParams.get('host');
  const host = socketHost ?? (decodeURIComponent(u.hostname) || 'localhost');
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  const user = decodeURIComponent(u.username);
  return {
    host,
    port: u.port === '' ? 5432 : Number(u.port),
    database: database === '' ? user || 'postgres' : database,
    user: user || 'postgres',
    password: u.password === '' ? undefined : decodeURIComponent(u.password),
  };
}

export function describeTarget(t: ConnectionTarget): string {
  return `${t.user}@${t.host}:${t.port}/${t.database}`;
}

/**
 * Opens a pool on a PostgreSQL server and checks that it answers, so a wrong
 * URL fails here with a message naming host, port, database and user (never
 * the password) rather than on the first request.
 */
export async function openPostgres(url: string, options: { maxConnections?: number; connectTimeoutMs?: number } = {}): Promise<Db> {
  const target = parseDatabaseUrl(url);
  // The PostgreSQL driver loads only when a server is used; the embedded store never needs it.
  const { default: driver } = await import('pg');
  const pool = new driver.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8_OID && format !== 'binary' ? parseInt8 : driver.types.getTypeParser(oid, format ?? 'text'))) as typeof driver.types.getTypeParser },
  });
  // An idle client losing its connection emits 'error' on the pool; unhandled,
  // that would crash the process. The next query reports the problem instead.
  pool.on('error', () => undefined);
  try {
    await pool.query('SELECT 1');
  } catch (cause) {
    await pool.end().catch(() => undefined);
    throw connectionError(target, cause);
  }
  return postgresDb(pool, target);
}

function connectionError(target: ConnectionTarget & { readonly password: string | undefined }, cause: unknown): StewardError {
  const reason = scrub(messageOf(cause), target.password);
  const leaks = target.password !== undefined && target.password !== '' && String(cause).includes(target.password);
  return new StewardError('STEWARD_E_CONFIG', `cannot connect to PostgreSQL at \`${describeTarget(target)}\`: ${reason}`, leaks ? {} : { cause });
}

function postgresDb(pool: pg.Pool, target: ConnectionTarget & { readonly password: string | undefined }): Db {
  const db: Db = {
    kind: 'postgres',
    async query<T>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<T>> {
      const r = await pool.query(sql, [...params]).catch(rethrowUnavailable);
      return { rows: r.rows as T[] };
    },
    async exec(sql: string): Promise<void> {
      await pool.query(sql).catch(rethrowUnavailable);
    },
    async transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (cause) {
        throw isUnavailable(cause) ? unavailable(cause) : connectionError(target, cause);
      }
      let broken = false;
      try {
        await client.query('BEGIN').catch(rethrowUnavailable);
        const result = await fn(postgresTxDb(client));
        await client.query('COMMIT').catch(rethrowUnavailable);
        return result;
      } catch (e) {
        try {
          await client.query('ROLLBACK');
        } catch {
          // The connection is unusable; tell the pool to discard it.
          broken = true;
        }
        throw e;
      } finally {
        client.release(broken);
      }
    },
    async close(): Promise<void> {
      if (!pool.ended) await pool.end();
    },
  };
  return db;
}

function postgresTxDb(client: pg.PoolClient): Db {
  const db: Db = {
    kind: 'postgres',
    async query<T>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<T>> {
      const r = await client.query(sql, [...params]).catch(rethrowUnavailable);
      return { rows: r.rows as T[] };
    },
    async exec(sql: string): Promise<void> {
      await client.query(sql).catch(rethrowUnavailable);
    },
    transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
      return fn(db);
    },
    close(): Promise<void> {
      return Promise.reject(new StewardError('STEWARD_E_INTERNAL', 'cannot close the database from inside a transaction'));
    },
  };
  return db;
}

// ------------------------------------------------------------------ picking

export interface OpenDbOptions {
  /** A `postgres://` URL; when absent, the embedded database at `<home>/pgdata` is used. */
  readonly databaseUrl?: string | undefined;
  /** The Steward home directory (`$STEWARD_HOME`, default `./.steward`). */
  readonly home: string;
  /** Apply pending migrations before returning (default true). */
  readonly migrate?: boolean;
}

/**
 * PostgreSQL when a URL is given, else PGlite in `<home>/pgdata`, migrated to
 * the current schema. It does not take the workspace lock: a process using the
 * embedded database must hold it first (`acquireWorkspaceLock`).
 */
export async function openDb(options: OpenDbOptions): Promise<Db> {
  const db =
    options.databaseUrl !== undefined && options.databaseUrl !== ''
      ? await openPostgres(options.databaseUrl)
      : await openPglite(path.join(options.home, 'pgdata'));
  if (options.migrate === false) return db;
  try {
    await migrate(db);
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
  return db;
}

// ------------------------------------------------------------ unavailable

/**
 * SQLSTATEs of a server that is gone or not taking work right now: class 08
 * (connection exception), 57P01-57P03 (shut down by an administrator, after a
 * crash, or still starting up) and 53300 (too many connections).
 */
const UNAVAILABLE_STATE = /^(08[0-9A-Z]{3}|57P0[123]|53300)$/;
/** Socket errors of a server that cannot be reached. */
const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
/** The `pg` driver's own errors carry no code: a connection that ended, or a pool that waited too long for one. */
const UNAVAILABLE_DRIVER_MESSAGE = /^(Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect)/;

/**
 * Whether a driver error means the database cannot be reached now, rather than
 * that the statement was wrong: the request may succeed as it is once the
 * server is back (a restart, a failover), so it is a 503, not a 500.
 */
export function isUnavailable(e: unknown): boolean {
  if (e instanceof StewardError) return e.code === 'STEWARD_E_UNAVAILABLE';
  if (e instanceof AggregateError) return e.errors.length > 0 && e.errors.every(isUnavailable);
  // Socket codes first: `EPIPE` has the shape of a SQLSTATE.
  const code = typeof e === 'object' && e !== null && 'code' in e ? (e as { code: unknown }).code : undefined;
  if (typeof code === 'string' && UNAVAILABLE_ERRNO.has(code)) return true;
  const state = sqlState(e);
  if (state !== undefined) return UNAVAILABLE_STATE.test(state);
  return e instanceof Error && UNAVAILABLE_DRIVER_MESSAGE.test(e.message);
}

/**
 * The error every caller sees while the database is away. The message names
 * no host or port (API callers need not learn where the database runs); the
 * driver's error stays as the cause for the server log.
 */
function unavailable(cause: unknown): StewardError {
  return new StewardError('STEWARD_E_UNAVAILABLE', 'the database is unavailable: retry in a moment', { cause });
}

function rethrowUnavailable(e: unknown): never {
  throw isUnavailable(e) && !(e instanceof StewardError) ? unavailable(e) : e;
}

// ------------------------------------------------------------------ helpers

function messageOf(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length > 0) return e.errors.map(messageOf).join('; ');
  if (e instanceof Error) return e.message || e.name;
  return String(e);
}

function scrub(text: string, secret: string | undefined): string {
  return secret === undefined || secret === '' ? text : text.replaceAll(secret, '***');
}

/** PostgreSQL's SQLSTATE of a driver error, when it has one (both drivers set `code`). */
export function sqlState(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e) {
    const code = (e as { code: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}
