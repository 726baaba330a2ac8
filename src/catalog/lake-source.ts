/**
 * Inspects lake files (Parquet, CSV, JSON) with DuckDB: which files a location
 * matches, their format, their columns and (for Parquet) their row count.
 *
 * A location is a single file, a glob (`data/*.parquet`, `data/**\/*.csv`) or a
 * folder (`data/claims/`, or an existing local directory). A folder expands to
 * `folder/**\/*.<ext>` and reads hive partitions by default, so `year=2025/`
 * path segments appear as columns.
 *
 * Paths are always bound parameters of constant SQL, never spliced.
 *
 * Column names: lowercased (DuckDB resolves identifiers case-insensitively, so
 * `PatientId` is still readable as `patientid`). A name that is not a plain
 * identifier after lowercasing (`Patient Name`), or two names equal after
 * lowercasing, is an error naming the column and the location: we do not
 * rename, because the gateway reads the files by their real column names.
 */
import { statSync } from 'node:fs';
import { assertLakeLocation, type LakeRoots } from './lake-roots.js';
import { StewardError } from '../errors.js';
import { CATALOG_NAME_PATTERN, NAME_PATTERN } from '../policy/model.js';
import type { Column, Table, TableSource } from '../policy/model.js';
import { openDuckDb } from '../lake/duckdb.js';
import type { BindValue, DuckDb } from '../lake/duckdb.js';

export type LakeFormat = 'parquet' | 'csv' | 'json';

export const MAX_LOCATION_LENGTH = 4096;

export interface LakeLocation {
  readonly location: string;
  /** Inferred from the extension of the location or of the files it matches when omitted. */
  readonly format?: LakeFormat;
  /** Read `key=value` path segments as columns; defaults to true for folders, false otherwise. */
  readonly hivePartitioning?: boolean;
}

/** Alias used by the lake shell. */
export type LakeSpec = LakeLocation;

export interface InspectOptions {
  /** Reuse a DuckDB (one per batch); otherwise a private one is opened and closed. */
  readonly db?: DuckDb;
  /**
   * Local directories the location must lie in. Registering a lake table lets
   * DuckDB read the path with the server's rights, so deployments should set this.
   */
  readonly allowedRoots?: LakeRoots;
  /** Count rows of CSV/JSON too (a full scan); Parquet rows come from metadata and are always counted. */
  readonly countRows?: boolean;
}

export interface LakeInspection {
  readonly format: LakeFormat;
  /** What the gateway should read: the file, the glob, or the folder expanded to a glob. */
  readonly location: string;
  readonly hivePartitioning: boolean;
  // INVARIANT: columns are sorted by ordinal, ordinals are 0..n-1
  readonly columns: Column[];
  readonly files: number;
  readonly rows?: number;
  readonly source: Extract<TableSource, { kind: 'lake' }>;
}

const EXTENSIONS: ReadonlyArray<readonly [RegExp, LakeFormat]> = [
  [/\.(parquet|pq)$/i, 'parquet'],
  [/\.(csv|tsv|txt)(\.(gz|zst))?$/i, 'csv'],
  [/\.(json|jsonl|ndjson)(\.(gz|zst))?$/i, 'json'],
];

/** `parquet`, `csv`, `json`, or null for an unknown extension. */
export function formatOfPath(p: string): LakeFormat | null {
  for (const [re, format] of EXTENSIONS) if (re.test(p)) return format;
  return null;
}

/** The extension as a glob suffix: `.parquet`, `.csv.gz`. */
function extensionOf(p: string): string {
  const base = p.slice(p.lastIndexOf('/') + 1);
  const m = /(\.[A-Za-z0-9]+)(\.(gz|zst))?$/.exec(base);
  return m ? m[0] : '';
}

function isRemote(location: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(location);
}

