/**
 * Failed authentications, counted per source address and interval instead of
 * one decision-log row per request, and rate-limited per source address.
 *
 * - Each address gets `limit` failed attempts per interval (fixed windows, one
 *   clock for every address). Past it, requests from that address are refused
 *   with 429 and `Retry-After` until the window ends, before any token is
 *   looked up, so a flood costs neither store reads nor log rows.
 * - When a window ends, each address that failed in it becomes ONE
 *   `auth.token` deny row (an OCSF Authentication Failure) with the count of
 *   failed and refused attempts.
 * - Memory is bounded: at most `maxSources` addresses per window. Past that,
 *   addresses not yet seen share one bucket (`*`) with the same limit, so an
 *   attacker rotating addresses neither grows a map nor escapes the limit (the
 *   price, during such a flood: new addresses share that budget).
 * - IPv6 addresses count per /64, the block one subscriber usually holds.
 *
 * `STEWARD_AUTH_FAILURE_INTERVAL` (seconds, default 60) and
 * `STEWARD_AUTH_FAILURE_LIMIT` (attempts, default 20) tune the defaults.
 * Closing the guard (the workspace does) writes the open window's rows; a
 * killed process loses them (at most one interval).
 *
 * @example
 *   const failures = createAuthFailureGuard({ log: (e) => services.state.log(e) });
 *   const wait = failures.check(address);      // seconds to wait (answer 429), or null
 *   failures.failed(address, 'invalid token'); // counts the failure
 */
import { isIP } from 'node:net';
import type { DecisionLogEntry } from '../store/decision-log.js';
import { StewardError } from '../errors.js';

export const DEFAULT_AUTH_FAILURE_INTERVAL_MS = 60_000;
export const DEFAULT_AUTH_FAILURE_LIMIT = 20;
export const DEFAULT_AUTH_FAILURE_SOURCES = 10_000;
/** The key shared by addresses that arrive once `maxSources` are tracked. */
export const OVERFLOW_SOURCE = '*';

const INTERVAL_ENV = 'STEWARD_AUTH_FAILURE_INTERVAL';
const LIMIT_ENV = 'STEWARD_AUTH_FAILURE_LIMIT';

/** A positive whole number from the environment, else `fallback`; anything else stops the start. */
function positiveFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new StewardError('STEWARD_E_CONFIG', `${name} must be a whole number of at least 1, got \`${raw.slice(0, 40)}\``);
  return n;
}

export interface AuthFailureGuardOptions {
  readonly log: (entries: DecisionLogEntry[]) => Promise<void>;
  readonly intervalMs?: number;
  /** Failed attempts per source address and interval before 429. */
  readonly limit?: number;
  /** Addresses tracked per interval; the rest share one bucket. */
  readonly maxSources?: number;
  readonly now?: () => number;
}

/** What failed: the decision-log action and resource of the row (API tokens, or a source's ingest keys). */
export interface AuthFailureKind {
  readonly action: string;
  readonly resource: string;
}

export const API_TOKEN_FAILURE: AuthFailureKind = Object.freeze({ action: 'auth.token', resource: 'api' });
/** Distinct kinds kept per address and window; more (a caller cycling resource names) share one. */
const MAX_KINDS = 8;

export interface AuthFailureGuard {
  /** Seconds until `source` may try again when it has no attempts left (the refusal is counted), else null. */
  check(source: string): number | null;
  /** Counts one failed authentication of `source`; the budget is per address, whatever the kind. */
  failed(source: string, reason: string, kind?: AuthFailureKind): void;
  /** Writes the rows of every closed window (and, with `all`, of the open one too). */
  flush(options?: { all?: boolean }): Promise<void>;
  /** Addresses tracked in the open window (for tests: proves the bound). */
  readonly size: number;
  /** Stops the periodic flush; writes what is counted. */
  close(): Promise<void>;
}

interface KindTally extends AuthFailureKind {
  failed: number;
  readonly reasons: Set<string>;
}

interface Tally {
  /** The first address counted here (the bucket may be a /64 or the overflow). */
  readonly sample: string;
  failed: number;
  refused: number;
  readonly kinds: Map<string, KindTally>;
}

interface Window {
  readonly start: number;
  readonly tallies: Map<string, Tally>;
}

