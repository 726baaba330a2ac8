/**
 * `<steward-dashboard>`: the custom element a vendor's page loads from
 * Steward (`<script src="https://steward…/embed/assets/steward-dashboard.js">`)
 * to show a dashboard without writing frame code.
 *
 *   <steward-dashboard token-endpoint="/api/steward-embed-url?dashboard=revenue"></steward-dashboard>
 *
 * The element asks the vendor's own back end (`token-endpoint`, with the
 * page's cookies) for `{ "url": … }`: that back end authenticates its user and
 * mints the token with `POST /v1/embed/tokens`, so no Steward credential is in
 * the browser. An embed token opens one view once, so every (re)connection and
 * `refresh()` asks for a fresh URL. The URL must be http(s) on the script's
 * own Steward origin: a tampered answer cannot turn the frame into a
 * `javascript:` URL or point it elsewhere. Errors are shown as text, never as
 * markup.
 */
export const ELEMENT_PATH = '/embed/assets/steward-dashboard.js';

/** The script, as served. Plain ES2017 so any current browser runs it unbundled. */
export const ELEMENT_SOURCE = `(() => {
  'use strict';
  if (customElements.get('steward-dashboard')) return;
  const here = document.currentScript ? new URL(document.currentScript.src, location.href).origin : null;
  class StewardDashboard extends HTMLElement {
    connectedCallback() { this.refresh(); }
    disconnectedCallback() { this.replaceChildren(); }
    async refresh() {
      const endpoint = this.getAttribute('token-endpoint');
      if (!endpoint) return this.fail('the token-endpoint attribute is missing');
      let url;
      try {
        const res = await fetch(endpoint, { credentials: 'include', headers: { accept: 'application/json' } });
        if (!res.ok) return this.fail('the token endpoint answered ' + res.status);
        url = new URL(String((await res.json()).url), location.href);
      } catch (e) {
        return this.fail('no dashboard URL: ' + (e && e.message ? e.message : e));
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') return this.fail('the dashboard URL is not http(s)');
      if (here !== null && url.origin !== here) return this.fail('the dashboard URL is not on the Steward server this script came from');
      if (!/^\\/embed\\/dashboards\\/[a-z0-9][a-z0-9_-]*$/.test(url.pathname)) return this.fail('the URL is not a Steward dashboard');
      const frame = document.createElement('iframe');
      frame.src = url.href;
      frame.title = this.getAttribute('title') || 'dashboard';
      frame.referrerPolicy = 'no-referrer';
      frame.style.cssText = 'width:100%;height:100%;border:0;display:block';
      this.replaceChildren(frame);
      this.dispatchEvent(new CustomEvent('steward-load', { detail: { url: url.href } }));
    }
    fail(message) {
      const p = document.createElement('p');
      p.setAttribute('role', 'alert');
      p.textContent = 'Dashboard unavailable: ' + message;
      this.replaceChildren(p);
      this.dispatchEvent(new CustomEvent('steward-error', { detail: { message } }));
    }
  }
  customElements.define('steward-dashboard', StewardDashboard);
})();
`;