function isGlob(location: string): boolean {
  return /[*?[]/.test(location);
}

/** Bookkeeping files that engines write next to data (`_SUCCESS`, `.crc`). */
function isHidden(file: string): boolean {
  const name = file.slice(file.lastIndexOf('/') + 1);
  return name.startsWith('.') || name.startsWith('_');
}

function sourceError(message: string, cause?: unknown): StewardError {
  return new StewardError('STEWARD_E_SOURCE', message, cause === undefined ? {} : { cause });
}

/** DuckDB's first message line, without the `LINE 1:` caret block that echoes our constant SQL. */
function duckMessage(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return (text.split('\n')[0] ?? text).trim();
}

function isLocalDirectory(location: string): boolean {
  if (isRemote(location) || isGlob(location)) return false;
  try {
    return statSync(location).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Inspects one location.
 *
 * @example
 *   await inspectLake({ location: 'lake/claims/patient_claims/' });
 *   // { format: 'parquet', location: 'lake/claims/patient_claims/**\/*.parquet', hivePartitioning: true, files: 1, rows: 100000, columns: [...] }
 */
export async function inspectLake(input: LakeLocation, optionsOrDb: InspectOptions | DuckDb = {}): Promise<LakeInspection> {
  // A bare DuckDb is accepted as a shorthand for `{ db }`.
  const options: InspectOptions = 'connection' in optionsOrDb ? { db: optionsOrDb } : optionsOrDb;
  if (options.db !== undefined) return inspectWith(options.db, input, options);
  const db = await openDuckDb();
  try {
    return await inspectWith(db, input, options);
  } finally {
    db.close();
  }
}

async function inspectWith(db: DuckDb, input: LakeLocation, options: InspectOptions): Promise<LakeInspection> {
  const raw = input.location.trim();
  if (raw.length === 0) throw sourceError('location is empty');
  if (raw.length > MAX_LOCATION_LENGTH) throw sourceError(`location is longer than ${MAX_LOCATION_LENGTH} characters`);
  if (raw.includes('\u0000')) throw sourceError('location contains a NUL character');
  if (options.allowedRoots !== undefined) assertLakeLocation(raw, options.allowedRoots);

  const folder = raw.endsWith('/') || isLocalDirectory(raw);
  const base = raw.replace(/\/+$/, '');
  const listPattern = folder ? `${base}/**/*` : raw;

  let files: string[];
  try {
    const rows = await db.all<{ file: string }>('SELECT file FROM glob($1) ORDER BY file', [listPattern]);
    files = rows.map((r) => r.file).filter((f) => !isHidden(f));
  } catch (e) {
    throw sourceError(`cannot list \`${raw}\`: ${duckMessage(e)}`, e);
  }
  // A glob can walk through a symlinked folder that the location's own prefix does not show.
  if (options.allowedRoots !== undefined) for (const f of files) assertLakeLocation(f, options.allowedRoots);

  // Which formats do the matched files have? One location is one format.
  const byFormat = new Map<LakeFormat, string[]>();
  const unknown: string[] = [];
  for (const f of files) {
    const fmt = formatOfPath(f);
    if (fmt === null) unknown.push(f);
    else byFormat.set(fmt, [...(byFormat.get(fmt) ?? []), f]);
  }

  if (byFormat.size > 1) {
    const kinds = [...byFormat.keys()].sort().join(', ');
    throw sourceError(`location \`${raw}\` mixes formats (${kinds}); register one table per format or pass a narrower glob`);
  }
  const format = input.format ?? formatOfPath(raw) ?? [...byFormat.keys()][0];
  if (format === undefined) {
    if (files.length === 0) throw sourceError(`no files match \`${raw}\``);
    throw sourceError(`cannot infer the format of \`${raw}\`; pass format parquet, csv or json`);
  }
  if (input.format === undefined && formatOfPath(raw) === null && unknown.length > 0) {
    // `data/*` matching `x.parquet` and `notes.md`: reading both as Parquet would fail later, and less clearly.
    throw sourceError(`location \`${raw}\` also matches files that are not ${format} (\`${unknown[0] ?? ''}\`); pass a narrower glob`);
  }

  let pattern = raw;
  const matched = folder ? (byFormat.get(format) ?? []) : files;
  if (folder) {
    const extensions = new Set(matched.map(extensionOf));
    if (extensions.size > 1) {
      throw sourceError(`folder \`${raw}\` mixes extensions (${[...extensions].sort().join(', ')}); pass a glob instead`);
    }
    const ext = [...extensions][0] ?? (format === 'parquet' ? '.parquet' : `.${format}`);
    pattern = `${base}/**/*${ext}`;
  }
  if (matched.length === 0) throw sourceError(`no files match \`${raw}\``);

  const hive = input.hivePartitioning ?? folder;
  const params: BindValue[] = [pattern, hive];
  let described: { column_name: string; column_type: string }[];
  try {
    described = await db.all<{ column_name: string; column_type: string }>(DESCRIBE_SQL[format], params);
  } catch (e) {
    throw sourceError(`cannot read \`${raw}\` as ${format}: ${duckMessage(e)}`, e);
  }

  const columns = toColumns(described, raw, matched[0] ?? raw);

  let rows: number | undefined;
  try {
    if (format === 'parquet') {
      const [r] = await db.all<{ n: number | string | null }>('SELECT sum(num_rows)::BIGINT AS n FROM parquet_file_metadata($1)', [pattern]);
      rows = r && typeof r.n === 'number' ? r.n : undefined;
    } else if (options.countRows === true) {
      const [r] = await db.all<{ n: number | string | null }>(COUNT_SQL[format], params);
      rows = r && typeof r.n === 'number' ? r.n : undefined;
    }
  } catch (e) {
    throw sourceError(`cannot read \`${raw}\` as ${format}: ${duckMessage(e)}`, e);
  }

  const source = { kind: 'lake', format, location: pattern, hivePartitioning: hive } as const;
  return {
    format,
    location: pattern,
    hivePartitioning: hive,
    columns,
    files: matched.length,
    ...(rows === undefined ? {} : { rows }),
    source,
  };
}

// Constant SQL per format: the path and the hive flag are bound, never spliced.
const DESCRIBE_SQL: Readonly<Record<LakeFormat, string>> = {
  parquet: 'DESCRIBE SELECT * FROM read_parquet($1, hive_partitioning = $2)',
  csv: 'DESCRIBE SELECT * FROM read_csv($1, hive_partitioning = $2)',
  json: 'DESCRIBE SELECT * FROM read_json($1, hive_partitioning = $2)',
};

const COUNT_SQL: Readonly<Record<Exclude<LakeFormat, 'parquet'>, string>> = {
  csv: 'SELECT count(*)::BIGINT AS n FROM read_csv($1, hive_partitioning = $2)',
  json: 'SELECT count(*)::BIGINT AS n FROM read_json($1, hive_partitioning = $2)',
};

function toColumns(described: readonly { column_name: string; column_type: string }[], location: string, file: string): Column[] {
  const seen = new Map<string, string>();
  return described.map((d, ordinal) => {
    const name = d.column_name.toLowerCase();
    if (!NAME_PATTERN.test(name)) {
      throw sourceError(
        `column \`${d.column_name}\` of \`${location}\` (file \`${file}\`) is not a plain identifier; rename it to letters, digits and underscores`,
      );
    }
    const earlier = seen.get(name);
    if (earlier !== undefined) {
      throw sourceError(`columns \`${earlier}\` and \`${d.column_name}\` of \`${location}\` (file \`${file}\`) differ only in case`);
    }
    seen.set(name, d.column_name);
    return { name, type: d.column_type, ordinal };
  });
}

// ---------------------------------------------------------------- batches

export interface LakeTableEntry extends LakeLocation {
  readonly catalog: string;
  readonly database: string;
  readonly name: string;
}

export interface LakeRegistrationFailure {
  readonly entry: LakeTableEntry;
  readonly error: StewardError;
}

export interface LakeRegistration {
  /** Tables ready for the store, in input order (failed entries left out). */
  readonly tables: readonly Table[];
  readonly inspections: readonly LakeInspection[];
  readonly failures: readonly LakeRegistrationFailure[];
}

export interface LakeProgress {
  readonly done: number;
  readonly total: number;
  readonly entry: LakeTableEntry;
  readonly ok: boolean;
}

/**
 * Inspects many lake tables with one DuckDB, reporting progress after each so
 * the CLI can draw a bar. One bad entry does not stop the others; it is listed
 * in `failures`. Nothing is stored: the caller saves `tables`.
 */
export async function registerLakeTables(
  entries: readonly LakeTableEntry[],
  onProgress?: (progress: LakeProgress) => void,
  options: Omit<InspectOptions, 'db'> & { readonly db?: DuckDb } = {},
): Promise<LakeRegistration> {
  const tables: Table[] = [];
  const inspections: LakeInspection[] = [];
  const failures: LakeRegistrationFailure[] = [];
  const db = options.db ?? (await openDuckDb());
  try {
    let done = 0;
    for (const entry of entries) {
      let ok = false;
      try {
        checkNames(entry);
        const inspection = await inspectWith(db, entry, options);
        inspections.push(inspection);
        tables.push({
          catalog: entry.catalog.trim().toLowerCase(),
          database: entry.database.trim().toLowerCase(),
          name: entry.name.trim().toLowerCase(),
          columns: inspection.columns,
          source: inspection.source,
        });
        ok = true;
      } catch (e) {
        const error = e instanceof StewardError ? e : sourceError(`cannot inspect \`${entry.location}\`: ${duckMessage(e)}`, e);
        failures.push({ entry, error });
      }
      done += 1;
      onProgress?.({ done, total: entries.length, entry, ok });
    }
  } finally {
    if (options.db === undefined) db.close();
  }
  return { tables, inspections, failures };
}

function checkNames(entry: LakeTableEntry): void {
  const catalog = entry.catalog.trim().toLowerCase();
  const database = entry.database.trim().toLowerCase();
  const name = entry.name.trim().toLowerCase();
  if (!CATALOG_NAME_PATTERN.test(catalog)) {
    throw new StewardError('STEWARD_E_VALIDATION', `catalog name \`${entry.catalog}\` is not valid`);
  }
  if (!NAME_PATTERN.test(database)) throw new StewardError('STEWARD_E_VALIDATION', `database name \`${entry.database}\` is not valid`);
  if (!NAME_PATTERN.test(name)) throw new StewardError('STEWARD_E_VALIDATION', `table name \`${entry.name}\` is not valid`);
}
