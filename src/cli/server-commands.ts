/**
 * `steward serve`, `steward token …`, `steward status`.
 */
import type { Command } from 'commander';
import { emit, table } from './output.js';
import { enc, standalone, withClient } from './run.js';

interface TokenList {
  tokens: { id: string; name: string; principal: string; role: string; createdAt: string; lastUsedAt?: string; revokedAt?: string }[];
}

export function registerServerCommands(program: Command): void {
  program
    .command('serve')
    .description('start the HTTP API (and the docs page at /docs) on this workspace')
    .option('--host <host>', 'interface to listen on (STEWARD_HOST)')
    .option('--port <port>', 'port to listen on (STEWARD_PORT)')
    .option('--idle-stop <duration>', 'stop after this long without a request, e.g. `10m` (the background server of STEWARD_DAEMON uses it)')
    .option('--no-bootstrap', 'do not create and print an admin token on the first start')
    .action(async (opts: { host?: string; port?: string; idleStop?: string; bootstrap?: boolean }, cmd: Command) =>
      standalone(cmd, async ({ full }) => {
        const { runServer } = await import('./serve.js');
        await runServer(await full(), opts);
      }),
    );

  program
    .command('stop')
    .description("stop this workspace's running server (a background one of STEWARD_DAEMON, or `steward serve`)")
    .action(async (_opts: unknown, cmd: Command) =>
      standalone(cmd, async ({ config, out }) => {
        const { stopServer } = await import('./stop.js');
        const r = await stopServer(config.home);
        emit(out, r, () => (r.stopped ? `stopped the server pid ${r.pid}` : 'no server runs on this workspace'));
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
