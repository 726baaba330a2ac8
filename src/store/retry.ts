/**
 * Runs a transaction again when it lost a race it can win on a second try:
 * the policy version moved under it (the state store's optimistic check), or
 * PostgreSQL chose it as the victim of a deadlock or a serialization failure.
 * Each retry waits a short random time, longer each attempt, so racing servers
 * spread out instead of colliding again.
 */
import { StewardError } from '../errors.js';
import { sqlState } from './db.js';

const MAX_RETRIES = 8;
const RETRYABLE_SQLSTATES = new Set(['40001', '40P01']);

export function isRetryable(e: unknown): boolean {
  return (e instanceof StewardError && e.code === 'STEWARD_E_CONFLICT' && e.message.startsWith('the policy changed')) || RETRYABLE_SQLSTATES.has(sqlState(e) ?? '');
}

/** `attempt(n)` until it succeeds, or fails with an error that is not retryable, or MAX_RETRIES retries failed. */
export async function withRetries<T>(attempt: (n: number) => Promise<T>): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (e) {
      if (!isRetryable(e) || n >= MAX_RETRIES) throw e;
      await new Promise((r) => setTimeout(r, Math.random() * 20 * (n + 1)));
    }
  }
}
