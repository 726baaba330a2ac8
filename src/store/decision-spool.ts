/**
 * The decision spool: decisions made while the store is closed (the CLI's
 * cached `authorize`, src/cli/cached-decisions.ts) wait here, one file each,
 * until the next open of the store ingests them into the decision log.
 *
 * - A decision is durable before it is answered, as on the store: the file
 *   is written under a temporary name, fsynced, renamed into place and the
 *   folder fsynced. A reader therefore sees whole files only, and any number
 *   of commands may spool at once without a lock.
 * - Ingest runs under the workspace lock (open.ts). It inserts every file's
 *   entry in one transaction, keyed by the file's name (`spool_key`, unique),
 *   then deletes the files. A crash between the two ingests a file again at
 *   the next open, and the key keeps it from being logged twice. A file that
 *   lands while ingest runs is either listed or left for the next open.
 * - A file that is not a spooled decision, or not this user's 0600 file, is
 *   renamed `*.rejected` and reported: it is kept for a person to look at,
 *   and never logged.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { DECISION_RESULTS, insertSpooled, type DecisionLogEntry, type SpooledDecision } from './decision-log.js';
import type { Db } from './db.js';
import { fsyncPath, replacePrivateFile, unsafeFile } from './workspace.js';

export const SPOOL_DIR = 'decision-spool';
const SPOOLED = /^(\d{13}-\d+-[0-9a-f]{16})\.json$/;
/** A temporary file this old was left by a writer that died before its rename. */
const STALE_TMP_MS = 3600_000;

const spoolDir = (home: string): string => path.join(path.resolve(home), SPOOL_DIR);

/** Spools one decision made at `at`; resolves once it is durable. */
export async function spoolDecision(home: string, entry: DecisionLogEntry, at: Date = new Date()): Promise<void> {
  const dir = spoolDir(home);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const key = `${String(at.getTime()).padStart(13, '0')}-${process.pid}-${randomBytes(8).toString('hex')}`;
  const body: SpooledDecision = { key, at: at.toISOString(), entry };
  await replacePrivateFile(path.join(dir, `${key}.json`), JSON.stringify(body));
  await fsyncPath(dir);
}

export interface IngestResult {
  /** Entries new to the decision log. */
  readonly ingested: number;
  /** Files refused (renamed `*.rejected`), with why. */
  readonly rejected: readonly string[];
}

/** Ingests every spooled decision into the log (the caller holds the workspace lock), then deletes the files. */
export async function ingestSpool(db: Db, home: string, now: number = Date.now()): Promise<IngestResult> {
  const dir = spoolDir(home);
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { ingested: 0, rejected: [] };
    throw e;
  }
  const good: { file: string; spooled: SpooledDecision }[] = [];
  const rejected: string[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    if (name.endsWith('.tmp')) {
      const s = await lstat(file).catch(() => null);
      if (s !== null && now - s.mtimeMs > STALE_TMP_MS) await unlink(file).catch(() => undefined);
      continue;
    }
    const m = SPOOLED.exec(name);
    if (m === null) continue;
    const why = await refusal(file, m[1] as string);
    if (typeof why === 'string') {
      await rename(file, `${file}.rejected`).catch(() => undefined);
      rejected.push(`${name}: ${why}`);
      continue;
    }
    good.push({ file, spooled: why });
  }
  const ingested = await db.transaction((tx) => insertSpooled(good.map((g) => g.spooled), tx));
  for (const g of good) await unlink(g.file).catch(() => undefined);
  return { ingested, rejected };
}

/** The spooled decision in `file`, or why it is refused. */
async function refusal(file: string, key: string): Promise<SpooledDecision | string> {
  const s = await lstat(file).catch(() => null);
  if (s === null) return 'it vanished';
  const unsafe = unsafeFile(s);
  if (unsafe !== null) return unsafe;
  let v: unknown;
  try {
    v = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return 'it is not JSON';
  }
  return asSpooled(v, key) ?? 'it is not a spooled decision';
}

function asSpooled(v: unknown, key: string): SpooledDecision | null {
  if (v === null || typeof v !== 'object') return null;
  const o = v as { key?: unknown; at?: unknown; entry?: unknown };
  if (o.key !== key || typeof o.at !== 'string' || Number.isNaN(Date.parse(o.at))) return null;
  const e = o.entry as Record<string, unknown> | null;
  if (e === null || typeof e !== 'object') return null;
  const text = (k: string): boolean => typeof e[k] === 'string';
  if (!text('actor') || !text('action') || !text('resource') || !text('reason')) return null;
  if (!(DECISION_RESULTS as readonly unknown[]).includes(e['result'])) return null;
  if (e['details'] !== undefined && (e['details'] === null || typeof e['details'] !== 'object' || Array.isArray(e['details']))) return null;
  return { key, at: new Date(o.at).toISOString(), entry: e as unknown as DecisionLogEntry };
}
