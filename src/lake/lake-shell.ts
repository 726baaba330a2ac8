/**
 * The server's handle on the lake: one DuckDB instance used for parsing
 * predicates and inspecting files, shared by every request (DuckDB parses
 * concurrently on one connection per call).
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
  readonly duckdb: DuckDb;
  close(): Promise<void>;
}

/** `roots`: where lake tables may be registered from; unset only in tools that never serve users. */
export async function createLakeShell(roots?: LakeRoots): Promise<LakeShell> {
  const duckdb = await openDuckDb({ config: { threads: '1' } });
  const shell: LakeShell = {
    duckdb,
    parsePredicate: (sql) => parsePredicate(sql, duckdb),
    inspectLake: (spec) => inspectLake(spec, roots === undefined ? { db: duckdb } : { db: duckdb, allowedRoots: roots }),
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
    close: async () => duckdb.close(),
  };
  return shell;
}
