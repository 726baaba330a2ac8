/**
 * A real `steward serve` process (the built binary), for tests that kill and
 * restart it: started on a free port, known by its URL once it listens, with
 * the bootstrap admin token it printed on its first start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { BIN } from './cli.js';

export interface ServeProcess {
  readonly child: ChildProcess;
  readonly url: string;
  /** When the banner was read (Date.now()), to time what happens after a restart. */
  readonly listeningAt: number;
  /** The bootstrap admin token, printed only by a workspace's first start. */
  readonly bootstrapToken?: string;
}

export interface ServeProcessOptions {
  /** Node flags before the binary (`--expose-gc`, `--import <probe>`). */
  readonly nodeArgs?: readonly string[];
  /** Open an IPC channel to the child (`child.send`), for a probe loaded with `--import`. */
  readonly ipc?: boolean;
}

/** Starts `steward serve --port 0` with exactly `env` (plus PATH and HOME). */
export function startServeProcess(env: NodeJS.ProcessEnv, options: ServeProcessOptions = {}): Promise<ServeProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), BIN, 'serve', '--port', '0'], {
      env: { PATH: process.env['PATH'], HOME: process.env['HOME'], ...env },
      stdio: options.ipc === true ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1] === undefined) return;
      const t = /STEWARD_TOKEN=(\S+)/.exec(out)?.[1];
      resolve({ child, url: m[1], listeningAt: Date.now(), ...(t === undefined ? {} : { bootstrapToken: t }) });
    });
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => reject(new Error(`steward serve exited ${code}: ${err}`)));
  });
}

/** Kills the process with SIGKILL (a crash: no cleanup runs) and waits until it is gone. */
export function kill9(p: ServeProcess | undefined): Promise<void> {
  if (p === undefined) return Promise.resolve();
  p.child.removeAllListeners('close');
  return new Promise((resolve) => {
    p.child.once('close', () => resolve());
    p.child.kill('SIGKILL');
  });
}

/** One JSON call with a bearer token. */
export async function callServe(p: ServeProcess | undefined, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  if (p === undefined) throw new Error('no server is running');
  const res = await fetch(`${p.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? null : JSON.parse(text) };
}

/**
 * One `steward serve` at a time for a crash test: start (keeping the bootstrap
 * token of the first start), call with that token, kill -9, start again.
 */
export interface ServeHarness {
  start(): Promise<ServeProcess>;
  call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>;
  kill9(): Promise<void>;
  readonly token: string;
}

export function serveHarness(env: () => NodeJS.ProcessEnv): ServeHarness {
  let server: ServeProcess | undefined;
  let token = '';
  return {
    async start() {
      server = await startServeProcess(env());
      if (server.bootstrapToken !== undefined) token = server.bootstrapToken;
      return server;
    },
    call: (method, path, body) => callServe(server, token, method, path, body),
    async kill9() {
      const s = server;
      server = undefined;
      await kill9(s);
    },
    get token() {
      return token;
    },
  };
}
