/**
 * A real `steward serve` (the built binary, `npm run build` first) over a
 * fresh workspace with the demo loaded, for the load bench and the soak:
 * its URL, the bootstrap admin token, and a user token for the demo's
 * `alice` (row filter and masks apply to her queries).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { callServe, startServeProcess, type ServeProcess, type ServeProcessOptions } from '../test/support/serve-process.js';

export interface BenchServer {
  readonly process: ServeProcess;
  readonly url: string;
  readonly home: string;
  readonly adminToken: string;
  readonly aliceToken: string;
  call(method: string, p: string, body?: unknown, token?: string): Promise<{ status: number; json: any }>;
  /** SIGTERM (a graceful stop: outbox flushed), then the home is removed. */
  close(): Promise<void>;
}

export async function startBenchServer(options: ServeProcessOptions & { databaseUrl?: string } = {}): Promise<BenchServer> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-bench-'));
  const p = await startServeProcess({ STEWARD_HOME: home, ...(options.databaseUrl === undefined ? {} : { STEWARD_DATABASE_URL: options.databaseUrl }) }, options);
  const adminToken = p.bootstrapToken;
  if (adminToken === undefined) throw new Error('steward serve printed no bootstrap token');
  const call = (method: string, route: string, body?: unknown, token = adminToken): Promise<{ status: number; json: any }> => callServe(p, token, method, route, body);
  const demo = await call('POST', '/v1/demo', {});
  if (demo.status !== 200) throw new Error(`demo: ${demo.status} ${JSON.stringify(demo.json)}`);
  const alice = await call('POST', '/v1/tokens', { name: 'bench-alice', principal: 'user:alice', role: 'user' });
  if (alice.status !== 201) throw new Error(`token: ${alice.status} ${JSON.stringify(alice.json)}`);
  return {
    process: p,
    url: p.url,
    home,
    adminToken,
    aliceToken: alice.json.token as string,
    call,
    close: async () => {
      p.child.removeAllListeners('close');
      if (p.child.exitCode === null) {
        await new Promise<void>((resolve) => {
          p.child.once('close', () => resolve());
          p.child.kill('SIGTERM');
        });
      }
      await fs.rm(home, { recursive: true, force: true });
    },
  };
}
