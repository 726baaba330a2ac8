/**
 * The embedded dashboard in Chromium, framed by a vendor page on another
 * origin: shown when that origin is on the token's list, refused by the
 * browser (frame-ancestors) when it is not. Screenshots go to docs/images
 * with `STEWARD_SCREENSHOTS=docs` (for docs/embedding.md), else to a
 * temporary folder.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { TestServer } from '../support/server.js';
import { CHROMIUM, CHROMIUM_ARGS } from '../console/support/browser.js';
import { mint, startEmbedServer } from './support.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = process.env['STEWARD_SCREENSHOTS'] === 'docs' ? path.join(ROOT, 'docs', 'images') : path.join(os.tmpdir(), 'steward-embed-screenshots');

/** A vendor's application: one page that frames the URL given in `?src=`. */
async function vendorApp(name: string): Promise<{ origin: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const src = new URL(req.url ?? '/', 'http://x').searchParams.get('src') ?? '';
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    const attr = src.replaceAll('&', '&amp;').replaceAll('"', '&quot;');
    res.end(`<!doctype html><title>${name}</title><body style="font:14px sans-serif;margin:16px"><h3>${name} — patient revenue portal</h3><iframe id="embed" src="${attr}" style="width:1180px;height:700px;border:1px solid #ccc"></iframe></body>`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

let s: TestServer;
let browser: Browser;
let allowed: Awaited<ReturnType<typeof vendorApp>>;
let other: Awaited<ReturnType<typeof vendorApp>>;

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/ensure-chromium.sh`);
  s = await startEmbedServer();
  allowed = await vendorApp('AnyHealth');
  other = await vendorApp('Elsewhere');
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
});
after(async () => {
  await browser?.close();
  await allowed?.close();
  await other?.close();
  await s?.close();
});

async function shot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `embed-${name}.png`) });
}

describe('embedded dashboard in a browser', () => {
  it('shows the dashboard inside an iframe of an allowed origin, with only the session rows', async () => {
    const { json } = await mint(s, { user: 'NorthAdmin', tags: { hospital: 'North Hospital', region: '*' }, origins: [allowed.origin] });
    const context = await browser.newContext({ viewport: { width: 1240, height: 800 } });
    const page = await context.newPage();
    await page.goto(`${allowed.origin}/?src=${encodeURIComponent(json.url)}`);
    const frame = page.frameLocator('#embed');
    await frame.locator('body[data-ready="true"]').waitFor({ timeout: 30_000 });
    assert.equal(await frame.locator('[data-visual] canvas').count() >= 3, true, 'the charts are drawn');
    assert.match((await frame.locator('#who').textContent()) ?? '', /NorthAdmin/);
    await shot(page, 'allowed-origin');
    await context.close();
  });

  it('is refused by the browser inside an iframe of an origin not on the list', async () => {
    // Threat: clickjacking or data display on a site the vendor never allowed, with a leaked link.
    const { json } = await mint(s, { user: 'NorthAdmin', tags: { hospital: 'North Hospital', region: '*' }, origins: [allowed.origin] });
    const context = await browser.newContext({ viewport: { width: 1240, height: 800 } });
    const page = await context.newPage();
    const blocked: string[] = [];
    page.on('console', (m) => {
      if (/frame-ancestors/.test(m.text())) blocked.push(m.text());
    });
    const response = page.waitForResponse((r) => r.url().includes('/embed/dashboards/'));
    await page.goto(`${other.origin}/?src=${encodeURIComponent(json.url)}`);
    assert.equal((await response).status(), 200, 'the server answered; the browser must refuse to show it');
    await page.waitForTimeout(1000);
    const framed = page.frames().find((f) => f !== page.mainFrame());
    const ready = framed === undefined ? 0 : await framed.locator('body[data-ready="true"]').count().catch(() => 0);
    assert.equal(ready, 0, 'the dashboard must not render in a frame of another origin');
    assert.ok(blocked.length > 0, 'chromium reports the frame-ancestors refusal');
    await shot(page, 'refused-origin');
    await context.close();
  });

  it('the <steward-dashboard> element served by Steward frames a URL from the vendor back end, and refuses a URL to another host', async () => {
    // Threat: a tampered token-endpoint answer turning the element's frame into a javascript: URL or another site.
    let answer: 'mint' | 'evil' = 'mint';
    const vendor: Server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/api/steward-embed-url') {
        if (answer === 'evil') {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ url: 'javascript:alert(1)' }));
          return;
        }
        // The vendor's back end vouches for its signed-in user and mints with its Steward credential.
        void mint(s, { user: 'SouthAdmin', tags: { hospital: 'South Hospital', region: '*' }, origins: [origin] }).then(({ json }) => {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ url: json.url }));
        });
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><title>AnyHealth</title><script src="${s.url}/embed/assets/steward-dashboard.js"></script><body style="font:14px sans-serif;margin:16px"><h3>AnyHealth — element</h3><steward-dashboard id="dash" token-endpoint="/api/steward-embed-url" title="Revenue by hospital" style="display:block;width:1180px;height:700px"></steward-dashboard></body>`);
    });
    await new Promise<void>((r) => vendor.listen(0, '127.0.0.1', () => r()));
    const origin = `http://127.0.0.1:${(vendor.address() as AddressInfo).port}`;
    const context = await browser.newContext({ viewport: { width: 1240, height: 800 } });
    try {
      const page = await context.newPage();
      await page.goto(`${origin}/`);
      const frame = page.frameLocator('#dash iframe');
      await frame.locator('body[data-ready="true"]').waitFor({ timeout: 30_000 });
      assert.match((await frame.locator('#who').textContent()) ?? '', /SouthAdmin/);
      await shot(page, 'element');
      answer = 'evil';
      await page.locator('#dash').evaluate((el: unknown) => (el as { refresh(): Promise<void> }).refresh());
      await page.locator('#dash [role="alert"]').waitFor({ timeout: 10_000 });
      assert.match((await page.locator('#dash').textContent()) ?? '', /not http\(s\)/);
      assert.equal(await page.locator('#dash iframe').count(), 0, 'no frame is left pointing anywhere');
    } finally {
      await context.close();
      await new Promise<void>((r) => vendor.close(() => r()));
    }
  });
});
