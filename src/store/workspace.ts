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
import { chmod, link, lstat, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
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
  /** Set when the server stops by itself after this long without a request (the CLI's background server). */
  readonly idleStopSeconds?: number;
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

// ------------------------------------------------------------------ file modes

/** The process umask while a workspace is open: it holds the store, tokens and the demo's PII, so nothing in it is for other users. */
export const PRIVATE_UMASK = 0o077;

/**
 * Makes `home` private before anything is written into it: sets the process
 * umask to 0077 (so every file this process creates, DuckDB's COPY … TO
 * included, is 0600 and every folder 0700, whatever the user's umask), creates
 * `home` 0700, and narrows an existing too-open `home` and everything under it
 * with a warning (a workspace made before this rule, or by a careless mkdir).
 */
export async function secureWorkspaceHome(home: string, warn: (message: string) => void = warnOnStderr): Promise<void> {
  process.umask(PRIVATE_UMASK);
  const dir = path.resolve(home);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const s = await stat(dir);
  if ((s.mode & 0o077) !== 0) {
    await chmod(dir, s.mode & 0o700);
    const inside = await tightenModes(dir);
    warn(`workspace \`${dir}\` was open to other users (mode ${octal(s.mode)}); it is now ${octal(s.mode & 0o700)}${inside > 0 ? `, and so are ${inside} file(s) and folder(s) in it` : ''}`);
  }
}

/**
 * Removes group and other permissions from every folder and file under `dir`
 * (symlinks are left alone, never followed). The umask cannot cover files
 * whose writer sets the mode itself: PGlite chmods its data files to 0666.
 * Folders in `except` (absolute; the lake, which only grows and is written
 * under the umask) are not walked. Returns how many entries changed.
 */
export async function tightenModes(dir: string, except: readonly string[] = []): Promise<number> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((e: unknown) => {
    if (errno(e) === 'ENOENT') return [];
    throw e;
  });
  // In parallel: a store holds about a thousand files, and one at a time was a tenth of a CLI command's time.
  const counts = await Promise.all(
    entries.map(async (entry): Promise<number> => {
      const full = path.join(dir, entry.name);
      if (entry.isSymbolicLink() || except.includes(full)) return 0;
      const s = await lstat(full).catch(() => null);
      if (s === null) return 0; // removed meanwhile (a temporary file)
      let changed = 0;
      if ((s.mode & 0o077) !== 0) {
        await chmod(full, s.mode & 0o700).catch((e: unknown) => {
          if (errno(e) !== 'ENOENT') throw e;
        });
        changed = 1;
      }
      return s.isDirectory() ? changed + (await tightenModes(full, except)) : changed;
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

const octal = (mode: number): string => `0${(mode & 0o777).toString(8)}`;
const warnOnStderr = (message: string): void => void process.stderr.write(`warning: ${message}\n`);

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
 * Removes a stale lock without ever removing a live one, even for a moment.
 *
 * Takeovers are serialized by a guard file next to the lock, created
 * exclusively: only its holder may delete the lock, and only after reading it
 * again and finding the stale content. Nothing else ever replaces an existing
 * lock file (acquiring only creates one that is absent; releasing removes only
 * one's own), so the content cannot change between that read and the unlink.
 * (The earlier version renamed the lock aside to compare it: while it was
 * aside, a third process could create its own, and the live lock it had moved
 * could not be put back: two holders.)
 *
 * A guard left by a process that died during a takeover is removed once its
 * pid is gone; a guard still held makes this attempt give up, and the caller
 * reads the lock again.
 */
async function removeStale(file: string, staleRaw: string): Promise<void> {
  const guard = `${file}.takeover`;
  const mine = `${JSON.stringify({ pid: process.pid, hostname: os.hostname() })}\n`;
  if (!(await createExclusive(guard, mine))) {
    const held = parseGuard(await readFile(guard, 'utf8').catch(() => null));
    if (held !== null && held.hostname === os.hostname() && !isPidAlive(held.pid)) await unlink(guard).catch(() => undefined);
    return;
  }
  try {
    const now = await readFile(file, 'utf8').catch(() => null);
    if (now === staleRaw) await unlink(file).catch(() => undefined);
  } finally {
    await unlink(guard).catch(() => undefined);
  }
}

function parseGuard(raw: string | null): { pid: number; hostname: string } | null {
  try {
    const v = JSON.parse(raw ?? '') as { pid?: unknown; hostname?: unknown };
    return typeof v.pid === 'number' && typeof v.hostname === 'string' ? { pid: v.pid, hostname: v.hostname } : null;
  } catch {
    return null;
  }
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
  const body: ServerFile = { ...info, hostname: os.hostname() };
  await replacePrivateFile(path.join(dir, 'server.json'), `${JSON.stringify(body, null, 2)}\n`);
}

/** Flushes `p` (a file, or a folder after a rename in it) to disk. */
export async function fsyncPath(p: string): Promise<void> {
  const fh = await open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Writes `file` (mode 0600, fsynced) under a temporary name and renames it
 * into place: readers see the old content or the new, never half of it.
 */
export async function replacePrivateFile(file: string, content: string): Promise<void> {
  const tmp = tmpName(file);
  await writeFileMode(tmp, content, 0o600);
  try {
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await chmod(file, 0o600);
}

/**
 * The running server of this workspace, or null when there is none. The CLI
 * sends this server its token (and STEWARD_TOKEN, policy files, SQL), so the
 * file is trusted only when it cannot have been planted:
 *
 * - refused (STEWARD_E_FORBIDDEN) unless it is a regular file owned by the
 *   current user with mode 0600: someone else wrote it, or could have;
 * - ignored, with a warning, unless it names this host and a live process of
 *   the current user that runs `steward serve` and holds this workspace's
 *   lock as a server (a stale file whose pid was reused, or a planted pid);
 * - ignored silently when it is missing or its process is gone (a crash).
 */
export async function readServerInfo(home: string, warn: (message: string) => void = warnOnStderr): Promise<ServerInfo | null> {
  const dir = path.resolve(home);
  const file = path.join(dir, 'server.json');
  const s = await lstat(file).catch(() => null);
  if (s === null) return null;
  const unsafe = unsafeFile(s);
  if (unsafe !== null) {
    throw new StewardError('STEWARD_E_FORBIDDEN', `refusing \`${file}\`: ${unsafe}; if no steward server of yours runs on this workspace, delete it`);
  }
  const v = parseServerFile(await readFile(file, 'utf8').catch(() => ''));
  const ignore = (why: string): null => {
    warn(`ignoring \`${file}\`: ${why}`);
    return null;
  };
  if (v === null) return ignore('it is not a server description');
  if (v.hostname !== os.hostname()) return ignore(`it names host \`${v.hostname}\`, not this host \`${os.hostname()}\``);
  if (!isPidAlive(v.pid)) return null;
  const notServer = await notOurServer(dir, v.pid);
  if (notServer !== null) return ignore(notServer);
  return { pid: v.pid, url: v.url, token: v.token, ...(v.idleStopSeconds === undefined ? {} : { idleStopSeconds: v.idleStopSeconds }) };
}

/** Why a file holding a secret (or trusted state) may have been written by someone else, or null. */
export function unsafeFile(s: { isFile(): boolean; uid: number; mode: number }): string | null {
  if (!s.isFile()) return 'it is not a regular file';
  const uid = process.getuid?.();
  if (uid !== undefined && s.uid !== uid) return `it belongs to uid ${s.uid}, not to you (uid ${uid})`;
  if ((s.mode & 0o777) !== 0o600) return `its mode is ${octal(s.mode)}, not 0600`;
  return null;
}

function parseServerFile(raw: string): ServerFile | null {
  try {
    const v = JSON.parse(raw) as Partial<ServerFile> | null;
    if (v === null || typeof v !== 'object' || !Number.isSafeInteger(v.pid) || typeof v.url !== 'string' || typeof v.token !== 'string' || typeof v.hostname !== 'string') return null;
    const idle = Number.isSafeInteger(v.idleStopSeconds) && (v.idleStopSeconds as number) > 0 ? { idleStopSeconds: v.idleStopSeconds as number } : {};
    return { pid: v.pid as number, url: v.url, token: v.token, hostname: v.hostname, ...idle };
  } catch {
    return null;
  }
}

/** Why live `pid` is not this user's steward server of `home`, or null when it is. */
async function notOurServer(home: string, pid: number): Promise<string | null> {
  const lockFile = path.join(home, 'lock');
  const ls = await lstat(lockFile).catch(() => null);
  const lock = ls !== null && unsafeFile(ls) === null ? parseLock(await readFile(lockFile, 'utf8').catch(() => '')) : null;
  if (lock === null || lock.pid !== pid || lock.purpose !== 'server' || lock.hostname !== os.hostname()) {
    return `pid ${pid} does not hold this workspace as a steward server`;
  }
  const proc = await processInfo(pid);
  if (proc === null) return `pid ${pid} cannot be inspected`;
  const uid = process.getuid?.();
  if (uid !== undefined && proc.uid !== uid) return `pid ${pid} belongs to uid ${proc.uid}, not to you (uid ${uid})`;
  if (!isStewardServe(proc.args)) return `pid ${pid} is not a steward server (\`${proc.args.join(' ').slice(0, 80)}\`)`;
  return null;
}

/** A command line of `steward serve`: a steward entry point (bin/steward.js, the `steward` link, dist/cli/main.js) followed by `serve`. */
function isStewardServe(args: readonly string[]): boolean {
  const entry = args.findIndex((a) => /(^|\/)steward(\.js)?$/.test(a) || /(^|\/)cli\/main\.[jt]s$/.test(a));
  return entry >= 0 && args.slice(entry + 1).includes('serve');
}

/** Owner and argv of a process: /proc on Linux, `ps` elsewhere; null when it cannot be read. */
async function processInfo(pid: number): Promise<{ uid: number; args: string[] } | null> {
  if (process.platform === 'linux') {
    const [st, cmdline] = await Promise.all([stat(`/proc/${pid}`).catch(() => null), readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null)]);
    if (st === null || cmdline === null) return null;
    return { uid: st.uid, args: cmdline.split('\0').filter((a) => a !== '') };
  }
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => {
    execFile('ps', ['-o', 'uid=,args=', '-p', String(pid)], (err, stdout) => {
      const m = err === null ? /^\s*(\d+)\s+(.*)$/.exec(stdout.trim()) : null;
      resolve(m === null ? null : { uid: Number(m[1]), args: (m[2] ?? '').split(/\s+/) });
    });
  });
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
