/**
 * A real Steward HTTP server on an ephemeral port over a fresh embedded
 * workspace (its store a copy of a migrated empty one: migrated-store.ts), or
 * over a PostgreSQL database when `databaseUrl` is given.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { loadConfig, type Config } from '../../src/config.js';
import { openWorkspace, type Workspace } from '../../src/workspace/open.js';
import { seedMigratedStore } from './migrated-store.js';

export interface TestServer {
  readonly url: string;
  readonly adminToken: string;
  readonly home: string;
  readonly ws: Workspace;
  /** fetch against the server with a token (admin by default); JSON in and out. */
  call(method: string, p: string, body?: unknown, token?: string | null): Promise<{ status: number; json: any }>;
  close(): Promise<void>;
}

export interface TestServerOptions {
  readonly databaseUrl?: string;
  /** More configuration, given the server's URL (e.g. `publicUrl` and OIDC settings). */
  readonly config?: (url: string) => Partial<Config> | Promise<Partial<Config>>;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-test-'));
  // A copy of a migrated store instead of creating one: seconds of CPU saved per server, and no test here is about creation.
  if (options.databaseUrl === undefined) await seedMigratedStore(home);
  // Listen first, so configuration that needs the server's own URL can have it; requests before the app exists cannot happen.
  let fetchApp: ((req: Request, env: unknown) => Response | Promise<Response>) | undefined;
  const server = serve({ fetch: (req, env) => (fetchApp as NonNullable<typeof fetchApp>)(req, env), hostname: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // Tests register fixtures from their own temporary folders; the workspace's private folder stays refused.
  const config = loadConfig({}, { home, lakeRoots: [os.tmpdir()], ...(options.databaseUrl === undefined ? {} : { databaseUrl: options.databaseUrl }), ...(await options.config?.(url)) });
  const ws = await openWorkspace(config, { purpose: 'server' });
  const admin = await ws.services.tokens.createToken({ name: 'test-admin', principal: 'user:admin', role: 'admin' });
  fetchApp = (req, env) => ws.app.fetch(req, env as never);
  return {
    url,
    adminToken: admin.token,
    home,
    ws,
    call: async (method, p, body, token) => {
      const headers: Record<string, string> = {};
      const t = token === undefined ? admin.token : token;
      if (t !== null) headers['authorization'] = `Bearer ${t}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${url}${p}`, { method, headers, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
      const text = await res.text();
      let json: any;
      try {
        json = text === '' ? null : JSON.parse(text);
      } catch {
        json = text;
      }
      return { status: res.status, json };
    },
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await ws.close();
      await fs.rm(home, { recursive: true, force: true });
    },
  };
}
