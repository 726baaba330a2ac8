/**
 * Throwaway PostgreSQL for tests.
 *
 * `startPostgres()` runs initdb + pg_ctl in a temporary directory, on a free
 * port bound to 127.0.0.1, with durability turned off (fsync, synchronous
 * commit, full page writes) because the data dies with the test. PostgreSQL
 * refuses to run as root, so as root the binaries run as the `postgres` user
 * through runuser.
 *
 * When `STEWARD_TEST_DATABASE_URL` is set (scripts/with-postgres.sh sets it for
 * the whole suite), that server is used instead and nothing is started.
 *
 * `createTestDatabase()` creates a fresh, uniquely named database on the
 * process's server (started on first use, stopped at exit).
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { chown, mkdtemp, readFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

const run = promisify(execFile);

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`: a superuser on the maintenance database. */
  readonly url: string;
  stop(): Promise<void>;
}

export interface TestDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

/** Finds the newest installed PostgreSQL's bin directory (Debian layout). */
export function findPostgresBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? null : path.join(root, versions[0], 'bin');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

/** argv for running a PostgreSQL binary: as `postgres` through runuser when we are root. */
function asPostgres(bin: string, args: readonly string[]): [string, string[]] {
  return isRoot() ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, [...args]];
}

async function ownByPostgres(dir: string): Promise<void> {
  if (!isRoot()) return;
  const { stdout: uid } = await run('id', ['-u', 'postgres']);
  const { stdout: gid } = await run('id', ['-g', 'postgres']);
  await chown(dir, Number(uid.trim()), Number(gid.trim()));
}

/**
 * A cluster of the test's own, never the shared one, for fault tests that
 * take the server away under a running Steward: `halt()` stops it (fast
 * shutdown: sessions are terminated), `resume()` starts it again on the same
 * port, `restart()` does both.
 */
export interface OwnPostgres extends PostgresServer {
  halt(): Promise<void>;
  resume(): Promise<void>;
  restart(): Promise<void>;
}

/** Starts a throwaway cluster, or wraps `STEWARD_TEST_DATABASE_URL` when set. */
export async function startPostgres(): Promise<PostgresServer> {
  const external = process.env.STEWARD_TEST_DATABASE_URL;
  if (external !== undefined && external !== '') return { url: external, stop: async () => undefined };
  return startOwnPostgres();
}

/** Starts a throwaway cluster even when `STEWARD_TEST_DATABASE_URL` is set (see OwnPostgres). */
export async function startOwnPostgres(): Promise<OwnPostgres> {
  const bin = findPostgresBin();
  if (bin === null) {
    throw new Error('no PostgreSQL under /usr/lib/postgresql/*/bin: run scripts/ensure-postgres.sh or set STEWARD_TEST_DATABASE_URL');
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'steward-pg-'));
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'postgres.log');
  await ownByPostgres(dir);

  const stopSync = (): void => {
    const [cmd, args] = asPostgres(path.join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate', '-w']);
    spawnSync(cmd, args, { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  };
  // Registered before anything starts, so a failure half-way still cleans up.
  let stopped = false;
  const onExit = (): void => {
    if (!stopped) stopSync();
  };
  // A test runner that times a file out sends SIGTERM, which skips 'exit' hooks:
  // stop the cluster, then let the signal do what it would have done.
  const onSignal = (signal: NodeJS.Signals): void => {
    detach();
    onExit();
    stopped = true;
    process.kill(process.pid, signal);
  };
  const onSigint = (): void => onSignal('SIGINT');
  const onSigterm = (): void => onSignal('SIGTERM');
  const detach = (): void => {
    process.off('exit', onExit);
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
  };
  process.once('exit', onExit);
  process.once('SIGINT', onSigint);
  process.once('SIGTERM', onSigterm);

  try {
    const [initCmd, initArgs] = asPostgres(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-N', '-E', 'UTF8', '--locale=C']);
    await run(initCmd, initArgs);
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const options = [
        `-p ${port}`,
        `-k ${dir}`,
        '-c listen_addresses=127.0.0.1',
        '-c fsync=off',
        '-c synchronous_commit=off',
        '-c full_page_writes=off',
        '-c max_connections=200',
      ].join(' ');
      const [cmd, args] = asPostgres(path.join(bin, 'pg_ctl'), ['start', '-D', data, '-l', log, '-w', '-t', '60', '-o', options]);
      try {
        await run(cmd, args);
        const halt = async (): Promise<void> => {
          const [c, a] = asPostgres(path.join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'fast', '-w', '-t', '60']);
          await run(c, a);
        };
        const resume = async (): Promise<void> => {
          await run(cmd, args);
        };
        return {
          url: `postgres://postgres@127.0.0.1:${port}/postgres`,
          stop: async () => {
            if (stopped) return;
            stopped = true;
            detach();
            stopSync();
          },
          halt,
          resume,
          restart: async () => {
            await halt();
            await resume();
          },
        };
      } catch (e) {
        // Most likely another process took the port between freePort() and start.
        lastError = e;
      }
    }
    const tail = await readFile(log, 'utf8').catch(() => '');
    throw new Error(`cannot start PostgreSQL: ${String(lastError)}\n${tail.slice(-2000)}`);
  } catch (e) {
    stopped = true;
    detach();
    stopSync();
    throw e;
  }
}

let shared: Promise<PostgresServer> | undefined;

/** The process's server: started on first use, stopped when the process exits. */
export function sharedPostgres(): Promise<PostgresServer> {
  shared ??= startPostgres();
  return shared;
}

let counter = 0;

/** A fresh, empty database on the shared server; `drop()` removes it (closing its connections). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const server = await sharedPostgres();
  const name = `steward_test_${process.pid}_${++counter}_${randomBytes(3).toString('hex')}`;
  await withClient(server.url, (c) => c.query(`CREATE DATABASE "${name}"`));
  const url = new URL(server.url);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => withClient(server.url, (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** `node --import tsx test/support/postgres.ts` starts a server and prints its URL, for timing and manual use. */
if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${path.resolve(process.argv[1])}`).href) {
  const t0 = Date.now();
  const server = await sharedPostgres();
  console.log(`${server.url} (started in ${Date.now() - t0} ms)`);
  const t1 = Date.now();
  const db = await createTestDatabase();
  console.log(`created ${db.url} in ${Date.now() - t1} ms`);
  await db.drop();
  await server.stop();
}
