/**
 * The DuckDB instances behind the gateway, and nothing else touches them.
 *
 * - The parser instance only ever runs `json_serialize_sql($1)` and
 *   `json_deserialize_sql(json($1))` with bound parameters: user text is parsed, never
 *   executed, there.
 * - The execution instance runs rewritten queries. It has no file or network
 *   access of its own: `enable_external_access=false`, the only readable paths
 *   are the registered lake locations (`allowed_paths` for files,
 *   `allowed_directories` for globs and folders), extensions are neither
 *   installed nor loaded automatically, spilling to disk is off, and
 *   `lock_configuration=true` freezes all of it, so no statement can undo it.
 *   Catalog tables exist there only as the subqueries the rewrite writes; the
 *   instance has no tables, views or macros of its own.
 *
 * Because `allowed_paths` is locked, a new lake location means a new execution
 * instance: the sandbox is keyed by its set of locations and replaced when the
 * catalog changes (running queries finish on the old one, which closes after).
 *
 * File caches. DuckDB caches Parquet footers (`parquet_metadata_cache`) and
 * file bytes (`enable_external_file_cache`, on by default) and trusts an entry
 * while the file's device, inode, size and modification second are unchanged.
 * A file rewritten in place with the same size within the same second (or with
 * its modification time set back) would be read through stale offsets: another
 * column's pages under a visible column's name. So the caches are on only when
 * every lake location is a single file, and the gateway fingerprints each file
 * a query reads before it runs (`fileFingerprint`: device, inode, size, and the
 * modification and change times in nanoseconds; the change time cannot be set
 * back). A file whose fingerprint differs from the one the sandbox recorded
 * replaces the sandbox, caches and all; a query whose files changed between
 * that check and DuckDB's bind is refused (`unchanged`), so a cached footer
 * is only ever used for a file version the gateway saw both before and after
 * the footer was read. With a folder or glob location the files are not
 * known in advance: both caches are off and every query reads the footers
 * again.
 *
 * The pool (`createSandboxPool`) keeps the one current execution instance:
 * it replaces it when the lake locations change or a file's fingerprint does,
 * and lets queries already running on the old one finish there.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { DuckDBConnection, DuckDBPreparedStatement } from '@duckdb/node-api';
import { loadDuckApi } from '../lake/duckdb.js';
import { StewardError } from '../errors.js';
import type { Table } from '../policy/model.js';
import { quoteLiteral } from '../policy/predicate.js';

export interface SandboxSettings {
  /** DuckDB `memory_limit` of the execution instance (shared by its queries), e.g. `1GB`. */
  readonly memoryLimit: string;
  /** Worker threads of the execution instance. */
  readonly threads: number;
}

/** What the execution instance may read: exact files, and folders (for globs). */
export interface LakeAccess {
  readonly files: readonly string[];
  readonly directories: readonly string[];
}

