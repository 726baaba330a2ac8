/**
 * `steward login`: the real CLI binary, a real OpenID Provider, and a browser
 * driven over HTTP, from the loopback redirect to a token file only its owner
 * can read; and the one-time codes attacked directly.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startTestServer, type TestServer } from '../support/server.js';
import { BIN, steward } from '../support/cli.js';
import { Browser, signInAt, startOpenIdProvider, type Account, type RunningProvider } from '../support/oidc.js';

const CALLBACK = '/auth/oidc/callback';
const PROVIDER = 'acme-idp';

let op: RunningProvider;
let s: TestServer;
let dir: string;
const accounts = new Map<string, Account>([['alice-sub', { preferred_username: 'alice', groups: ['eng-all'] }]]);

before(async () => {
  s = await startTestServer({
    config: async (url) => {
      op = await startOpenIdProvider(`${url}${CALLBACK}`, accounts);
      return { publicUrl: url, oidcIssuer: op.issuer, oidcClientId: op.clientId, oidcClientSecret: op.clientSecret, oidcProvider: PROVIDER };
    },
  });
  assert.equal((await s.call('POST', '/v1/groups', { name: 'engineering' })).status, 201);
  assert.equal((await s.call('POST', '/v1/idp-mappings', { provider: PROVIDER, externalGroup: 'eng-all', group: 'engineering' })).status, 201);
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-login-'));
});
after(async () => {
  await s?.close();
  await op?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

/** Runs `steward login --no-browser --json` with HOME=`home` and completes its sign-in as a browser would. */
async function loginThroughBrowser(extra: readonly string[], home: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, 'login', '--url', s.url, '--no-browser', ...extra, '--json'], {
    env: { PATH: process.env['PATH'], HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const loginUrl = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /Sign in at: (\S+)/.exec(stderr);
      if (m?.[1] !== undefined) resolve(m[1]);
    });
    child.on('close', () => reject(new Error(`steward login exited early: ${stderr}`)));
  });
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  const res = await callbackRedirect(new Browser(), loginUrl);
  assert.equal(res.status, 302);
  const loopback = res.headers.get('location') ?? '';
  assert.match(loopback, /^http:\/\/127\.0\.0\.1:\d+\/callback\?code=[A-Za-z0-9_-]{43}$/);
  // The browser lands on the CLI's listener.
  const landed = await fetch(loopback);
  assert.equal(landed.status, 200);
  return { code: await exited, stdout, stderr };
}

/** Walks a browser from a Steward sign-in URL through the provider to the redirect the callback answers with. */
async function callbackRedirect(browser: Browser, loginUrl: string): Promise<Response> {
  const callback = await signInAt(browser, loginUrl, 'alice-sub', `${s.url}${CALLBACK}`);
  const res = await browser.fetch(callback);
  await res.arrayBuffer();
  return res;
}

function challengeOf(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}

async function codeFor(verifier: string, port = 45_678): Promise<string> {
  const res = await callbackRedirect(new Browser(), `${s.url}/auth/oidc/login?cli_port=${port}&cli_challenge=${challengeOf(verifier)}`);
  assert.equal(res.status, 302);
  const location = new URL(res.headers.get('location') ?? '');
  assert.equal(location.origin, `http://127.0.0.1:${port}`);
  assert.equal(location.pathname, '/callback');
  return location.searchParams.get('code') ?? '';
}

async function redeem(code: string, verifier: string): Promise<{ status: number; json: any }> {
  return s.call('POST', '/v1/cli-logins/redeem', { code, verifier }, null);
}

