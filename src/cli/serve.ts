/**
 * `steward serve`: the whole server stack (DuckDB, Arrow, PGlite or pg, Hono),
 * loaded only by the one command that needs it so other commands start fast.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { Config } from '../config.js';
import { StewardError } from '../errors.js';
import { formatDuration, parseDuration } from '../time.js';
import { openWorkspace, type Workspace } from '../workspace/open.js';
import { removeServerInfo, writeServerInfo } from '../store/workspace.js';

export interface ServeOptions {
  readonly host?: string;
  readonly port?: string;
  /** Stop after this long without a request (`10m`); the CLI's background server sets it. */
  readonly idleStop?: string;
  /** false: never create and print the bootstrap admin token (a background server has no one to show it to). */
  readonly bootstrap?: boolean;
}

type Fetch = Workspace['app']['fetch'];

/** Listens on `host:port`, or rejects (EADDRINUSE, EACCES…) with nothing served. */
function listen(fetch: Fetch, host: string, port: number): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname: host, port }, () => {
      server.off('error', onError);
      resolve(server);
    });
    const onError = (e: NodeJS.ErrnoException): void => {
      server.close();
      const what = e.code === 'EADDRINUSE' ? 'is in use' : `cannot be used (${e.code ?? e.message})`;
      reject(new StewardError('STEWARD_E_CONFIG', `port ${port} on \`${host}\` ${what}; choose another with --port or STEWARD_PORT`, { cause: e }));
    };
    server.once('error', onError);
  });
}

/** Once listening: the bootstrap admin token (first start only), then server.json, then the banner. */
async function announce(ws: Workspace, home: string, url: string, localToken: string, opts: { bootstrap: boolean; idleStopSeconds?: number }): Promise<void> {
  if (opts.bootstrap && !(await ws.services.tokens.hasAnyAdminToken())) {
    const created = await ws.services.tokens.createToken({ name: 'bootstrap-admin', principal: 'user:admin', role: 'admin' });
    await ws.services.state.log([{ actor: 'system', action: 'token.bootstrap', resource: 'user:admin', result: 'ok', reason: `token ${created.id}` }]);
    process.stdout.write(`Bootstrapped an admin. Its token is shown only now; store it safely:\n\n  STEWARD_TOKEN=${created.token}\n\n`);
  }
  await writeServerInfo(home, { pid: process.pid, url, token: localToken, ...(opts.idleStopSeconds === undefined ? {} : { idleStopSeconds: opts.idleStopSeconds }) });
  const idle = opts.idleStopSeconds === undefined ? '' : `; stops after ${formatDuration(opts.idleStopSeconds)} without a request`;
  process.stdout.write(`Steward listening on ${url} (console: ${url}/, API docs: ${url}/docs${idle})\n`);
}

/**
 * Calls `onIdle` once no request has started for `idleMs` and none is in
 * flight. Returns the fetch handler that keeps it awake.
 */
function idleWatch(fetch: Fetch, idleMs: number, onIdle: () => void): { fetch: Fetch; stop(): void } {
  let last = Date.now();
  let inFlight = 0;
  const timer = setInterval(() => {
    if (inFlight === 0 && Date.now() - last >= idleMs) onIdle();
  }, Math.min(1000, Math.max(50, idleMs / 4)));
  timer.unref();
  const watched: Fetch = async (req, env, ctx) => {
    last = Date.now();
    inFlight++;
    try {
      return await fetch(req, env, ctx);
    } finally {
      inFlight--;
      last = Date.now();
    }
  };
  return { fetch: watched, stop: () => clearInterval(timer) };
}

function idleStopSeconds(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const seconds = parseDuration(text);
  if (seconds === null) throw new StewardError('STEWARD_E_VALIDATION', `--idle-stop: \`${text.slice(0, 40)}\` is not a duration such as \`90s\`, \`10m\` or \`1h\``);
  return seconds;
}

/** Serves until SIGINT/SIGTERM, then removes server.json and closes the workspace. */
export async function runServer(config: Config, opts: ServeOptions): Promise<void> {
  const idleSeconds = idleStopSeconds(opts.idleStop);
  const localToken = `stwlocal_${randomBytes(32).toString('base64url')}`;
  const ws = await openWorkspace(config, { purpose: 'server', app: { localToken } });
  const host = opts.host ?? config.host;
  let server: ServerType;
  let idle: ReturnType<typeof idleWatch> | undefined;
  let onIdle = (): void => {};
  if (idleSeconds !== undefined) idle = idleWatch(ws.app.fetch, idleSeconds * 1000, () => onIdle());
  try {
    // Bind first: a busy port must fail before a bootstrap token is created, printed or stored.
    server = await listen(idle?.fetch ?? ws.app.fetch, host, Number(opts.port ?? config.port));
  } catch (e) {
    await ws.close();
    throw e;
  }
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${(server.address() as AddressInfo).port}`;
  await new Promise<void>((resolve, reject) => {
    const stop = (): void => {
      idle?.stop();
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      server.close();
      void removeServerInfo(config.home)
        .catch(() => {})
        .then(() => ws.close())
        .then(() => resolve(), reject);
    };
    const fail = (e: unknown): void => {
      reject(e as Error);
      stop();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    server.on('error', fail);
    onIdle = () => {
      process.stdout.write(`Steward stopping: no request for ${formatDuration(idleSeconds ?? 0)}\n`);
      stop();
    };
    announce(ws, config.home, url, localToken, { bootstrap: opts.bootstrap !== false, ...(idleSeconds === undefined ? {} : { idleStopSeconds: idleSeconds }) }).catch(fail);
  });
}