/** The folder part of a glob (`/lake/claims/**\/*.parquet` → `/lake/claims/`), or null when the location has no glob. */
export function globRoot(location: string): string | null {
  const i = location.search(/[*?[{]/);
  if (i < 0) return null;
  const slash = location.lastIndexOf('/', i);
  return slash < 0 ? null : location.slice(0, slash + 1);
}

/** Sorts lake locations into files and folders, for `allowed_paths` and `allowed_directories`. */
export function lakeAccessOf(locations: readonly string[]): LakeAccess {
  const files = new Set<string>();
  const dirs = new Set<string>();
  for (const loc of locations) {
    const root = globRoot(loc);
    if (root !== null) dirs.add(root);
    else if (loc.endsWith('/')) dirs.add(loc);
    else files.add(loc);
  }
  return { files: [...files].sort(), directories: [...dirs].sort() };
}

const listLiteral = (items: readonly string[]): string => `[${items.map((i) => quoteLiteral(i)).join(', ')}]`;

async function lockDown(con: DuckDBConnection, access: LakeAccess): Promise<void> {
  // Order matters: the allow-lists can only be set while external access is still on.
  if (access.files.length > 0) await con.run(`SET allowed_paths = ${listLiteral(access.files)}`);
  if (access.directories.length > 0) await con.run(`SET allowed_directories = ${listLiteral(access.directories.map((d) => path.resolve(d) + '/'))}`);
  await con.run("SET temp_directory = ''");
  await con.run('SET enable_external_access = false');
  await con.run('SET lock_configuration = true');
}

const BASE_CONFIG = {
  autoinstall_known_extensions: 'false',
  autoload_known_extensions: 'false',
  allow_community_extensions: 'false',
  allow_unsigned_extensions: 'false',
} as const;

/** The parser: an instance with no access to anything, used only to (de)serialize SQL. */
export interface Parser {
  /** `json_serialize_sql(sql)`: DuckDB's JSON for the text (it never runs it). */
  serialize(sql: string): Promise<string>;
  /** `json_deserialize_sql(json)`: SQL text for a tree. */
  deserialize(json: string): Promise<string>;
  close(): void;
}

/**
 * A parser whose DuckDB instance opens with the first call: a process that
 * never runs a query (an embedded `authorize`) never loads DuckDB.
 */
export function lazyParser(): Parser {
  let opening: Promise<Parser> | undefined;
  let closed = false;
  const parser = (): Promise<Parser> => {
    if (closed) return Promise.reject(new Error('the parser is closed'));
    return (opening ??= openParser().catch((e: unknown) => {
      opening = undefined; // retried by the next call, not remembered
      throw e;
    }));
  };
  return {
    serialize: async (sql) => (await parser()).serialize(sql),
    deserialize: async (json) => (await parser()).deserialize(json),
    close() {
      closed = true;
      void opening?.then((p) => p.close(), () => undefined);
    },
  };
}

export async function openParser(): Promise<Parser> {
  const { DuckDBInstance } = await loadDuckApi();
  const instance = await DuckDBInstance.create(':memory:', { ...BASE_CONFIG, threads: '1' });
  const con = await instance.connect();
  await lockDown(con, { files: [], directories: [] });
  const ser: DuckDBPreparedStatement = await con.prepare('SELECT json_serialize_sql($1::VARCHAR)');
  // `json(…)`, not a `::JSON` cast: same parse, but the cast costs ~0.2 ms more per call (per-execution set-up).
  const de: DuckDBPreparedStatement = await con.prepare('SELECT json_deserialize_sql(json($1::VARCHAR))');
  // One prepared statement can run one call at a time; calls queue here.
  let chain: Promise<unknown> = Promise.resolve();
  const one = (ps: DuckDBPreparedStatement, text: string): Promise<string> => {
    const next = chain.then(async () => {
      ps.bindVarchar(1, text);
      // Materialized, one row: read its first chunk synchronously (a reader would add two async fetches per call).
      const result = await ps.run();
      const v = result.chunkCount > 0 ? result.getChunk(0).getColumnVector(0).getItem(0) : undefined;
      if (typeof v !== 'string') throw new Error('the parser returned no result');
      return v;
    });
    chain = next.catch(() => undefined);
    return next;
  };
  let closed = false;
  return {
    serialize: (sql) => one(ser, sql),
    deserialize: (json) => one(de, json),
    close() {
      if (closed) return;
      closed = true;
      ser.destroySync();
      de.destroySync();
      con.closeSync();
      instance.closeSync();
    },
  };
}

/** One execution instance for one set of lake locations. */
export interface Sandbox {
  readonly key: string;
  /** True when file caches are on (every location is a single file); see `stale`. */
  readonly caching: boolean;
  /**
   * Compares the files' fingerprints with the ones this sandbox recorded (and
   * records those it had not seen). True when some file changed since this
   * sandbox may have cached it: the caller must replace the sandbox. Call it
   * before the query runs, so a recorded fingerprint is always taken before
   * DuckDB reads the file. Always false without caching.
   */
  stale(files: readonly string[]): Promise<boolean>;
  /**
   * True when every file still has the fingerprint this sandbox recorded. Call
   * it once DuckDB has bound the query (read the footers): a file rewritten
   * between `stale` and the bind would otherwise be read through the cache.
   */
  unchanged(files: readonly string[]): Promise<boolean>;
  connect(): Promise<DuckDBConnection>;
  /** Closes now when idle, otherwise when the last query using it ends. */
  retire(): void;
  /** Bookkeeping: a query starts (false when the sandbox is already closed: use another) or ends on this sandbox. */
  enter(): boolean;
  leave(): void;
}

export async function openSandbox(access: LakeAccess, settings: SandboxSettings): Promise<Sandbox> {
  const { DuckDBInstance } = await loadDuckApi();
  const instance = await DuckDBInstance.create(':memory:', {
    ...BASE_CONFIG,
    threads: String(settings.threads),
    memory_limit: settings.memoryLimit,
  });
  const caching = access.directories.length === 0;
  const setup = await instance.connect();
  try {
    // See "File caches" above. With caching, each footer is parsed once per sandbox instead of once per query.
    if (caching) await setup.run('SET GLOBAL parquet_metadata_cache = true');
    else await setup.run('SET GLOBAL enable_external_file_cache = false');
    await lockDown(setup, access);
  } finally {
    setup.closeSync();
  }
  const seen = new Map<string, string>();
  let active = 0;
  let retired = false;
  let closed = false;
  const closeIfDone = (): void => {
    if (retired && active === 0 && !closed) {
      closed = true;
      instance.closeSync();
    }
  };
  return {
    key: sandboxKey(access),
    caching,
    async stale(files) {
      if (!caching || files.length === 0) return false;
      const prints = await Promise.all(files.map(fileFingerprint));
      let changed = false;
      for (const [i, file] of files.entries()) {
        const now = prints[i] ?? null;
        const before = seen.get(file);
        if (before === undefined) {
          if (now !== null) seen.set(file, now);
        } else if (before !== now) changed = true;
      }
      return changed;
    },
    async unchanged(files) {
      if (!caching || files.length === 0) return true;
      const prints = await Promise.all(files.map(fileFingerprint));
      return files.every((file, i) => seen.get(file) === (prints[i] ?? null) || (!seen.has(file) && prints[i] === null));
    },
    connect: () => instance.connect(),
    retire() {
      retired = true;
      closeIfDone();
    },
    enter() {
      if (closed) return false;
      active++;
      return true;
    },
    leave() {
      active--;
      closeIfDone();
    },
  };
}

/**
 * One version of a file: device, inode, size, and modification and change
 * times in nanoseconds (null when the file cannot be read: DuckDB reports it).
 * Rewriting a file in any way changes its change time, which no one can set back.
 */
export async function fileFingerprint(file: string): Promise<string | null> {
  try {
    const s = await stat(file, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch {
    return null;
  }
}

export function sandboxKey(access: LakeAccess): string {
  return JSON.stringify(access);
}

/** The current sandbox of a gateway, replaced as the catalog's lake locations or the lake files change. */
export interface SandboxPool {
  /**
   * The sandbox for the world's lake locations, with no cache older than the
   * files `files` (see "File caches"), entered: the caller leaves it when the
   * query ends, and a sandbox retired meanwhile stays open for it.
   */
  enter(world: LakeWorld, files: readonly string[]): Promise<Sandbox>;
  /** Retires the current sandbox (it closes once its queries end). */
  close(): Promise<void>;
}

/** What the pool reads of a policy world: its tables' sources. Worlds are immutable, so lake access is computed once per world. */
export interface LakeWorld {
  readonly tables: readonly Pick<Table, 'source'>[];
}

export function createSandboxPool(settings: SandboxSettings): SandboxPool {
  let sandbox: Promise<Sandbox> | null = null;
  let sandboxFor = '';
  // Lake access per policy world (worlds are immutable snapshots): computed once, not per query.
  const accessByWorld = new WeakMap<object, { access: LakeAccess; key: string }>();
  const replace = (access: LakeAccess, key: string): Promise<Sandbox> => {
    const previous = sandbox;
    sandboxFor = key;
    const next = openSandbox(access, settings);
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
  const accessOf = (world: LakeWorld): { access: LakeAccess; key: string } => {
    let known = accessByWorld.get(world);
    if (known === undefined) {
      const access = lakeAccessOf(world.tables.flatMap((t) => (t.source.kind === 'lake' ? [t.source.location] : [])));
      known = { access, key: sandboxKey(access) };
      accessByWorld.set(world, known);
    }
    return known;
  };
  return {
    async enter(world, files) {
      const { access, key } = accessOf(world);
      let current = sandbox === null || key !== sandboxFor ? replace(access, key) : sandbox;
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
        current = sandbox !== null && sandbox !== current && sandboxFor === key ? sandbox : replace(access, key);
      }
    },
    async close() {
      if (sandbox !== null) await sandbox.then((s) => s.retire(), () => undefined);
    },
  };
}
