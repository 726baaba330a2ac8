/**
 * The world cache: the policy world as the last clean close left it, so that
 * a one-shot `steward authorize` on an embedded workspace answers without
 * opening PGlite (opening and closing the store were ~0.6 s of a 1.3 s
 * command; src/cli/cached-decisions.ts).
 *
 * Trust rests on a protocol, not on comparing versions (reading the store's
 * version would mean opening it):
 * - every open of the embedded store deletes the cache, right after taking
 *   the workspace lock and before anything can be written (open.ts);
 * - a clean close writes it (0600, fsynced, renamed into place) after the
 *   store is closed and before the lock is released.
 * So the cache exists only while no process has opened the store since the
 * close that wrote it: it holds the store's latest committed world. A crash
 * writes none, and the next command opens the store.
 *
 * It also records when the store's next durable timer falls due (a JIT
 * activation, an experiment starting): from then on the world may change
 * without anyone writing, so the cache is ignored and the command opens the
 * store, which runs the timer. (Ends need no such care: the engine checks a
 * grant's `notAfter` and an experiment's end at decision time.)
 */
import { lstat, readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { PolicyWorld } from '../policy/model.js';
import { replacePrivateFile, unsafeFile } from '../store/workspace.js';

export const WORLD_CACHE_FILE = 'world-cache.json';
const FORMAT = 1;
/** Worlds past this many entities are not cached: writing them at every close would cost more than opening saves. */
export const MAX_CACHED_ENTITIES = 20_000;

export interface WorldCache {
  /** The store's policy version the world is. */
  readonly version: number;
  readonly world: PolicyWorld;
  /** Epoch ms of the store's next due timer; null when none is scheduled. */
  readonly validUntil: number | null;
}

const WORLD_FIELDS = ['catalogs', 'databases', 'tables', 'users', 'groups', 'memberships', 'idpMappings', 'tagKeys', 'tagAssignments', 'filters', 'grants', 'guardrails'] as const;

const cacheFile = (home: string): string => path.join(path.resolve(home), WORLD_CACHE_FILE);

/** Deletes the cache; called by every opener of the embedded store before it can change anything. */
export async function dropWorldCache(home: string): Promise<void> {
  try {
    await unlink(cacheFile(home));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** Writes the cache at a clean close (the caller holds the lock and has closed the store). */
export async function writeWorldCache(home: string, cache: WorldCache): Promise<boolean> {
  const size = WORLD_FIELDS.reduce((n, k) => n + cache.world[k].length, 0);
  if (size > MAX_CACHED_ENTITIES) return false;
  await replacePrivateFile(cacheFile(home), JSON.stringify({ format: FORMAT, ...cache }));
  return true;
}

/**
 * The cached world, or null when there is none or it cannot be trusted: the
 * workspace or the file could have been written by someone else (not owned
 * by this user, or readable by others: the full open repairs and reports
 * that), it is not a cache this version writes, or a timer is due.
 */
export async function readWorldCache(home: string, now: number = Date.now()): Promise<WorldCache | null> {
  const dir = path.resolve(home);
  const uid = process.getuid?.();
  // The folder may be a link (as the full open allows); the cache file itself may not.
  const [d, f] = await Promise.all([stat(dir).catch(() => null), lstat(cacheFile(home)).catch(() => null)]);
  if (d === null || f === null || !d.isDirectory() || (d.mode & 0o077) !== 0 || (uid !== undefined && d.uid !== uid) || unsafeFile(f) !== null) return null;
  let v: unknown;
  try {
    v = JSON.parse(await readFile(cacheFile(home), 'utf8'));
  } catch {
    return null;
  }
  if (!isCache(v)) return null;
  if (v.validUntil !== null && now >= v.validUntil) return null;
  return { version: v.version, world: v.world, validUntil: v.validUntil };
}

function isCache(v: unknown): v is WorldCache & { format: number } {
  if (v === null || typeof v !== 'object') return false;
  const c = v as { format?: unknown; version?: unknown; validUntil?: unknown; world?: unknown };
  if (c.format !== FORMAT || !Number.isSafeInteger(c.version)) return false;
  if (c.validUntil !== null && !Number.isFinite(c.validUntil)) return false;
  const w = c.world as Record<string, unknown> | null | undefined;
  return w !== null && typeof w === 'object' && WORLD_FIELDS.every((k) => Array.isArray(w[k]));
}
