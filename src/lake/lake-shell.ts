/**
 * The server's handle on the lake: one DuckDB instance used for parsing
 * predicates and inspecting files, shared by every request (DuckDB parses
 * concurrently on one connection per call). It opens on first use, so a
 * command that never reads the lake never loads DuckDB.
 */
import { openDuckDb, type DuckDb } from './duckdb.js';
import { parsePredicate } from '../catalog/predicate-parser.js';
import { inspectLake, type LakeInspection, type LakeSpec } from '../catalog/lake-source.js';
import { inspectPostgresSchema } from '../catalog/postgres-source.js';
import type { Column, Table } from '../policy/model.js';
import type { Predicate } from '../policy/predicate.js';
import type { LakeRoots } from '../catalog/lake-roots.js';
import { StewardError } from '../errors.js';

export interface LakeShell {
  parsePredicate(sql: string): Promise<Predicate>;
  inspectLake(spec: LakeSpec): Promise<LakeInspection>;
  inspectPostgresSchema(url: string, schema: string): Promise<{ table: string; columns: Column[] }[]>;
  /** The current columns of a registered table, read from its source. */
  columnsOf(table: Table): Promise<Column[]>;
  /** The shared instance, opened by the first caller. */
  duckdb(): Promise<DuckDb>;
  close(): Promise<void>;
}

/** `roots`: where lake tables may be registered from; unset only in tools that never serve users. */
export async function createLakeShell(roots?: LakeRoots): Promise<LakeShell> {
  let opening: Promise<DuckDb> | undefined;
  const duckdb = (): Promise<DuckDb> =>
    (opening ??= openDuckDb({ config: { threads: '1' } }).catch((e: unknown) => {
      opening = undefined; // a failed open is retried by the next caller, not remembered
      throw e;
    }));
  const shell: LakeShell = {
    duckdb,
    parsePredicate: async (sql) => parsePredicate(sql, await duckdb()),
    inspectLake: async (spec) => {
      const db = await duckdb();
      return inspectLake(spec, roots === undefined ? { db } : { db, allowedRoots: roots });
    },
    inspectPostgresSchema: (url, schema) => inspectPostgresSchema(url, schema),
    columnsOf: async (table) => {
      const source = table.source;
      switch (source.kind) {
        case 'lake':
          return (await shell.inspectLake({ location: source.location, format: source.format, hivePartitioning: source.hivePartitioning })).columns;
        case 'postgres':
          throw new StewardError(
            'STEWARD_E_SOURCE',
            `table \`${table.catalog}.${table.database}.${table.name}\` comes from PostgreSQL; register its schema again with \`replace\` to refresh it (the stored connection has no password)`,
          );
        case 'virtual':
          return [...table.columns];
        default: {
          const never: never = source;
          return never;
        }
      }
    },
    close: async () => {
      if (opening !== undefined) (await opening.catch(() => undefined))?.close();
    },
  };
  return shell;
}
