/**
 * `steward serve`, `steward token …`, `steward status`.
 */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { StewardError } from '../errors.js';
import { openWorkspace, type Workspace } from '../workspace/open.js';
import { removeServerInfo, writeServerInfo } from '../store/workspace.js';
import { emit, table } from './output.js';
import { enc, standalone, withClient } from './run.js';

/** Listens on `host:port`, or rejects (EADDRINUSE, EACCES…) with nothing served. */
function listen(ws: Workspace, host: string, port: number): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: ws.app.fetch, hostname: host, port }, () => {
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
async function announce(ws: Workspace, home: string, url: string, localToken: string): Promise<void> {
  if (!(await ws.services.tokens.hasAnyAdminToken())) {
    const created = await ws.services.tokens.createToken({ name: 'bootstrap-admin', principal: 'user:admin', role: 'admin' });
    await ws.services.state.log([{ actor: 'system', action: 'token.bootstrap', resource: 'user:admin', result: 'ok', reason: `token ${created.id}` }]);
    process.stdout.write(`Bootstrapped an admin. Its token is shown only now; store it safely:\n\n  STEWARD_TOKEN=${created.token}\n\n`);
  }
  await writeServerInfo(home, { pid: process.pid, url, token: localToken });
  process.stdout.write(`Steward listening on ${url} (API docs: ${url}/docs)\n`);
}

interface TokenList {
  tokens: { id: string; name: string; principal: string; role: string; createdAt: string; lastUsedAt?: string; revokedAt?: string }[];
}

export function registerServerCommands(program: Command): void {
  program
    .command('serve')
    .description('start the HTTP API (and the docs page at /docs) on this workspace')
    .option('--host <host>', 'interface to listen on (STEWARD_HOST)')
    .option('--port <port>', 'port to listen on (STEWARD_PORT)')
    .action(async (opts: { host?: string; port?: string }, cmd: Command) =>
      standalone(cmd, async ({ config }) => {
        const localToken = `stwlocal_${randomBytes(32).toString('base64url')}`;
        const ws = await openWorkspace(config, { purpose: 'server', app: { localToken } });
        const host = opts.host ?? config.host;
        let server: ServerType;
        try {
          // Bind first: a busy port must fail before a bootstrap token is created, printed or stored.
          server = await listen(ws, host, Number(opts.port ?? config.port));
        } catch (e) {
          await ws.close();
          throw e;
        }
        const url = `http://${host.includes(':') ? `[${host}]` : host}:${(server.address() as AddressInfo).port}`;
        await new Promise<void>((resolve, reject) => {
          const stop = (): void => {
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
          announce(ws, config.home, url, localToken).catch(fail);
        });
      }),
    );

  program
    .command('status')
    .description('show where commands go and who you are')
    .action(async (_opts: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const me = await client.call<{ principal: string; role: string }>('GET', '/v1/me');
        const r = { target: client.target, ...me };
        emit(out, r, () => `target: ${r.target}\nprincipal: ${r.principal} (${r.role})`);
      }),
    );

  const token = program.command('token').description('manage API tokens');
  token
    .command('create')
    .description('create a token; its secret is printed once')
    .requiredOption('--name <name>', 'a label')
    .requiredOption('--principal <principal>', 'user:NAME the token acts as')
    .option('--role <role>', 'admin, user, or embed (a vendor back end: may only mint embed tokens)', 'user')
    .option('--expires-at <iso>', 'expiry instant (ISO-8601)')
    .action(async (opts: { name: string; principal: string; role: string; expiresAt?: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ id: string; token: string }>('POST', '/v1/tokens', opts);
        emit(out, r, () => `token ${r.id} created; the secret is shown only now:\n${r.token}`);
      }),
    );
  token
    .command('list')
    .description('list tokens (never their secrets)')
    .action(async (_opts: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<TokenList>('GET', '/v1/tokens');
        emit(out, r, () => table(r.tokens, ['id', 'name', 'principal', 'role', 'createdAt', 'lastUsedAt', 'revokedAt']));
      }),
    );
  token
    .command('revoke <id>')
    .description('revoke a token')
    .action(async (id: string, _opts: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('DELETE', `/v1/tokens/${enc(id)}`);
        emit(out, r, () => `token ${id} revoked`);
      }),
    );
}
