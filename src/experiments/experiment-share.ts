/**
 * The one function that decides which requests a partial experiment denies.
 * Every enforcement point (decisions, the gateway, the warehouse sync) asks
 * the same evaluator (experiment-evaluator.ts), which asks this, so a request
 * denied in one place is denied in all of them.
 *
 * The key is the experiment, the principal, the action and the table (a
 * column decision uses its table): a given pipeline's reads of a given table
 * are either all refused or all allowed for the run, so a retry does not
 * flip the answer and a table refused by the gateway is also revoked in the
 * warehouse. Across many principals and tables, `share` percent are denied.
 */
import type { AuthorizeRequest } from '../policy/decision.js';

/** FNV-1a over UTF-16 code units, then murmur3's finalizer so nearby keys spread over all buckets. */
export function stableHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function tableKey(req: AuthorizeRequest): string {
  const r = req.resource;
  switch (r.level) {
    case 'catalog':
      return r.catalog;
    case 'database':
      return `${r.catalog}.${r.database}`;
    case 'table':
    case 'column':
      return `${r.catalog}.${r.database}.${r.table}`;
  }
}

/** Whether experiment `id`, denying `share` percent (1..100), denies this request. */
export function shareDenies(id: string, share: number, req: AuthorizeRequest): boolean {
  if (share >= 100) return true;
  if (share <= 0) return false;
  const bucket = stableHash(`${id}\n${req.principal}\n${req.action}\n${tableKey(req)}`) % 10_000;
  return bucket < share * 100;
}
