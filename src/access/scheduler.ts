/**
 * The loop that drives durable timers: every tick it runs due timers (rows in
 * `steward.access_timers`), delivers the notification outbox, and now and then
 * runs the reconciliation sweep. Nothing is kept in memory between ticks, so
 * a restarted process picks up overdue work on its first tick, and any number
 * of processes may run the loop on one PostgreSQL (rows are claimed with
 * `FOR UPDATE SKIP LOCKED`).
 */
import type { AccessService } from './access-service.js';

/**
 * Other durable timers that ride on this loop (access experiments): due work
 * each tick, a reconciliation sweep with access's, and their next due time.
 */
export interface TimedWork {
  runDue(): Promise<unknown>;
  sweep(): Promise<unknown>;
  nextDue(): Promise<number | null>;
}

export interface SchedulerOptions {
  readonly also?: readonly TimedWork[];
  /** Longest sleep between ticks (default 250 ms): the expiry lag when timers are few. */
  readonly intervalMs?: number;
  /** How often the reconciliation sweep runs (default 30 s); it also runs on the first tick. */
  readonly sweepEveryMs?: number;
  readonly onError?: (e: unknown) => void;
}

export interface Scheduler {
  /** Runs one tick now (tests and the embedded CLI use this). */
  tick(): Promise<void>;
  stop(): Promise<void>;
}

export function startAccessScheduler(access: AccessService, options: SchedulerOptions = {}): Scheduler {
  const interval = options.intervalMs ?? 250;
  const sweepEvery = options.sweepEveryMs ?? 30_000;
  const onError = options.onError ?? ((e: unknown) => process.stderr.write(`steward access scheduler: ${(e as Error)?.message ?? String(e)}\n`));
  const also = options.also ?? [];
  let lastSweep = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const tick = async (): Promise<void> => {
    const sweepNow = Date.now() - lastSweep >= sweepEvery;
    try {
      await access.runDue();
      if (Date.now() - lastSweep >= sweepEvery) {
        lastSweep = Date.now();
        await access.sweep();
      }
    } catch (e) {
      onError(e);
    }
    for (const w of also) {
      try {
        await w.runDue();
        if (sweepNow) await w.sweep();
      } catch (e) {
        onError(e);
      }
    }
    try {
      await access.deliverOutbox();
    } catch (e) {
      onError(e);
    }
  };

  const loop = (): void => {
    if (stopped) return;
    running = tick().finally(() => {
      running = undefined;
      if (stopped) return;
      // Sleep until the next timer is due, but never longer than the interval (another process may add one).
      Promise.all([access.nextDue(), ...also.map((w) => w.nextDue())])
        .then((all) => all.reduce<number | null>((min, d) => (d === null ? min : min === null ? d : Math.min(min, d)), null))
        .then((due) => (due === null ? interval : Math.max(5, Math.min(interval, due - Date.now()))))
        .catch(() => interval)
        .then((ms) => {
          if (!stopped) {
            timer = setTimeout(loop, ms);
            timer.unref();
          }
        });
    });
  };
  loop();

  return {
    tick: async () => {
      await running;
      await tick();
    },
    stop: async () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await running;
    },
  };
}

/**
 * What a workspace runs for access: a scheduler loop in servers; in a
 * one-shot embedded CLI command, one catch-up tick at open (overdue timers run
 * at once) and a best-effort outbox delivery at close.
 */
export function startAccessRuntime(access: AccessService, purpose: 'server' | 'cli', options: SchedulerOptions = {}): { ready: Promise<void>; stop(): Promise<void> } {
  if (purpose === 'server' && process.env['STEWARD_ACCESS_SCHEDULER'] !== 'off') {
    const s = startAccessScheduler(access, options);
    return { ready: Promise.resolve(), stop: () => s.stop().finally(() => access.close()) };
  }
  const ready = access
    .runDue()
    .then(() => Promise.all((options.also ?? []).map((w) => w.runDue())))
    .then(
      () => undefined,
      () => undefined,
    );
  return {
    ready,
    stop: async () => {
      await ready;
      await Promise.race([access.deliverOutbox().catch(() => 0), new Promise((r) => setTimeout(r, 3000).unref())]);
      access.close();
    },
  };
}
