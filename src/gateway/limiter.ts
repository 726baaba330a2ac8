/**
 * Concurrency limits for governed queries: at most `global` queries run at
 * once, and at most `perPrincipal` for one principal. A query over either
 * limit waits in a FIFO queue for at most `maxWaitMs`, then is refused with
 * STEWARD_E_BUSY; the queue itself is bounded (`maxQueue`), so a flood is
 * refused at once instead of piling up.
 */
import { StewardError } from '../errors.js';

export interface LimiterOptions {
  readonly global: number;
  readonly perPrincipal: number;
  readonly maxWaitMs: number;
  readonly maxQueue: number;
}

interface Waiter {
  readonly principal: string;
  readonly grant: () => void;
  readonly timer: NodeJS.Timeout;
}

export interface Limiter {
  /** Resolves with a release function once a slot is free; rejects with STEWARD_E_BUSY when the wait is too long. */
  acquire(principal: string, signal?: AbortSignal): Promise<() => void>;
  readonly running: number;
  readonly queued: number;
}

export function createLimiter(options: LimiterOptions): Limiter {
  let running = 0;
  const perPrincipal = new Map<string, number>();
  const queue: Waiter[] = [];

  const fits = (principal: string): boolean => running < options.global && (perPrincipal.get(principal) ?? 0) < options.perPrincipal;

  const take = (principal: string): (() => void) => {
    running++;
    perPrincipal.set(principal, (perPrincipal.get(principal) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      running--;
      const n = (perPrincipal.get(principal) ?? 1) - 1;
      if (n === 0) perPrincipal.delete(principal);
      else perPrincipal.set(principal, n);
      pump();
    };
  };

  const pump = (): void => {
    for (let i = 0; i < queue.length; ) {
      const w = queue[i] as Waiter;
      if (fits(w.principal)) {
        queue.splice(i, 1);
        clearTimeout(w.timer);
        w.grant();
      } else {
        i++;
      }
    }
  };

  return {
    get running() {
      return running;
    },
    get queued() {
      return queue.length;
    },
    acquire(principal, signal) {
      if (fits(principal) && queue.length === 0) return Promise.resolve(take(principal));
      if (queue.length >= options.maxQueue) {
        return Promise.reject(busy(`too many queries are waiting (${queue.length}); try again shortly`));
      }
      return new Promise((resolve, reject) => {
        const remove = (): void => {
          const i = queue.indexOf(waiter);
          if (i >= 0) queue.splice(i, 1);
        };
        const timer = setTimeout(() => {
          remove();
          const mine = perPrincipal.get(principal) ?? 0;
          reject(
            busy(
              mine >= options.perPrincipal
                ? `\`${principal}\` already runs ${mine} queries, the most one principal may run at once; waited ${options.maxWaitMs} ms`
                : `the gateway already runs ${running} queries, the most it runs at once; waited ${options.maxWaitMs} ms`,
            ),
          );
        }, options.maxWaitMs);
        const waiter: Waiter = {
          principal,
          timer,
          grant: () => resolve(take(principal)),
        };
        queue.push(waiter);
        signal?.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            remove();
            reject(new StewardError('STEWARD_E_VALIDATION', 'query cancelled while waiting for a slot'));
          },
          { once: true },
        );
      });
    },
  };
}

function busy(message: string): StewardError {
  return new StewardError('STEWARD_E_BUSY', message);
}
