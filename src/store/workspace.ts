/**
 * The embedded workspace (`$STEWARD_HOME`, default `./.steward`) belongs to
 * one process at a time: PGlite is a single-process database, and two
 * processes opening its directory would corrupt it.
 *
 * Protocol:
 * - `<home>/lock` holds `{ pid, purpose, startedAt, hostname }` of the owner.
 *   It is created atomically (a hard link of a fully written temporary file,
 *   so a reader never sees it half-written); an existing lock whose pid is
 *   dead on this host is stale and taken over.
 * - `<home>/server.json` (mode 0600: it holds a token) tells the CLI that a
 *   server owns the workspace and where to send commands instead.
 *
 * A PostgreSQL store needs neither: it is multi-process by design.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { chmod, link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { StewardError } from '../errors.js';

export type LockPurpose = 'server' | 'cli';

export interface LockInfo {
  readonly pid: number;
  readonly purpose: LockPurpose;
  /** ISO-8601. */
  readonly startedAt: string;
  readonly hostname: string;
}

export interface WorkspaceLock {
  readonly path: string;
  readonly info: LockInfo;
  /** Set when a stale lock (its process gone) was taken over. */
  readonly tookOverFrom?: LockInfo;
  /** Removes the lock if it is still ours. Idempotent. */
  release(): Promise<void>;
}

export interface ServerInfo {
  readonly pid: number;
  readonly url: string;
  /** A token the local CLI may use to call the server. */
  readonly token: string;
}

/** `$STEWARD_HOME` or `./.steward`, absolute. */
export function stewardHome(env: NodeJS.ProcessEnv = process.env): string {
  const home = env.STEWARD_HOME;
  return path.resolve(home !== undefined && home !== '' ? home : '.steward');
}

/** Alive as far as signals can tell: EPERM means it exists but belongs to someone else. */
export function isPidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code;
const tmpName = (file: string): string => `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;

/**
 * Creates `file` with `content` only if it does not exist; false if it does.
 * Writing a temporary file and hard-linking it into place makes creation and
 * content appear together, so a concurrent reader never mistakes a lock being
 * written for a corrupt, stale one. Filesystems without hard links fall back
 * to O_EXCL, whose half-written window readers tolerate (see readLock).
 */
async function createExclusive(file: string, content: string): Promise<boolean> {
  const tmp = tmpName(file);
  await writeFileMode(tmp, content, 0o600);
  try {
    await link(tmp, file);
    return true;
  } catch (e) {
    if (errno(e) === 'EEXIST') return false;
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV'].includes(errno(e) ?? '')) throw e;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  try {
    await writeFileMode(file, content, 0o600, 'wx');
    return true;
  } catch (e) {
    if (errno(e) === 'EEXIST') return false;
    throw e;
  }
}

async function writeFileMode(file: string, content: string, mode: number, flags: 'wx' = 'wx'): Promise<void> {
  const fh = await open(file, flags, mode);
  try {
    // The umask may have narrowed the mode; it can never widen it, but say it explicitly.
    await fh.chmod(mode);
    await fh.writeFile(content, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

type LockRead = { state: 'missing' } | { state: 'unreadable'; ageMs: number } | { state: 'ok'; raw: string; info: LockInfo };

function parseLock(raw: string): LockInfo | null {
  try {
    const v = JSON.parse(raw) as Partial<LockInfo> | null;
    if (
      v !== null &&
      typeof v === 'object' &&
      Number.isSafeInteger(v.pid) &&
      (v.purpose === 'server' || v.purpose === 'cli') &&
      typeof v.startedAt === 'string' &&
      typeof v.hostname === 'string'
    ) {
      return { pid: v.pid as number, purpose: v.purpose, startedAt: v.startedAt, hostname: v.hostname };
    }
  } catch {
    // fall through
  }
  return null;
}

async function readLock(file: string): Promise<LockRead> {
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch (e) {
    if (errno(e) === 'ENOENT') return { state: 'missing' };
    throw e;
  }
  const info = parseLock(raw);
  if (info !== null) return { state: 'ok', raw, info };
  const s = await stat(file).catch(() => null);
  return s === null ? { state: 'missing' } : { state: 'unreadable', ageMs: Date.now() - s.mtimeMs };
}

/**
 * Moves a stale lock out of the way without ever deleting a live one: rename
 * is atomic, and if what we moved is not the stale content we read (another
 * process took over in between), it goes back.
 */
async function removeStale(file: string, staleRaw: string): Promise<void> {
  const aside = tmpName(`${file}.stale`);
  try {
    await rename(file, aside);
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    throw e;
  }
  const moved = await readFile(aside, 'utf8').catch(() => null);
  if (moved !== staleRaw) await link(aside, file).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}

function lockedError(home: string, file: string, holder: LockInfo): StewardError {
  const since = `pid ${holder.pid}, started ${holder.startedAt}`;
  if (holder.hostname !== os.hostname()) {
    return new StewardError(
      'STEWARD_E_WORKSPACE_LOCKED',
      `workspace \`${home}\` is locked by a steward ${holder.purpose} on host \`${holder.hostname}\` (${since}), which this machine cannot check; if that process is gone, delete \`${file}\``,
    );
  }
  const what =
    holder.purpose === 'server'
      ? `a steward server (${since}); stop it, or run the CLI while it runs (commands go through the server when \`${path.join(home, 'server.json')}\` is present)`
      : `another steward command (${since}); wait for it to finish, or stop it`;
  return new StewardError('STEWARD_E_WORKSPACE_LOCKED', `workspace \`${home}\` is in use by ${what}`);
}

