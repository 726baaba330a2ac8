/**
 * How a CLI command reaches Steward. Every command is an API call; only the
 * transport differs:
 *
 * 1. `STEWARD_URL` (or `--url`) set: a remote server, with `STEWARD_TOKEN`.
 * 2. A server is running on this `$STEWARD_HOME` (its `server.json` names a
 *    live pid): through that server, never opening the store underneath it.
 * 3. Otherwise the workspace is opened in-process (embedded PGlite under an
 *    exclusive lock, or the shared PostgreSQL of `STEWARD_DATABASE_URL`) and
 *    the same HTTP app answers the call without a socket.
 */
import type { Config } from '../config.js';
import { StewardError, type ErrorCode, ERROR_CODES } from '../errors.js';
import { readServerInfo } from '../store/workspace.js';
import { LOCAL_ADMIN, type Actor } from '../server/actor.js';
import type { Workspace } from '../workspace/open.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface Client {
  call<T = unknown>(method: Method, path: string, body?: unknown): Promise<T>;
  /** Describes where calls go, for `steward status`. */
  readonly target: string;
  /** The open workspace when embedded (long work such as demo generation runs beside it). */
  readonly workspace?: Workspace;
  close(): Promise<void>;
}

export async function connect(config: Config, options: { actor?: Actor } = {}): Promise<Client> {
  if (config.url !== undefined) return remoteClient(config.url, config.token, `server ${config.url}`);
  if (config.databaseUrl === undefined) {
    const info = await readServerInfo(config.home);
    if (info !== null) return remoteClient(info.url, config.token ?? info.token, `local server pid ${info.pid} at ${info.url}`);
  }
  const { openWorkspace } = await import('../workspace/open.js');
  const ws = await openWorkspace(config, { purpose: 'cli' });
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

function remoteClient(url: string, token: string | undefined, target: string): Client {
  const base = url.replace(/\/+$/, '');
  return {
    target,
    call: async <T>(method: Method, path: string, body?: unknown): Promise<T> => {
      const init = requestInit(method, body);
      const headers = new Headers(init.headers);
      if (token !== undefined) headers.set('authorization', `Bearer ${token}`);
      let res: Response;
      try {
        res = await fetch(`${base}${path}`, { ...init, headers });
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
export async function readResponse<T>(res: Response): Promise<T> {
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
