/**
 * Writes chained, conformed events to Parquet with DuckDB:
 *
 *   NDJSON staging file → COPY (SELECT * FROM read_json(…)) TO '.b42.parquet.tmp' → rename to 'b42.parquet'
 *
 * Paths are bound parameters of constant SQL. The rename makes a file appear
 * whole or not at all, and the deterministic name (one per batch and
 * partition) makes a retried batch overwrite its own file instead of adding a
 * second copy.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { openDuckDb, type DuckDb } from '../lake/duckdb.js';
import { StewardError } from '../errors.js';
import { READ_JSON_COLUMNS } from './lake-schema.js';

export interface PartitionKey {
  readonly region: string;
  readonly accountId: string;
  readonly eventDay: string;
}

/** `<lake>/security/ext/<source>` */
export function sourceDir(lakeDir: string, source: string): string {
  return path.join(lakeDir, 'security', 'ext', source);
}

export function partitionDir(lakeDir: string, source: string, p: PartitionKey): string {
  return path.join(sourceDir(lakeDir, source), `region=${p.region}`, `accountId=${p.accountId}`, `eventDay=${p.eventDay}`);
}

export const batchFileName = (batch: number): string => `b${String(batch).padStart(12, '0')}.parquet`;

/** Partition values become folder names: anything outside `[A-Za-z0-9_.-]` is replaced, and `..` cannot escape. */
export function partitionValue(v: string | undefined, fallback: string): string {
  const cleaned = (v ?? '').replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^\.+/, '_').slice(0, 64);
  return cleaned.length === 0 ? fallback : cleaned;
}

function lakeError(dir: string, e: unknown): StewardError {
  const text = e instanceof Error ? (e.message.split('\n')[0] ?? e.message) : String(e);
  return new StewardError('STEWARD_E_SOURCE', `cannot write the security lake at \`${dir}\`: ${text}; the events stay in the outbox and are written once it is writable`, {
    cause: e,
  });
}

export interface ParquetWriter {
  /** Writes NDJSON lines (one chained event each) as one Parquet file; returns its path. */
  write(dir: string, fileName: string, lines: readonly string[]): Promise<string>;
  readonly duckdb: DuckDb;
  close(): void;
}

export async function createParquetWriter(options: { stagingDir: string; compression?: 'zstd' | 'snappy' }): Promise<ParquetWriter> {
  const duckdb = await openDuckDb({ config: { threads: '1' } });
  const compression = options.compression ?? 'zstd';
  // Constant SQL: the column spec is built from the schema, the paths are bound.
  const copySql = `COPY (SELECT * FROM read_json($1, format = 'newline_delimited', columns = ${READ_JSON_COLUMNS})) TO $2 (FORMAT parquet, COMPRESSION ${compression})`;
  let counter = 0;
  return {
    duckdb,
    async write(dir, fileName, lines) {
      const staging = path.join(options.stagingDir, `${process.pid}-${++counter}.ndjson`);
      const target = path.join(dir, fileName);
      const temp = path.join(dir, `.${fileName}.tmp`);
      try {
        await fs.mkdir(options.stagingDir, { recursive: true });
        await fs.mkdir(dir, { recursive: true });
        await fs.writeFile(staging, lines.join('\n'));
        await duckdb.run(copySql, [staging, temp]);
        // Durable before it counts: the batch is marked written only after this returns.
        const fh = await fs.open(temp, 'r');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
        await fs.rename(temp, target);
        return target;
      } catch (e) {
        await fs.rm(temp, { force: true }).catch(() => {});
        throw lakeError(dir, e);
      } finally {
        await fs.rm(staging, { force: true }).catch(() => {});
      }
    },
    close: () => duckdb.close(),
  };
}
