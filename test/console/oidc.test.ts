/**
 * Signing in to the console through OpenID Connect in Chromium, against a real
 * OpenID Provider (oidc-provider 8, test/support/oidc.ts): the sign-in page
 * offers the provider, the round trip lands on the page the user asked for,
 * signed in as the user the demo's `okta` mappings give.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startOpenIdProvider, type Account, type RunningProvider } from '../support/oidc.js';
import { checkA11y, cspViolations, screenshot, startConsole, type ConsoleHarness } from './support/browser.js';

let h: ConsoleHarness;
let op: RunningProvider | undefined;
const accounts = new Map<string, Account>([['alice-at-idp', { preferred_username: 'alice', groups: ['Data Analysts'] }]]);

before(async () => {
  h = await startConsole({
    config: async (url) => {
      op = await startOpenIdProvider(`${url}/auth/oidc/callback`, accounts);
      return { publicUrl: url, oidcIssuer: op.issuer, oidcClientId: op.clientId, oidcClientSecret: op.clientSecret, oidcProvider: 'okta' };
    },
  });
});
after(async () => {
  await h.close();
  await op?.close();
});

describe('console sign-in with OpenID Connect', () => {
  it('offers the provider, and its round trip lands signed in on the page asked for', async () => {
    assert.ok(op !== undefined);
    const { page } = await h.newPage();
    await page.goto('/query');
    const button = page.getByRole('link', { name: `Sign in with ${op.issuer}` });
    await button.waitFor();
    assert.deepEqual(await cspViolations(page), []);
    await checkA11y(page, 'sign-in with OIDC');
    await screenshot(page, 'signin-oidc');
    await button.click();
    // The provider's development login and consent pages.
    await page.locator('input[name="login"]').fill('alice-at-idp');
    await page.locator('input[name="password"]').fill('any');
    await page.locator('button[type="submit"]').click();
    await page.locator('button[type="submit"]').click();
    await page.getByTestId('principal').waitFor({ timeout: 15_000 });
    assert.match(await page.getByTestId('principal').innerText(), /^user:alice \(user\)$/);
    assert.equal(new URL(page.url()).pathname, '/query');
    await page.getByTestId('hidden-column').first().waitFor();
  });
});
