/**
 * Browser tests of the web console: a real Steward server (test/support/server.ts)
 * serving the built console (dist/console), and Debian's Chromium driven by
 * playwright-core (scripts/ensure-chromium.sh installs it; no browser is ever
 * downloaded). One server and one browser per test file; each persona gets
 * its own browser context, so cookie jars never mix.
 *
 * Every page records Content-Security-Policy violations from the first byte
 * (an init script, which runs through DevTools and is not subject to the
 * page's CSP), and `checkA11y` runs axe-core the same way.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startTestServer, type TestServer, type TestServerOptions } from '../../support/server.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CHROMIUM = process.env['STEWARD_CHROMIUM'] ?? '/usr/bin/chromium';
/**
 * docs/images when asked (`STEWARD_SCREENSHOTS=docs npm test`, to refresh
 * docs/console.md), else a temporary folder: a test run must not rewrite
 * tracked files.
 */
const SCREENSHOTS = process.env['STEWARD_SCREENSHOTS'] === 'docs' ? path.join(ROOT, 'docs', 'images') : path.join(os.tmpdir(), 'steward-console-screenshots');
const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** The contract's flags (docs/console.md): no sandbox in CI containers, no network chatter, no GPU. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface ConsoleHarness {
  readonly server: TestServer;
  readonly browser: Browser;
  /** A fresh browser context (its own cookies) with a page on the console. */
  newPage(): Promise<{ context: BrowserContext; page: Page }>;
  /** A user token for `user:<name>`. */
  token(name: string, role?: 'user' | 'admin'): Promise<string>;
  close(): Promise<void>;
}

export async function startConsole(options: { demo?: boolean; config?: TestServerOptions['config'] } = {}): Promise<ConsoleHarness> {
  assert.ok(fs.existsSync(path.join(ROOT, 'dist', 'console', 'index.html')), 'dist/console is missing: run `npm run build` first');
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/ensure-chromium.sh`);
  const server = await startTestServer(options.config === undefined ? {} : { config: options.config });
  if (options.demo !== false) {
    const demo = await server.call('POST', '/v1/demo', {});
    assert.equal(demo.status, 200, JSON.stringify(demo.json));
  }
  // playwright's launch() gives the browser a fresh temporary --user-data-dir of its own and removes it on close.
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  const contexts: BrowserContext[] = [];
  return {
    server,
    browser,
    async newPage() {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, baseURL: server.url });
      contexts.push(context);
      // Page-side code is written as text: the test project has no DOM types.
      await context.addInitScript({
        content: `window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber + ' ' + e.sample));`,
      });
      const page = await context.newPage();
      return { context, page };
    },
    async token(name, role = 'user') {
      return (await server.ws.services.tokens.createToken({ name: `t-${name}-${Date.now()}`, principal: `user:${name}`, role })).token;
    },
    async close() {
      for (const c of contexts) await c.close().catch(() => undefined);
      await browser.close();
      await server.close();
    },
  };
}

/** Signs in through the sign-in page with an API token, as a person would. */
export async function signIn(page: Page, token: string, at = '/'): Promise<void> {
  await page.goto(at);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('principal').waitFor();
}

/** CSP violations the page has seen since it loaded (an inline script or style would be one). */
export async function cspViolations(page: Page): Promise<string[]> {
  return page.evaluate<string[]>('window.__csp ?? []');
}

/** Runs axe-core on the page; fails on any serious or critical violation, naming it and its nodes. */
export async function checkA11y(page: Page, label: string): Promise<void> {
  const hasAxe = await page.evaluate<boolean>('typeof window.axe !== "undefined"');
  if (!hasAxe) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate<{ id: string; impact: string | null; help: string; nodes: string[] }[]>(
    `axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => JSON.stringify(n.target)) })))`,
  );
  const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(serious, [], `axe-core on ${label}: ${JSON.stringify(serious, null, 1)}`);
}

/** Saves console-<name>.png (in docs/images with `STEWARD_SCREENSHOTS=docs`, for docs/console.md). */
export async function screenshot(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<void> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `console-${name}.png`), fullPage: options.fullPage === true });
}

/** Replaces a CodeMirror editor's text as typing would (Playwright's fill() edits a contenteditable through execCommand, which no person does). */
export async function replaceText(page: Page, testId: string, text: string): Promise<void> {
  await page.getByTestId(testId).click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
}
