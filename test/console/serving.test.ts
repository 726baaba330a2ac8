/**
 * How `steward serve` serves the console: the strict CSP and headers on every
 * console response, caching, the SPA fallback that never swallows API paths,
 * no file outside dist/console, and, in Chromium, that the console cannot be
 * framed by another origin and runs no inline script.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkA11y, cspViolations, screenshot, signIn, startConsole, type ConsoleHarness } from './support/browser.js';
import { CONSOLE_CSP } from '../../src/server/console-assets.js';

let h: ConsoleHarness;
before(async () => {
  h = await startConsole({ demo: false });
});
after(() => h.close());

const get = (p: string, headers: Record<string, string> = {}) => fetch(`${h.server.url}${p}`, { headers, redirect: 'manual' });

describe('console serving', () => {
  // Threat: markup that slips through escaping runs as script, or the console is framed for clickjacking.
  it('sends the strict CSP, nosniff and no-referrer on the page, deep links and assets', async () => {
    const index = await get('/');
    assert.equal(index.status, 200);
    const html = await index.text();
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(asset, 'index.html loads a hashed script');
    for (const p of ['/', '/catalog', '/query?x=1', asset]) {
      const r = p === '/' ? index : await get(p);
      assert.equal(r.status, 200, p);
      assert.equal(r.headers.get('content-security-policy'), CONSOLE_CSP, p);
      for (const d of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"]) {
        assert.ok(CONSOLE_CSP.includes(d), d);
      }
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff', p);
      assert.equal(r.headers.get('referrer-policy'), 'no-referrer', p);
    }
    assert.equal(index.headers.get('cache-control'), 'no-cache');
    assert.equal((await get(asset)).headers.get('cache-control'), 'public, max-age=31536000, immutable');
  });

  // Threat: the build (or someone's edit of index.html) reintroducing an inline script the CSP would have to allow.
  it('ships an index.html with no inline script or style', async () => {
    const html = await (await get('/')).text();
    for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)) {
      assert.match(m[1] ?? '', /\bsrc="\/assets\//, `script without src: ${m[0].slice(0, 80)}`);
      assert.equal((m[2] ?? '').trim(), '');
    }
    assert.doesNotMatch(html, /<style\b|\sstyle="|\son[a-z]+=/i);
  });

  // Threat: the SPA fallback answering API paths with HTML hides errors from API clients and the CLI.
  it('keeps JSON 404s for unknown API paths and answers no HTML to a missing asset', async () => {
    const api = await get('/v1/no-such-route');
    assert.equal(api.status, 404);
    assert.match(api.headers.get('content-type') ?? '', /application\/json/);
    assert.equal((await get('/auth/nothing')).status, 404);
    assert.equal((await get('/assets/missing-123.js')).status, 404);
    assert.equal((await get('/favicon.ico')).status, 404);
  });

  // Threat: a crafted path reading files outside dist/console (the workspace, tokens, package sources).
  it('serves nothing outside dist/console, however the path is encoded', async () => {
    for (const p of ['/..%2f..%2fpackage.json', '/%2e%2e/%2e%2e/package.json', '/assets/..%2f..%2f..%2fpackage.json', '/.%2e/.%2e/src/config.ts', '/..\\..\\package.json', '/%00index.html']) {
      const r = await get(p);
      const body = await r.text();
      assert.doesNotMatch(body, /"name": "steward"|loadConfig/, p);
    }
  });

  // Threat: clickjacking: another site frames the console and tricks a signed-in user into clicks.
  it('cannot be framed by a page of another origin', async () => {
    const attacker = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><title>attacker</title><iframe id="f" src="${h.server.url}/catalog" width="800" height="600"></iframe>`);
    });
    await new Promise<void>((resolve) => attacker.listen(0, 'localhost', resolve));
    try {
      const { page } = await h.newPage();
      const blocked: string[] = [];
      page.on('console', (m) => {
        if (/frame-ancestors|Refused to frame/i.test(m.text())) blocked.push(m.text());
      });
      await page.goto(`http://localhost:${(attacker.address() as AddressInfo).port}/`);
      await page.waitForTimeout(500);
      const frame = page.frames().find((f) => f !== page.mainFrame());
      assert.ok(frame !== undefined);
      // A blocked frame is an error page: the console's root element never exists in it.
      const rendered = await frame.evaluate<boolean>("document.getElementById('root') !== null").catch(() => false);
      assert.equal(rendered, false, 'the console rendered inside a cross-origin frame');
      assert.ok(blocked.length > 0, 'Chromium reported no frame-ancestors refusal');
    } finally {
      attacker.close();
    }
  });

  // Threat: an inline script or style anywhere in the app would need 'unsafe-inline', and the CSP would stop protecting.
  it('raises no CSP violation while the sign-in page loads and renders, and passes axe-core', async () => {
    const { page } = await h.newPage();
    await page.goto('/');
    await page.getByLabel('API token').waitFor();
    assert.deepEqual(await cspViolations(page), []);
    await checkA11y(page, 'sign-in');
    await screenshot(page, 'signin');
  });

  // Threat: a signed-in admin lured to another site whose form (text/plain, no preflight) posts to the API with the session cookie.
  it('a cross-site form post from a signed-in browser changes nothing', async () => {
    const { page, context } = await h.newPage();
    await signIn(page, await h.token('csrf-admin', 'admin'));
    const before = (await h.server.call('GET', '/v1/tokens')).json.tokens.length;
    const attacker = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(
        `<!doctype html><title>win a prize</title><form id="f" method="POST" enctype="text/plain" action="${h.server.url}/v1/tokens">` +
          `<input name='{"name":"evil","principal":"user:mallory","role":"admin","x":"' value='"}'></form><script>document.getElementById('f').submit()</script>`,
      );
    });
    await new Promise<void>((resolve) => attacker.listen(0, 'localhost', resolve));
    try {
      const evil = await context.newPage();
      const answered = evil.waitForResponse((r) => r.url().endsWith('/v1/tokens'));
      await evil.goto(`http://localhost:${(attacker.address() as AddressInfo).port}/`);
      const response = await answered;
      assert.ok(response.status() >= 400, `status ${response.status()}`);
      assert.equal((await h.server.call('GET', '/v1/tokens')).json.tokens.length, before);
    } finally {
      attacker.close();
    }
  });

  // Threat: sign-out that only forgets the session in the page leaves a cookie that still works.
  it('signing out revokes the session on the server', async () => {
    const { page, context } = await h.newPage();
    await signIn(page, await h.token('leaving', 'user'));
    const cookie = (await context.cookies()).find((c) => c.name === 'steward_session');
    assert.ok(cookie !== undefined);
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').waitFor();
    const replay = await fetch(`${h.server.url}/v1/session`, { headers: { cookie: `steward_session=${cookie.value}` } });
    assert.equal(replay.status, 401);
  });
});
