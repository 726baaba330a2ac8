/**
 * `steward login`: sign in to a remote Steward with its OpenID Connect
 * provider and keep the resulting API token in a file only you can read.
 *
 * Loopback redirect (RFC 8252): the CLI listens once on 127.0.0.1 at a random
 * port, sends the browser to the server's OIDC sign-in with that port and the
 * challenge of a random verifier, and the server, once the provider has
 * vouched for you, redirects the browser back to the listener with a one-time
 * code. The CLI trades the code and the verifier for a user token
 * (src/identity/cli-logins.ts). The token is written with mode 0600.
 */
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Command } from 'commander';
import { StewardError } from '../errors.js';
import { readResponse } from './client.js';
import { emit } from './output.js';
import { standalone } from './run.js';
import { savedTokenFile } from './saved-tokens.js';

const WAIT_MS = 5 * 60_000;

interface LoginOptions {
  readonly browser?: boolean;
  readonly out?: string;
}

export function registerLoginCommands(program: Command): void {
  program
    .command('login')
    .description('sign in to the server of --url (STEWARD_URL) with its OpenID Connect provider; saves a user API token (mode 0600)')
    .option('--no-browser', 'print the sign-in URL instead of opening a browser')
    .option('--out <file>', 'where to save the token (default: $XDG_CONFIG_HOME/steward/tokens/<server>, else ~/.config/…, which later commands with this --url use by themselves)')
    .action(async (options: LoginOptions, cmd: Command) =>
      standalone(cmd, async ({ config, out }) => {
        if (config.url === undefined) throw new StewardError('STEWARD_E_VALIDATION', 'steward login needs the server: pass `--url https://…` or set STEWARD_URL');
        const result = await login(config.url, options);
        const use = options.out === undefined ? `commands with --url ${config.url} (or STEWARD_URL) use it by themselves` : `use it: export STEWARD_URL=${config.url} STEWARD_TOKEN=$(cat ${result.tokenFile})`;
        emit(out, result, () => `signed in as ${result.principal}; token saved to ${result.tokenFile} (expires ${result.expiresAt})\n${use}`);
      }),
    );
}

interface LoginResult {
  readonly principal: string;
  readonly tokenFile: string;
  readonly expiresAt: string;
}

async function login(serverUrl: string, options: LoginOptions): Promise<LoginResult> {
  const base = serverUrl.replace(/\/+$/, '');
  const auth = await readResponse<{ oidc: { enabled: boolean } }>(await fetch(`${base}/v1/auth/config`));
  if (!auth.oidc.enabled) throw new StewardError('STEWARD_E_VALIDATION', `the server at \`${base}\` has no OpenID Connect sign-in; use an API token (--token)`);
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const listener = await oneShotListener();
  try {
    const url = `${base}/auth/oidc/login?cli_port=${listener.port}&cli_challenge=${challenge}`;
    process.stderr.write(`Sign in at: ${url}\n`);
    if (options.browser !== false) openBrowser(url);
    const code = await listener.code;
    const redeemed = await readResponse<{ token: string; principal: string; expiresAt: string }>(
      await fetch(`${base}/v1/cli-logins/redeem`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code, verifier }) }),
    );
    const tokenFile = path.resolve(options.out ?? savedTokenFile(base));
    await writePrivate(tokenFile, `${redeemed.token}\n`);
    return { principal: redeemed.principal, tokenFile, expiresAt: redeemed.expiresAt };
  } finally {
    listener.close();
  }
}

/** Listens on 127.0.0.1 (never all interfaces) for the one redirect that brings the code. */
async function oneShotListener(): Promise<{ port: number; code: Promise<string>; close(): void }> {
  let settle: { resolve: (code: string) => void; reject: (e: Error) => void } | undefined;
  const code = new Promise<string>((resolve, reject) => (settle = { resolve, reject }));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const value = url.searchParams.get('code');
    if (url.pathname !== '/callback' || value === null) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end('Signed in. You can close this tab and return to the terminal.\n');
    settle?.resolve(value);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const timer = setTimeout(() => settle?.reject(new StewardError('STEWARD_E_TIMEOUT', 'no sign-in within 5 minutes')), WAIT_MS);
  return {
    port: (server.address() as AddressInfo).port,
    code,
    close: () => {
      clearTimeout(timer);
      server.closeAllConnections();
      server.close();
    },
  };
}

/** Writes `text` so only the owner can read it, whatever the file's mode was before. */
async function writePrivate(file: string, text: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const handle = await fs.open(file, 'w', 0o600);
  try {
    await handle.chmod(0o600); // an existing file keeps its old mode through open()
    await handle.writeFile(text, 'utf8');
  } finally {
    await handle.close();
  }
}

/** Best effort: a machine without a browser opener still has the URL printed above. */
function openBrowser(url: string): void {
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => {});
    child.unref();
  } catch {
    // no opener: the URL is printed
  }
}
