/**
 * The embedded dashboard page: one HTML document holding the session's rows
 * (already cut by the gateway) as JSON and a small script that draws the
 * visuals with ECharts. Filters narrow those rows in the page; they can never
 * widen them, since nothing else was sent.
 *
 * Headers: a CSP whose `frame-ancestors` is exactly the token's allowed
 * origins (the browser refuses to show the page framed anywhere else), no
 * inline script but the page's own (nonce), no network access from the page
 * (`connect-src 'none'`), and `no-referrer` so the token in the URL does not
 * travel on. Data goes into a `<script type="application/json">` with every
 * `<`, `>` and `&` escaped, so a value such as `</script>` stays text.
 */
import { randomBytes } from 'node:crypto';
import type { EmbedView } from './embed-service.js';

export const ECHARTS_PATH = '/embed/assets/echarts.min.js';

export function embedCsp(origins: readonly string[], nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'self' 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "img-src 'self' data:",
    "connect-src 'none'",
    "object-src 'none'",
    `frame-ancestors ${origins.join(' ')}`,
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}

/** JSON that is safe inside `<script type="application/json">` and inside HTML text. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

export function renderDashboard(view: EmbedView): { html: string; headers: Record<string, string> } {
  const nonce = randomBytes(18).toString('base64');
  const d = view.dashboard;
  const payload = { title: d.title, visuals: d.visuals, filters: d.filters, data: view.data, user: view.session.user };
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(d.title)}</title>
<style nonce="${nonce}">
body{font:14px system-ui,sans-serif;margin:0;padding:16px;color:#1f2937;background:#fff}
h1{font-size:18px;margin:0 0 4px} .who{color:#6b7280;font-size:12px;margin-bottom:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:12px}
.card{border:1px solid #e5e7eb;border-radius:8px;padding:12px} .card h2{font-size:14px;margin:0 0 8px}
.chart{height:260px} .kpi{font-size:32px;font-weight:600} table{border-collapse:collapse;width:100%;font-size:12px}
td,th{border-bottom:1px solid #f3f4f6;padding:4px;text-align:left} .filters{margin-bottom:12px;display:flex;gap:12px}
</style></head>
<body><h1>${escapeHtml(d.title)}</h1><div class="who" id="who"></div><div class="filters" id="filters"></div><div class="grid" id="grid"></div>
<script type="application/json" id="steward-data">${scriptJson(payload)}</script>
<script src="${ECHARTS_PATH}"></script>
<script nonce="${nonce}">${CLIENT}</script>
</body></html>`;
  return {
    html,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': embedCsp(view.session.origins, nonce),
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
    },
  };
}

/**
 * The page script: rows to charts. Text goes in through textContent and
 * ECharts' own rendering (canvas), never innerHTML.
 */
const CLIENT = `(() => {
  const p = JSON.parse(document.getElementById('steward-data').textContent);
  document.getElementById('who').textContent = 'Viewing as ' + p.user;
  const state = {};
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = String(text); return e; };
  const rowsOf = (id) => {
    const ds = p.data[id];
    const objs = ds.rows.map((r) => Object.fromEntries(ds.columns.map((c, i) => [c, r[i]])));
    return objs.filter((o) => p.filters.every((f) => {
      if (!(f.column in o)) return true;
      const v = state[f.id];
      if (f.type === 'range') return (!v || !v.from || String(o[f.column]) >= v.from) && (!v || !v.to || String(o[f.column]) <= v.to);
      return !v || v === '' || String(o[f.column]) === v;
    }));
  };
  const sumBy = (rows, x, y) => { const m = new Map(); for (const r of rows) m.set(String(r[x]), (m.get(String(r[x])) || 0) + Number(r[y] || 0)); return [...m.entries()].sort((a, b) => a[0] < b[0] ? -1 : 1); };
  const charts = [];
  const draw = () => {
    const grid = document.getElementById('grid');
    for (const c of charts.splice(0)) c.dispose();
    grid.replaceChildren();
    for (const v of p.visuals) {
      const card = el('div', 'card'); card.dataset.visual = v.id; card.appendChild(el('h2', '', v.title || v.id)); grid.appendChild(card);
      const rows = rowsOf(v.dataset);
      if (v.type === 'kpi') { card.appendChild(el('div', 'kpi', rows.reduce((s, r) => s + Number(r[v.y] || 0), 0).toLocaleString('en-US', { maximumFractionDigits: 0 }))); continue; }
      if (v.type === 'table') {
        const cols = v.columns || p.data[v.dataset].columns; const t = el('table'); const h = el('tr'); cols.forEach((c) => h.appendChild(el('th', '', c))); t.appendChild(h);
        rows.slice(0, 200).forEach((r) => { const tr = el('tr'); cols.forEach((c) => tr.appendChild(el('td', '', r[c] === null ? '' : r[c]))); t.appendChild(tr); });
        card.appendChild(t); continue;
      }
      const box = el('div', 'chart'); card.appendChild(box);
      const series = sumBy(rows, v.x, v.y);
      const chart = echarts.init(box, null, { renderer: 'canvas' });
      chart.setOption({ animation: false, tooltip: { trigger: 'axis' }, grid: { left: 80, right: 16, top: 16, bottom: 40 },
        xAxis: { type: 'category', data: series.map((s) => s[0]) }, yAxis: { type: 'value' },
        series: [{ type: v.type, data: series.map((s) => Math.round(s[1] * 100) / 100) }] });
      charts.push(chart);
    }
    document.body.dataset.ready = 'true';
  };
  for (const f of p.filters) {
    const wrap = el('label', '', (f.title || f.id) + ' ');
    if (f.type === 'range') {
      const from = el('input'); from.placeholder = 'from'; const to = el('input'); to.placeholder = 'to';
      const on = () => { state[f.id] = { from: from.value, to: to.value }; draw(); };
      from.addEventListener('change', on); to.addEventListener('change', on); wrap.append(from, to);
    } else {
      const sel = el('select'); sel.appendChild(el('option', '', ''));
      const vals = new Set(); for (const ds of Object.keys(p.data)) for (const r of rowsOf(ds)) if (f.column in r) vals.add(String(r[f.column]));
      [...vals].sort().forEach((v) => { const o = el('option', '', v); o.value = v; sel.appendChild(o); });
      sel.addEventListener('change', () => { state[f.id] = sel.value; draw(); }); wrap.appendChild(sel);
    }
    document.getElementById('filters').appendChild(wrap);
  }
  draw();
})();`;
