import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  acquireWorkspaceLock,
  describeTakeover,
  readServerInfo,
  removeServerInfo,
  secureWorkspaceHome,
  stewardHome,
  tightenModes,
  writeServerInfo,
} from '../../src/store/workspace.js';
import { StewardError } from '../../src/errors.js';

const HOLDER = fileURLToPath(new URL('./fixtures/lock-holder.ts', import.meta.url));
const dirs: string[] = [];
const children: ChildProcess[] = [];
after(async () => {
  // A failed assertion leaves its holders waiting for a line: they would keep this file's process, and the run, open.
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempHome(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'steward-ws-'));
  dirs.push(d);
  return path.join(d, 'home');
}

interface Holder {
  readonly child: ChildProcess;
  next(): Promise<Record<string, unknown>>;
  send(line: string): void;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startHolder(home: string, purpose: 'server' | 'cli' = 'cli'): Holder {
  const child = spawn(process.execPath, ['--import', 'tsx', HOLDER, home, purpose], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const lines: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (l) => {
    const w = waiters.shift();
    if (w) w(l);
    else lines.push(l);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    exited,
    next: () =>
      new Promise((resolve) => {
        const l = lines.shift();
        if (l !== undefined) resolve(JSON.parse(l) as Record<string, unknown>);
        else waiters.push((x) => resolve(JSON.parse(x) as Record<string, unknown>));
      }),
    send: (line) => void child.stdin!.write(`${line}\n`),
  };
}

/** A pid that is certainly not running: a child that has exited. */
async function deadPid(): Promise<number> {
  const c = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => c.on('exit', r));
  assert.ok(c.pid !== undefined);
  return c.pid;
}

test('racing processes: exactly one acquires the lock', { timeout: 60_000 }, async () => {
  const home = await tempHome();
  const holders = [startHolder(home), startHolder(home), startHolder(home), startHolder(home)];
  // Every child is up before any tries, so the attempts really overlap.
  for (const h of holders) assert.deepEqual(await h.next(), { ready: true });
  for (const h of holders) h.send('go');
  const results = await Promise.all(holders.map((h) => h.next()));
  const winners = results.filter((r) => r.won === true);
  assert.equal(winners.length, 1, JSON.stringify(results));
  for (const r of results.filter((x) => x.won !== true)) {
    assert.equal(r.error, 'STEWARD_E_WORKSPACE_LOCKED');
    assert.match(String(r.message), /in use by another steward command \(pid \d+/);
  }
  const winner = holders[results.findIndex((r) => r.won === true)]!;
  const lock = JSON.parse(await readFile(path.join(home, 'lock'), 'utf8')) as Record<string, unknown>;
  assert.equal(lock.pid, winner.child.pid);
  assert.equal(lock.purpose, 'cli');
  assert.equal(lock.hostname, os.hostname());

  // Exiting without release(): the exit hook removes the lock.
  for (const h of holders) h.send('exit');
  await Promise.all(holders.map((h) => h.exited));
  assert.equal(existsSync(path.join(home, 'lock')), false);
});

test('a stale lock from a dead pid is taken over, and the takeover is reported', async () => {
  const home = await tempHome();
  const pid = await deadPid();
  await mkdir(home, { recursive: true });
  await writeFile(path.join(home, 'lock'), JSON.stringify({ pid, purpose: 'server', startedAt: '2020-01-01T00:00:00.000Z', hostname: os.hostname() }));
  const lock = await acquireWorkspaceLock(home, { purpose: 'server' });
  try {
    assert.deepEqual(lock.tookOverFrom, { pid, purpose: 'server', startedAt: '2020-01-01T00:00:00.000Z', hostname: os.hostname() });
    assert.match(describeTakeover(lock) ?? '', new RegExp(`took over the lock of pid ${pid} \\(server`));
    assert.equal((JSON.parse(await readFile(lock.path, 'utf8')) as { pid: number }).pid, process.pid);
  } finally {
    await lock.release();
  }
  assert.equal(existsSync(path.join(home, 'lock')), false);
});

test('racing processes over a stale lock: exactly one takes it over', { timeout: 60_000 }, async () => {
  const home = await tempHome();
  await mkdir(home, { recursive: true });
  await writeFile(path.join(home, 'lock'), JSON.stringify({ pid: await deadPid(), purpose: 'cli', startedAt: '2020-01-01T00:00:00.000Z', hostname: os.hostname() }));
  const holders = [startHolder(home), startHolder(home), startHolder(home)];
  for (const h of holders) await h.next();
  for (const h of holders) h.send('go');
  const results = await Promise.all(holders.map((h) => h.next()));
  assert.equal(results.filter((r) => r.won === true).length, 1, JSON.stringify(results));
  for (const h of holders) h.send('exit');
  await Promise.all(holders.map((h) => h.exited));
});

test('the lock is refused in the same process and names the holder; released locks can be retaken', async () => {
  const home = await tempHome();
  const lock = await acquireWorkspaceLock(home, { purpose: 'server' });
  await assert.rejects(
    acquireWorkspaceLock(home, { purpose: 'cli' }),
    (e: unknown) =>
      e instanceof StewardError &&
      e.code === 'STEWARD_E_WORKSPACE_LOCKED' &&
      e.message.includes(`pid ${process.pid}`) &&
      e.message.includes('steward server') &&
      e.message.includes('server.json'),
  );
  await lock.release();
  await lock.release();
  const again = await acquireWorkspaceLock(home, { purpose: 'cli' });
  await again.release();
});

test('a lock held on another host is never taken over', async () => {
  const home = await tempHome();
  await mkdir(home, { recursive: true });
  await writeFile(path.join(home, 'lock'), JSON.stringify({ pid: await deadPid(), purpose: 'server', startedAt: '2020-01-01T00:00:00.000Z', hostname: 'elsewhere' }));
  await assert.rejects(acquireWorkspaceLock(home, { purpose: 'cli' }), (e: unknown) => e instanceof StewardError && e.code === 'STEWARD_E_WORKSPACE_LOCKED' && e.message.includes('`elsewhere`'));
});

test('SIGTERM releases the lock when nothing else handles the signal; SIGKILL leaves a stale one', { timeout: 60_000 }, async () => {
  const home = await tempHome();
  const a = startHolder(home);
  await a.next();
  a.send('go');
  assert.equal((await a.next()).won, true);
  a.child.kill('SIGTERM');
  assert.deepEqual(await a.exited, { code: null, signal: 'SIGTERM' }, 'the default action still happens');
  assert.equal(existsSync(path.join(home, 'lock')), false);

  const b = startHolder(home);
  await b.next();
  b.send('go');
  assert.equal((await b.next()).won, true);
  b.child.kill('SIGKILL');
  await b.exited;
  assert.equal(existsSync(path.join(home, 'lock')), true);
  const lock = await acquireWorkspaceLock(home, { purpose: 'cli' });
  assert.equal(lock.tookOverFrom?.pid, b.child.pid);
  await lock.release();
});

test('server.json is written 0600 in a private home, and removed only by its own pid', async () => {
  const home = await tempHome();
  await writeServerInfo(home, { pid: process.pid, url: 'http://127.0.0.1:7070', token: 'stw_secret' });
  const file = path.join(home, 'server.json');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal((await stat(home)).mode & 0o077, 0, 'the home directory is private too');

  // Rewriting keeps the mode (the file is replaced, not reopened).
  await writeServerInfo(home, { pid: process.pid, url: 'http://127.0.0.1:7071', token: 't2' });
  assert.equal((await stat(file)).mode & 0o777, 0o600);

  await removeServerInfo(home, process.pid + 1);
  assert.ok(existsSync(file), 'another pid does not remove our file');
  await removeServerInfo(home);
  assert.equal(existsSync(file), false);
});

// Threat: a server.json that anyone could have written (or that points at a process that is not our server) receives the CLI's token and policy files.
test('server.json is trusted only when private, ours, of this host, and naming our steward server', async () => {
  const home = await tempHome();
  const file = path.join(home, 'server.json');
  const warnings: string[] = [];
  const read = (): Promise<unknown> => readServerInfo(home, (m) => warnings.push(m));

  assert.equal(await read(), null, 'no file, no server');

  await writeServerInfo(home, { pid: process.pid, url: 'http://127.0.0.1:7070', token: 't' });
  assert.equal(await read(), null, 'a live process that is not a steward server holding the lock');
  assert.match(warnings.pop() ?? '', /ignoring `.*server\.json`: pid \d+ does not hold this workspace as a steward server/);

  await chmod(file, 0o644);
  await assert.rejects(read(), (e: unknown) => e instanceof StewardError && e.code === 'STEWARD_E_FORBIDDEN' && /its mode is 0644, not 0600/.test(e.message));

  await rm(file);
  await writeFile(path.join(home, 'elsewhere.json'), '{}', { mode: 0o600 });
  await symlink(path.join(home, 'elsewhere.json'), file);
  await assert.rejects(read(), (e: unknown) => e instanceof StewardError && /not a regular file/.test(e.message));
  await rm(file);

  await writeFile(file, JSON.stringify({ pid: process.pid, url: 'http://127.0.0.1:7070', token: 't' }), { mode: 0o600 });
  assert.equal(await read(), null, 'no host name: cannot be checked');
  assert.match(warnings.pop() ?? '', /not a server description/);

  await writeServerInfo(home, { pid: await deadPid(), url: 'http://127.0.0.1:7070', token: 't' });
  warnings.length = 0;
  assert.equal(await read(), null, 'a dead server is ignored');
  assert.deepEqual(warnings, [], 'silently: a crashed server leaves its file behind');
  await writeFile(file, '{not json');
  assert.equal(await read(), null);
});

// Threat: a workspace created world-readable keeps the store, tokens and the demo's PII readable by other users.
test('secureWorkspaceHome narrows a too-open home and everything under it, and warns once', async () => {
  const home = await tempHome();
  await mkdir(path.join(home, 'pgdata', 'base'), { recursive: true, mode: 0o777 });
  await chmod(home, 0o755);
  await chmod(path.join(home, 'pgdata'), 0o777);
  await writeFile(path.join(home, 'pgdata', 'base', '1'), 'x', { mode: 0o666 });
  await chmod(path.join(home, 'pgdata', 'base', '1'), 0o666);
  const warnings: string[] = [];
  const previous = process.umask();
  try {
    await secureWorkspaceHome(home, (m) => warnings.push(m));
    assert.equal(process.umask(), 0o077, 'files created from now on are private');
  } finally {
    process.umask(previous);
  }
  assert.equal((await stat(home)).mode & 0o777, 0o700);
  assert.equal((await stat(path.join(home, 'pgdata'))).mode & 0o777, 0o700);
  assert.equal((await stat(path.join(home, 'pgdata', 'base', '1'))).mode & 0o777, 0o600);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0] ?? '', /was open to other users \(mode 0755\); it is now 0700/);
  assert.equal(await tightenModes(home), 0, 'nothing left to narrow');
});

test('STEWARD_HOME defaults to ./.steward', () => {
  assert.equal(stewardHome({}), path.resolve('.steward'));
  assert.equal(stewardHome({ STEWARD_HOME: '/srv/steward' }), '/srv/steward');
});