/**
 * Takes the workspace for this process, or fails with STEWARD_E_WORKSPACE_LOCKED
 * naming the owner. The lock is released by `release()`, at process exit, and
 * on SIGINT/SIGTERM when nothing else handles them (a server that installs its
 * own handlers releases through `release()` after its graceful shutdown, so the
 * workspace is never free while the database is still closing).
 *
 * @example
 *   const lock = await acquireWorkspaceLock(stewardHome(), { purpose: 'cli' });
 *   try { … } finally { await lock.release(); }
 */
export async function acquireWorkspaceLock(home: string, options: { purpose: LockPurpose }): Promise<WorkspaceLock> {
  const dir = path.resolve(home);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'lock');
  const info: LockInfo = { pid: process.pid, purpose: options.purpose, startedAt: new Date().toISOString(), hostname: os.hostname() };
  const content = `${JSON.stringify(info)}\n`;
  let tookOverFrom: LockInfo | undefined;

  for (let attempt = 0; attempt < 20; attempt++) {
    if (await createExclusive(file, content)) return holdLock(file, info, content, tookOverFrom);
    const current = await readLock(file);
    if (current.state === 'missing') continue;
    if (current.state === 'unreadable') {
      // Being written through the O_EXCL fallback, or garbage left by a crash.
      if (current.ageMs < 5_000) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      const raw = await readFile(file, 'utf8').catch(() => null);
      if (raw !== null && parseLock(raw) === null) await removeStale(file, raw);
      continue;
    }
    const holder = current.info;
    if (holder.hostname !== info.hostname || isPidAlive(holder.pid)) throw lockedError(dir, file, holder);
    await removeStale(file, current.raw);
    tookOverFrom = holder;
  }
  throw new StewardError('STEWARD_E_WORKSPACE_LOCKED', `workspace \`${dir}\` is contended: could not take its lock, try again`);
}

function holdLock(file: string, info: LockInfo, content: string, tookOverFrom: LockInfo | undefined): WorkspaceLock {
  let released = false;
  const ours = (raw: string | null): boolean => raw === content;

  const releaseSync = (): void => {
    if (released) return;
    released = true;
    detach();
    try {
      if (ours(readFileSync(file, 'utf8'))) unlinkSync(file);
    } catch {
      // Gone already.
    }
  };
  const onExit = (): void => releaseSync();
  const onSignal = (signal: NodeJS.Signals): void => {
    // Someone else handles this signal (a server's graceful shutdown): it will
    // call release() once the database is closed. Releasing now would let a
    // second process open the database while this one is still writing.
    if (process.listenerCount(signal) > 1) return;
    releaseSync();
    // Our listener suppressed the default action; restore it and re-raise.
    process.kill(process.pid, signal);
  };
  const onSigint = (): void => onSignal('SIGINT');
  const onSigterm = (): void => onSignal('SIGTERM');
  function detach(): void {
    process.off('exit', onExit);
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
  }
  process.on('exit', onExit);
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);

  return {
    path: file,
    info,
    ...(tookOverFrom === undefined ? {} : { tookOverFrom }),
    async release(): Promise<void> {
      if (released) return;
      released = true;
      detach();
      const raw = await readFile(file, 'utf8').catch(() => null);
      if (ours(raw)) await unlink(file).catch(() => undefined);
    },
  };
}

/** Describes a takeover for the user, e.g. `took over the lock of pid 123 (cli, started …), which is no longer running`. */
export function describeTakeover(lock: WorkspaceLock): string | null {
  const t = lock.tookOverFrom;
  return t === undefined ? null : `took over the lock of pid ${t.pid} (${t.purpose}, started ${t.startedAt}), which is no longer running`;
}

// ---------------------------------------------------------------- server.json

interface ServerFile extends ServerInfo {
  readonly hostname: string;
}

/** Writes `<home>/server.json` with mode 0600 (it holds a token), atomically replacing any previous one. */
export async function writeServerInfo(home: string, info: ServerInfo): Promise<void> {
  const dir = path.resolve(home);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'server.json');
  const tmp = tmpName(file);
  const body: ServerFile = { pid: info.pid, url: info.url, token: info.token, hostname: os.hostname() };
  await writeFileMode(tmp, `${JSON.stringify(body, null, 2)}\n`, 0o600);
  try {
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await chmod(file, 0o600);
}

/** The running server of this workspace, or null when there is none (no file, unreadable, or its process is gone). */
export async function readServerInfo(home: string): Promise<ServerInfo | null> {
  let raw: string;
  try {
    raw = await readFile(path.join(path.resolve(home), 'server.json'), 'utf8');
  } catch {
    return null;
  }
  let v: Partial<ServerFile>;
  try {
    v = JSON.parse(raw) as Partial<ServerFile>;
  } catch {
    return null;
  }
  if (v === null || typeof v !== 'object' || !Number.isSafeInteger(v.pid) || typeof v.url !== 'string' || typeof v.token !== 'string') return null;
  if (typeof v.hostname === 'string' && v.hostname !== os.hostname()) return null;
  if (!isPidAlive(v.pid as number)) return null;
  return { pid: v.pid as number, url: v.url, token: v.token };
}

/** Removes `<home>/server.json` if it names `pid` (default: this process), so one server never removes another's. */
export async function removeServerInfo(home: string, pid: number = process.pid): Promise<void> {
  const file = path.join(path.resolve(home), 'server.json');
  const raw = await readFile(file, 'utf8').catch(() => null);
  if (raw === null) return;
  try {
    if ((JSON.parse(raw) as { pid?: unknown }).pid !== pid) return;
  } catch {
    // Unparseable: nobody can use it; remove it.
  }
  await unlink(file).catch(() => undefined);
}
