/** The embed page's HTML and headers, with hostile dashboard text and data. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { renderDashboard } from '../../src/embed/render.js';
import type { EmbedView } from '../../src/embed/embed-service.js';
import { REVENUE_DASHBOARD } from '../../src/demo/anyhealth.js';
import { DashboardSchema } from '../../src/embed/dashboard-spec.js';

const HOSTILE = '</script><script>alert(1)</script><!--';

function view(origins: string[]): EmbedView {
  return {
    dashboard: { ...DashboardSchema.parse(REVENUE_DASHBOARD), title: `<img src=x onerror=alert(1)>${HOSTILE}`, id: 'revenue' },
    session: { dashboard: 'revenue', user: HOSTILE, tags: {}, origins, jti: 'j', exp: 0 },
    data: { claims: { columns: ['hospital', 'revenue'], rows: [[HOSTILE, 1], ['\u2028&amp;', 2]], truncated: false } },
  };
}

it('keeps data and titles as text: a value holding </script> cannot end the data block or start a script', () => {
  // Threat: a tag or column value (written by the vendor's users) that becomes script in the vendor's page.
  const { html } = renderDashboard(view(['https://app.example.com']));
  assert.equal(html.split('</script>').length - 1, 3, 'exactly the three script elements of the page end');
  assert.ok(!html.includes('<img src=x'), 'the title is escaped');
  assert.ok(!html.includes(HOSTILE));
  const data = /<script type="application\/json" id="steward-data">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '';
  assert.equal(JSON.parse(data).data.claims.rows[0][0], HOSTILE, 'the value arrives intact as data');
});

it('lets only the token origins frame the page, with no inline script but its own nonce', () => {
  // Threat: a page framable by any site (clickjacking, data display on a site the vendor never allowed).
  const { headers, html } = renderDashboard(view(['https://app.example.com', 'http://localhost:8080']));
  const csp = headers['content-security-policy'] ?? '';
  assert.match(csp, /frame-ancestors https:\/\/app\.example\.com http:\/\/localhost:8080(;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline|\*/);
  const nonce = /'nonce-([^']+)'/.exec(csp)?.[1];
  assert.ok(nonce !== undefined && html.includes(`<script nonce="${nonce}">`));
  assert.equal(headers['referrer-policy'], 'no-referrer', 'the token in the URL does not travel on');
  assert.notEqual(renderDashboard(view(['https://a.example'])).headers['content-security-policy'], csp, 'a fresh nonce per page');
});