describe('steward login', () => {
  it('signs in through the browser and saves a working user token with mode 0600, even over a world-readable file', async () => {
    // Threat: a token file other local users can read.
    const file = path.join(dir, 'nested', 'token');
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, 'old\n', { mode: 0o644 });
    const r = await loginThroughBrowser(['--out', file], dir);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { principal: string; tokenFile: string; expiresAt: string };
    assert.equal(out.principal, 'user:alice');
    assert.equal(out.tokenFile, file);
    assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
    const token = (await fs.readFile(file, 'utf8')).trim();
    assert.ok(!r.stdout.includes(token) && !r.stderr.includes(token), 'the token was printed');
    const me = await s.call('GET', '/v1/me', undefined, token);
    assert.equal(me.status, 200);
    assert.equal(me.json.principal, 'user:alice');
    assert.equal(me.json.role, 'user');
    const expires = Date.parse(out.expiresAt) - Date.now();
    assert.ok(expires > 6 * 86_400_000 && expires <= 7 * 86_400_000, out.expiresAt);
  });

  it('saves the token for its server by default, and later commands with that --url use it without STEWARD_TOKEN', async () => {
    const home = await fs.mkdtemp(path.join(dir, 'home-'));
    const r = await loginThroughBrowser([], home);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { tokenFile: string };
    assert.equal(out.tokenFile, path.join(home, '.config', 'steward', 'tokens', encodeURIComponent(new URL(s.url).origin)));
    const status = await steward(['--url', s.url, 'status', '--json'], { HOME: home });
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).principal, 'user:alice');

    // Threat: a token saved for one server is sent to whichever --url a later command names.
    const seen: (string | undefined)[] = [];
    const other = http.createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"code":"STEWARD_E_UNAUTHENTICATED","message":"no"}}');
    });
    await new Promise<void>((ok) => other.listen(0, '127.0.0.1', ok));
    try {
      const elsewhere = await steward(['--url', `http://127.0.0.1:${(other.address() as AddressInfo).port}`, 'status'], { HOME: home });
      assert.notEqual(elsewhere.code, 0);
      assert.deepEqual(seen, [undefined], 'another server received no token');
    } finally {
      other.close();
    }

    // Threat: a token file another user could have written makes your commands act as someone else.
    await fs.chmod(out.tokenFile, 0o644);
    const loose = await steward(['--url', s.url, 'status'], { HOME: home });
    assert.notEqual(loose.code, 0);
    assert.match(loose.stderr, /ignoring `.*`: a saved token must be your own regular file with mode 0600/);
  });

  it('fails with a clear error and non-zero exit without a server URL', async () => {
    const child = spawn(process.execPath, [BIN, 'login', '--no-browser'], { env: { PATH: process.env['PATH'], HOME: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
    assert.equal(code, 1);
    assert.match(stderr, /steward login needs the server: pass `--url/);
  });
});

describe('login codes of steward login', () => {
  it('refuses a code redeemed with the wrong verifier, and burns it', async () => {
    // Threat: a code read from the browser's history or a proxy log is traded for a token by someone else.
    const verifier = randomBytes(32).toString('base64url');
    const code = await codeFor(verifier);
    const wrong = await redeem(code, randomBytes(32).toString('base64url'));
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.error.code, 'STEWARD_E_UNAUTHENTICATED');
    assert.equal((await redeem(code, verifier)).status, 401);
  });

  it('refuses a replayed code: it works once', async () => {
    // Threat: the same code traded twice for two tokens.
    const verifier = randomBytes(32).toString('base64url');
    const code = await codeFor(verifier);
    const first = await redeem(code, verifier);
    assert.equal(first.status, 201);
    assert.equal(first.json.principal, 'user:alice');
    assert.equal((await redeem(code, verifier)).status, 401);
  });

  it('refuses an expired code', async () => {
    // Threat: a code found long after the sign-in.
    const verifier = randomBytes(32).toString('base64url');
    const code = await codeFor(verifier);
    await s.ws.db.query(`UPDATE steward.cli_logins SET expires_at = now() - interval '1 second'`);
    assert.equal((await redeem(code, verifier)).status, 401);
  });

  it('sends the code only to the loopback address, and refuses a port or challenge that is not one', async () => {
    // Threat: a crafted sign-in link that delivers the code to a host the attacker controls.
    for (const query of ['cli_port=80&cli_challenge=' + 'a'.repeat(43), 'cli_port=evil.example&cli_challenge=' + 'a'.repeat(43), 'cli_port=70000&cli_challenge=' + 'a'.repeat(43), 'cli_port=45678&cli_challenge=short', 'cli_port=45678']) {
      const res = await fetch(`${s.url}/auth/oidc/login?${query}`, { redirect: 'manual' });
      assert.equal(res.status, 400, query);
    }
  });

  it('stores codes only as hashes', async () => {
    // Threat: a database dump hands out fresh login codes.
    const verifier = randomBytes(32).toString('base64url');
    const code = await codeFor(verifier);
    const rows = JSON.stringify((await s.ws.db.query('SELECT * FROM steward.cli_logins')).rows);
    assert.ok(!rows.includes(code));
  });
});
