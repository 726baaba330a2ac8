/**
 * How a CLI command reaches Steward. Every command is an API call; only the
 * transport differs:
 *
 * 1. `STEWARD_URL` (or `--url`) set: a remote server, with `STEWARD_TOKEN`.
 * 2. A server is running on this `$STEWARD_HOME` (its `server.json` names a
 *    live pid): through that server, never opening the store underneath it.
 * 3. `authorize` only: the world cache a clean close left, when there is one
 *    (cached-decisions.ts), without opening the store.
 * 4. Otherwise the workspace is opened in-process (embedded PGlite under an
 *    exclusive lock, or the shared PostgreSQL of `STEWARD_DATABASE_URL`) and
 *    the same HTTP app answers the call without a socket.
 */
import type { ClientConfig } from '../client-config.js';
import { StewardError, type ErrorCode, ERROR_CODES } from '../errors.js';
import { readServerInfo, type ServerInfo } from '../store/workspace.js';
import { formatDuration } from '../time.js';
import { LOCAL_ADMIN, type Actor } from '../server/actor.js';
import type { Workspace } from '../workspace/open.js';
import { httpExchange, type HttpReply } from './http.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface Client {
  call<T = unknown>(method: Method, path: string, body?: unknown): Promise<T>;
  /** Describes where calls go, for `steward status`. */
  readonly target: string;
  /** The open workspace when embedded (long work such as demo generation runs beside it). */
  readonly workspace?: Workspace;
  close(): Promise<void>;
}

export interface ConnectOptions {
  readonly actor?: Actor;
  /**
   * The command only asks `POST /v1/authorize` as the local admin: on an
   * embedded workspace with no server, it may be answered from the world
   * cache without opening the store (cached-decisions.ts).
   */
  readonly cachedAuthorize?: boolean;
}

export async function connect(config: ClientConfig, options: ConnectOptions = {}): Promise<Client> {
  if (config.url !== undefined) {
    // A token `steward login` saved for this very server, when none is given.
    const token = config.token ?? (await (await import('./saved-tokens.js')).savedToken(config.url, (m) => process.stderr.write(`warning: ${m}\n`)));
    return remoteClient(config.url, token, `server ${config.url}`);
  }
  if (config.databaseUrl === undefined) {
    let info = await readServerInfo(config.home);
    if (info === null && config.daemonIdleSeconds !== undefined) {
      const { startDaemon } = await import('./daemon.js');
      info = await startDaemon(config.home, config.daemonIdleSeconds);
    }
    if (info !== null) return remoteClient(info.url, config.token ?? info.token, serverTarget(info));
    if (options.cachedAuthorize === true && options.actor === undefined) {
      const cached = await (await import('./cached-decisions.js')).cachedDecisionClient(config.home, () => embeddedClient(config, options));
      if (cached !== null) return cached;
    }
  }
  return embeddedClient(config, options);
}

/** The workspace opened in this process; calls go to the HTTP app without a socket. */
async function embeddedClient(config: ClientConfig, options: ConnectOptions): Promise<Client> {
  // Only a command that opens the workspace itself reads (and validates) the whole configuration.
  const [{ openWorkspace }, { loadConfig }] = await Promise.all([import('../workspace/open.js'), import('../config.js')]);
  const ws = await openWorkspace(loadConfig(process.env, config), { purpose: 'cli' });
  const actor = options.actor ?? LOCAL_ADMIN;
  return {
    target: config.databaseUrl === undefined ? `embedded workspace ${config.home}` : 'PostgreSQL store (STEWARD_DATABASE_URL)',
    workspace: ws,
    call: async <T>(method: Method, path: string, body?: unknown): Promise<T> => {
      const res = await ws.app.request(path, requestInit(method, body), { stewardLocalActor: actor });
      return readResponse<T>(res);
    },
    close: () => ws.close(),
  };
}

function serverTarget(info: ServerInfo): string {
  const idle = info.idleStopSeconds === undefined ? '' : ` (background server: stops after ${formatDuration(info.idleStopSeconds)} without a request)`;
  return `local server pid ${info.pid} at ${info.url}${idle}`;
}

function remoteClient(url: string, token: string | undefined, target: string): Client {
  const base = url.replace(/\/+$/, '');
  return {
    target,
    call: async <T>(method: Method, path: string, body?: unknown): Promise<T> => {
      const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
      if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
      let res: HttpReply;
      try {
        res = await httpExchange(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      } catch (e) {
        throw new StewardError('STEWARD_E_SOURCE', `cannot reach the Steward server at \`${base}\`: ${(e as Error).message}`, { cause: e });
      }
      return readResponse<T>(res);
    },
    close: async () => {},
  };
}

function requestInit(method: Method, body: unknown): RequestInit {
  return body === undefined
    ? { method }
    : { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

/** The body of a successful response, or the server's error as a StewardError with its code. */
export async function readResponse<T>(res: HttpReply | Response): Promise<T> {
  const text = await res.text();
  let json: unknown;
  try {
    json = text === '' ? {} : JSON.parse(text);
  } catch {
    throw new StewardError('STEWARD_E_INTERNAL', `unexpected response (${res.status}) from the server`);
  }
  if (res.ok) return json as T;
  const err = (json as { error?: { code?: string; message?: string; details?: { path?: string; message: string }[] } }).error;
  const code = err?.code !== undefined && err.code in ERROR_CODES ? (err.code as ErrorCode) : 'STEWARD_E_INTERNAL';
  throw new StewardError(code, err?.message ?? `request failed with status ${res.status}`, { details: err?.details ?? [] });
}
