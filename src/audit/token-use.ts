/**
 * Successful API-token use as security events, without one per request: the
 * first accepted use of a token in this process, then at most one more per
 * token per interval (default 5 minutes), each an `auth.token` decision-log
 * row with result `allow` (an OCSF Authentication Logon with status Success in
 * the security lake). Failures are not sampled: every one is logged by the
 * caller.
 *
 * The interval is `STEWARD_AUDIT_TOKEN_USE_INTERVAL` in seconds (`0`: every
 * use; `off`: never). Memory is one timestamp per token seen within the last
 * interval.
 *
 * @example
 *   const tokenUse = createTokenUseAudit({ log: (e) => services.state.log(e) });
 *   await tokenUse.accepted({ tokenId: found.id, principal: 'user:alice', role: 'user' });
 */
import type { DecisionLogEntry } from '../store/decision-log.js';
import { StewardError } from '../errors.js';

export const DEFAULT_TOKEN_USE_INTERVAL_MS = 5 * 60_000;
const ENV = 'STEWARD_AUDIT_TOKEN_USE_INTERVAL';

export interface TokenUse {
  readonly tokenId: string;
  readonly principal: string;
  readonly role: string;
}

export interface TokenUseAudit {
  /** Logs the use when this token has not been logged within the interval; resolves once logged (or at once when not). */
  accepted(use: TokenUse): Promise<void>;
}

export interface TokenUseAuditOptions {
  readonly log: (entries: DecisionLogEntry[]) => Promise<void>;
  /** Milliseconds between two success events of one token; null: never. Default: the environment, else 5 minutes. */
  readonly intervalMs?: number | null;
  readonly now?: () => number;
}

/** The interval from `STEWARD_AUDIT_TOKEN_USE_INTERVAL` (seconds, or `off`). */
export function tokenUseIntervalFromEnv(env: NodeJS.ProcessEnv = process.env): number | null {
  const raw = env[ENV]?.trim();
  if (raw === undefined || raw === '') return DEFAULT_TOKEN_USE_INTERVAL_MS;
  if (raw.toLowerCase() === 'off') return null;
  const s = Number(raw);
  if (!Number.isFinite(s) || s < 0) throw new StewardError('STEWARD_E_CONFIG', `${ENV} must be a number of seconds or \`off\`, got \`${raw}\``);
  return s * 1000;
}

export function createTokenUseAudit(options: TokenUseAuditOptions): TokenUseAudit {
  const interval = options.intervalMs === undefined ? tokenUseIntervalFromEnv() : options.intervalMs;
  const now = options.now ?? Date.now;
  const last = new Map<string, number>();
  let sweptAt = now();
  return {
    async accepted(use) {
      if (interval === null) return;
      const t = now();
      const before = last.get(use.tokenId);
      if (before !== undefined && t - before < interval) return;
      // Claim the slot before the write, so concurrent requests of one token log once.
      last.set(use.tokenId, t);
      if (t - sweptAt >= interval && last.size > 1) {
        for (const [k, v] of last) if (t - v >= interval) last.delete(k);
        sweptAt = t;
      }
      try {
        await options.log([
          {
            actor: use.principal,
            action: 'auth.token',
            resource: 'api',
            result: 'allow',
            reason: interval === 0 ? 'token accepted' : `token accepted (first use in this process or in ${Math.round(interval / 1000)} s)`,
            details: { token: use.tokenId, role: use.role },
          },
        ]);
      } catch (e) {
        // Not logged: let the next use try again.
        if (last.get(use.tokenId) === t) last.delete(use.tokenId);
        throw e;
      }
    },
  };
}
