/**
 * The range of instants Steward accepts and stores, in one place. PostgreSQL
 * takes ISO-8601 text only with a four-digit year, and a JavaScript Date ends
 * at ±275760 years: an instant, or an instant plus a duration, outside
 * 1970-01-01 … 9999-12-31 is refused as input (400) instead of failing on the
 * way to the store (500). Pure, so domain code and the HTTP schemas share it.
 */
import { invalid } from './errors.js';

export const MIN_INSTANT_MS = Date.UTC(1970, 0, 1);
export const MAX_INSTANT_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
/** The longest duration anything takes: ten years, in seconds. */
export const MAX_DURATION_SECONDS = 3650 * 86_400;

export const INSTANT_PATTERN = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:\d{2}))?$/;

/** Milliseconds of an ISO-8601 date (`2027-01-01`, UTC midnight) or date-time with `Z` or an offset, in range; else null. */
export function instantMs(text: string): number | null {
  const t = text.trim();
  const m = INSTANT_PATTERN.exec(t);
  if (m === null) return null;
  const [, y, mo, d, h = '0', mi = '0', s = '0'] = m;
  // Date.parse rolls 2027-02-30 over to March; a real calendar date round-trips.
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (day.getUTCMonth() !== Number(mo) - 1 || day.getUTCDate() !== Number(d) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return null;
  const ms = Date.parse(m[4] !== undefined ? t.toUpperCase() : `${t}T00:00:00Z`);
  return Number.isFinite(ms) && ms >= MIN_INSTANT_MS && ms <= MAX_INSTANT_MS ? ms : null;
}

/**
 * `startMs` plus `seconds`, refused (naming `field`) when the end is past the
 * last instant Steward stores.
 *
 * @example endWithinRange(Date.parse('9999-12-31T00:00:00Z'), 86_400 * 2, 'duration') // throws: ends after 9999-12-31
 */
export function endWithinRange(startMs: number, seconds: number, field: string): number {
  const end = startMs + seconds * 1000;
  if (!(end <= MAX_INSTANT_MS)) throw invalid(field, `ends at ${Number.isFinite(end) && Math.abs(end) <= 8.64e15 ? new Date(end).toISOString() : 'infinity'}, after 9999-12-31T23:59:59.999Z`);
  return end;
}

// ----------------------------------------------------------------- durations

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `90s`, `30m`, `1h`, `1h30m`, `2d` → seconds; null when malformed. */
export function parseDuration(text: string): number | null {
  const t = text.trim().toLowerCase();
  if (t.length === 0 || t.length > 32 || !/^(\d+[smhd])+$/.test(t)) return null;
  let total = 0;
  for (const m of t.matchAll(/(\d+)([smhd])/g)) total += Number(m[1]) * (UNIT_SECONDS[m[2] as string] as number);
  return Number.isSafeInteger(total) && total > 0 ? total : null;
}

export function formatDuration(seconds: number): string {
  const parts: string[] = [];
  let rest = seconds;
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.length === 0 ? '0s' : parts.join('');
}
