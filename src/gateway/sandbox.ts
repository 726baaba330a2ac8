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
 */
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection, type DuckDBPreparedStatement } from '@duckdb/node-api';
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

export async function openParser(): Promise<Parser> {
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
  connect(): Promise<DuckDBConnection>;
  /** Closes now when idle, otherwise when the last query using it ends. */
  retire(): void;
  /** Bookkeeping: a query starts or ends on this sandbox. */
  enter(): void;
  leave(): void;
}

export async function openSandbox(access: LakeAccess, settings: SandboxSettings): Promise<Sandbox> {
  const instance = await DuckDBInstance.create(':memory:', {
    ...BASE_CONFIG,
    threads: String(settings.threads),
    memory_limit: settings.memoryLimit,
  });
  const setup = await instance.connect();
  try {
    // No parquet_metadata_cache: it trusts a footer while the file's modification time is unchanged, and a file
    // rewritten within the same tick could be read through stale offsets (possibly another column's pages under a
    // visible column's name). Each query reads the footers again (a prepared read_parquet binds twice: ~2-3 ms).
    await lockDown(setup, access);
  } finally {
    setup.closeSync();
  }
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
    connect: () => instance.connect(),
    retire() {
      retired = true;
      closeIfDone();
    },
    enter() {
      active++;
    },
    leave() {
      active--;
      closeIfDone();
    },
  };
}

export function sandboxKey(access: LakeAccess): string {
  return JSON.stringify(access);
}
