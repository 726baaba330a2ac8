/**
 * A dependency-free API reference page rendered from the OpenAPI document.
 * Static HTML with escaped text; no scripts, so it cannot be a vector.
 */
import type { OpenApiDocument } from './openapi.js';

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] ?? ch);

export function docsPage(doc: OpenApiDocument): string {
  const rows: string[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const o = op as { summary?: string; tags?: string[]; 'x-steward-auth'?: string };
      rows.push(
        `<tr><td><code>${escapeHtml(method.toUpperCase())}</code></td><td><code>${escapeHtml(path)}</code></td>` +
          `<td>${escapeHtml(o.tags?.join(', ') ?? '')}</td><td>${escapeHtml(o.summary ?? '')}</td><td>${escapeHtml(o['x-steward-auth'] ?? 'public')}</td></tr>`,
      );
    }
  }
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(doc.info.title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem}td,th{padding:.25rem .75rem;text-align:left;border-bottom:1px solid #ddd}code{font-size:.95em}</style>
</head><body><h1>${escapeHtml(doc.info.title)}</h1><p>${escapeHtml(doc.info.description)}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI ${escapeHtml(doc.openapi)}).</p>
<table><thead><tr><th>method</th><th>path</th><th>area</th><th>summary</th><th>auth</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>
</body></html>`;
}