export function createAuthFailureGuard(options: AuthFailureGuardOptions): AuthFailureGuard {
  const intervalMs = options.intervalMs ?? positiveFromEnv(process.env, INTERVAL_ENV, DEFAULT_AUTH_FAILURE_INTERVAL_MS / 1000) * 1000;
  const limit = options.limit ?? positiveFromEnv(process.env, LIMIT_ENV, DEFAULT_AUTH_FAILURE_LIMIT);
  const maxSources = options.maxSources ?? DEFAULT_AUTH_FAILURE_SOURCES;
  const now = options.now ?? Date.now;
  let open: Window = { start: windowStart(now(), intervalMs), tallies: new Map() };
  let closed: Window[] = [];

  const current = (): Window => {
    const start = windowStart(now(), intervalMs);
    if (start !== open.start) {
      if (open.tallies.size > 0) closed.push(open);
      open = { start, tallies: new Map() };
    }
    return open;
  };
  const tallyOf = (w: Window, source: string, create: boolean): Tally | undefined => {
    // Only failures create entries: a caller that never fails costs no memory.
    const key = sourceKey(source);
    const known = w.tallies.get(key);
    if (known !== undefined || !create) return known ?? (w.tallies.size >= maxSources ? w.tallies.get(OVERFLOW_SOURCE) : undefined);
    const slot = w.tallies.size < maxSources ? key : OVERFLOW_SOURCE;
    let t = w.tallies.get(slot);
    if (t === undefined) {
      t = { sample: source, failed: 0, refused: 0, kinds: new Map() };
      w.tallies.set(slot, t);
    }
    return t;
  };

  const flush = async (flushOptions: { all?: boolean } = {}): Promise<void> => {
    current();
    const windows = flushOptions.all === true && open.tallies.size > 0 ? [...closed, open] : closed;
    if (flushOptions.all === true) open = { start: open.start, tallies: new Map() };
    closed = [];
    const entries = windows.flatMap((w) => [...w.tallies].flatMap(([source, t]) => entriesOf(source, t, w.start, intervalMs)));
    if (entries.length > 0) await options.log(entries);
  };
  // Rows of a window are written soon after it ends, even when no request follows; unref'd so it never holds the process open.
  const timer = setInterval(() => void flush().catch((e: unknown) => console.error('[steward] failed-authentication rows not written', e)), intervalMs);
  timer.unref();

  return {
    check(source) {
      const w = current();
      const t = tallyOf(w, source, false);
      if (t === undefined || t.failed + t.refused < limit) return null;
      t.refused++;
      return Math.max(1, Math.ceil((w.start + intervalMs - now()) / 1000));
    },
    failed(source, reason, kind = API_TOKEN_FAILURE) {
      const t = tallyOf(current(), source, true) as Tally;
      t.failed++;
      let key = `${kind.action}\u0000${kind.resource}`;
      if (!t.kinds.has(key) && t.kinds.size >= MAX_KINDS) key = `${kind.action}\u0000*`;
      let k = t.kinds.get(key);
      if (k === undefined) {
        k = { action: kind.action, resource: key.endsWith('\u0000*') ? '*' : kind.resource, failed: 0, reasons: new Set() };
        t.kinds.set(key, k);
      }
      k.failed++;
      if (k.reasons.size < 4) k.reasons.add(reason);
    },
    flush,
    get size() {
      return current().tallies.size;
    },
    async close() {
      clearInterval(timer);
      await flush({ all: true });
    },
  };
}

function windowStart(t: number, intervalMs: number): number {
  return t - (t % intervalMs);
}

/** One row per address and kind; refusals by the rate limit count on the address's first kind. */
function entriesOf(source: string, t: Tally, start: number, intervalMs: number): DecisionLogEntry[] {
  const from = source === OVERFLOW_SOURCE ? 'addresses beyond the tracked limit' : source;
  return [...t.kinds.values()].map((k, i) => {
    const refused = i === 0 ? t.refused : 0;
    const count = k.failed + refused;
    return {
      actor: 'anonymous',
      action: k.action,
      resource: k.resource,
      result: 'deny',
      reason: `${count} failed authentication(s) from ${from} in ${Math.round(intervalMs / 1000)} s (${[...k.reasons].join('; ')})${refused > 0 ? `, ${refused} refused by the rate limit` : ''}`,
      details: {
        source,
        // `ip` is what the security lake maps to the OCSF source endpoint.
        ...(isIP(t.sample) === 0 ? {} : { ip: t.sample }),
        count,
        failed: k.failed,
        rateLimited: refused,
        windowStart: new Date(start).toISOString(),
        windowEnd: new Date(start + intervalMs).toISOString(),
      },
    };
  });
}

/** IPv4 as is (IPv4-mapped IPv6 unwrapped); IPv6 cut to its /64. */
export function sourceKey(address: string): string {
  const a = address.trim().toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped !== null) return mapped[1] as string;
  if (!a.includes(':')) return a;
  const [head = '', tail = ''] = a.split('%')[0]?.split('::') ?? [];
  const left = head === '' ? [] : head.split(':');
  const right = a.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const groups = a.includes('::') ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
