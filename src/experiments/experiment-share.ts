/**
 * Which tables a partial experiment denies. A run with `share: 30` over a
 * catalog or database denies its actions on 30% of the tables in scope
 * (rounded, at least one), picked once at start by a stable hash of the run
 * and the table, and marked in the world like any other scope. Every
 * enforcement point then reads the same guardrail on the same tables: a
 * decision, the gateway, and the warehouse sync (whose desired state groups
 * tables by their tags, so marked and unmarked tables are told apart) all
 * agree, and a retry never flips. For requests spread over the scope's
 * tables, `share` percent are refused.
 */

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

/** The `share` percent (1..100) of `tables` that run `id` denies: the same tables for the same run and scope, whatever their order. */
export function pickShare<T>(id: string, tables: readonly T[], key: (t: T) => string, share: number): T[] {
  if (share >= 100) return [...tables];
  const n = Math.max(1, Math.round((tables.length * share) / 100));
  return tables
    .map((t) => ({ t, h: stableHash(`${id}\n${key(t)}`), k: key(t) }))
    .sort((a, b) => a.h - b.h || (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
    .slice(0, n)
    .map((x) => x.t);
}
