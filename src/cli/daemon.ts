/**
 * The CLI's background server (`STEWARD_DAEMON`). Opening the embedded
 * workspace costs most of a second (PGlite starts PostgreSQL in WebAssembly);
 * with a daemon, the first command starts an ordinary `steward serve` on
 * 127.0.0.1 and later commands reach it through `server.json` in
 * milliseconds, as build tools' daemons do.
 *
 * It is a plain server, so every check that guards `server.json` applies:
 * the file is 0600, names this host and a live `steward serve` of yours that
 * holds the workspace lock, and its token is a per-process secret. The daemon
 * listens on loopback only, creates no bootstrap admin token, logs to
 * `$STEWARD_HOME/daemon.log` (0600), and stops after its idle time.
 */
import { spawn } from 'node:child_process';
import { mkdir, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { StewardError } from '../errors.js';
import { readServerInfo, type ServerInfo } from '../store/workspace.js';

const START_TIMEOUT_MS = 60_000;
const POLL_MS = 40;

/** Starts a background server on `home` (or finds the one another command just started) and returns it. */
export async function startDaemon(home: string, idleSeconds: number): Promise<ServerInfo> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  const log = path.join(home, 'daemon.log');
  const out = await open(log, 'a', 0o600);
  await out.chmod(0o600);
  const entry = process.argv[1];
  if (entry === undefined) throw new StewardError('STEWARD_E_INTERNAL', 'cannot tell which steward program to start');
  let exited: number | null | undefined;
  try {
    const child = spawn(process.execPath, [entry, '--home', home, 'serve', '--host', '127.0.0.1', '--port', '0', '--idle-stop', `${idleSeconds}s`, '--no-bootstrap'], {
      detached: true,
      stdio: ['ignore', out.fd, out.fd],
      env: process.env,
    });
    child.once('exit', (code) => {
      exited = code;
    });
    child.unref();
  } finally {
    await out.close();
  }
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    // Another command may have started the daemon at the same moment: whichever server
    // holds the workspace is the one to use (the other exits on the workspace lock).
    const info = await readServerInfo(home);
    if (info !== null) return info;
    if ((exited !== undefined && exited !== 0 && !(await lockedByAnother(log))) || Date.now() > deadline) {
      throw new StewardError('STEWARD_E_CONFIG', `the background server did not start (STEWARD_DAEMON); its log \`${log}\` ends:\n${await tail(log)}`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** Whether the daemon we started gave way to one already holding the workspace (then keep waiting for its server.json). */
async function lockedByAnother(log: string): Promise<boolean> {
  return /is in use by a steward server/.test(await tail(log));
}

async function tail(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-8).join('\n');
}
