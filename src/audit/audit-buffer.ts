/**
 * Group commit for decision-log appends on hot paths (a gateway authorizing
 * every query). `record()` only pushes the entry into memory and returns at
 * once; a background drain writes everything queued in one INSERT (the
 * decision log's single-statement batch), then the next batch, so the cost of
 * a commit is shared by every decision that arrived while the previous one
 * was running.
 *
 * Durability semantics: an entry is durable when the promise `record()`
 * returns resolves. A caller that must not answer before the audit row is
 * safe (the HTTP routes today) awaits it; a caller that accepts a bounded
 * window of loss on kill -9 (at most `maxBatch` entries or `maxDelayMs`,
 * whichever comes first) does not, and pays only the push on its path.
 * `close()` drains what is queued; after it, entries are written one call at
 * a time (nothing is ever dropped).
 *
 * Wiring: src/workspace/open.ts routes every `state.log()` (decisions,
 * refusals, token events, gateway queries: everything that is not a policy
 * change) through `recordAll` with `maxDelayMs: 0`, i.e. a lone entry is
 * written on the next turn of the event loop and entries that arrive while a
 * commit runs share the next one. Policy changes do not use it: they commit
 * their decision-log row in the change's own transaction (state-store
 * `applyChanges`).
 */
import type { DecisionLogEntry, DecisionResult } from '../store/decision-log.js';
import { DECISION_RESULTS } from '../store/decision-log.js';
import { invalid } from '../errors.js';

/** An entry, or a function that builds it: building then happens in the drain, off the decision path. */
export type LazyEntry = DecisionLogEntry | (() => DecisionLogEntry);

export interface AuditBuffer {
  /** Queues an entry; the promise resolves when it is committed. */
  record(entry: DecisionLogEntry): Promise<void>;
  /** Queues entries in order; the promise resolves when all are committed (rejects if any is refused or fails). */
  recordAll(entries: readonly DecisionLogEntry[]): Promise<void>;
  /**
   * Queues an entry without a promise of its own (the cheapest call on a hot
   * path); `drain()` tells when everything pushed so far is committed. A failed
   * commit of pushed entries is reported through `onError`.
   */
  push(entry: LazyEntry): void;
  /** Resolves when everything queued so far is committed. */
  drain(): Promise<void>;
  /** Entries queued and not yet committed. */
  readonly pending: number;
  close(): Promise<void>;
}

export interface AuditBufferOptions {
  readonly maxBatch?: number;
  readonly onError?: (e: unknown, lost: number) => void;
  /** How long a lone entry may wait for company before it is written anyway; 0: the next turn of the event loop. */
  readonly maxDelayMs?: number;
}

interface Waiter {
  resolve(): void;
  reject(e: unknown): void;
}

const NO_WAITER: Waiter = { resolve: () => {}, reject: () => {} };

export function createAuditBuffer(append: (entries: DecisionLogEntry[]) => Promise<void>, options: AuditBufferOptions = {}): AuditBuffer {
  const maxBatch = options.maxBatch ?? 5_000;
  const maxDelayMs = options.maxDelayMs ?? 5;
  let queue: LazyEntry[] = [];
  let waiters: Waiter[] = [];
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const run = (): Promise<void> => {
    if (running !== undefined) return running;
    running = (async () => {
      while (queue.length > 0) {
        const batch = queue.slice(0, maxBatch);
        const ws = waiters.slice(0, maxBatch);
        queue = queue.slice(batch.length);
        waiters = waiters.slice(ws.length);
        try {
          await append(batch.map((e) => (typeof e === 'function' ? e() : e)));
          for (const w of ws) w.resolve();
        } catch (e) {
          for (const w of ws) w.reject(e);
          const lost = ws.filter((w) => w === NO_WAITER).length;
          if (lost > 0) (options.onError ?? ((err: unknown, n: number) => console.error(`[steward] ${n} audit entries not written: ${(err as Error).message}`)))(e, lost);
        }
      }
    })().finally(() => {
      running = undefined;
    });
    return running;
  };

  // The drain never runs inside record()/push(): the caller that fills a batch
  // does not pay for writing it (it runs on the next turn of the event loop).
  let immediate: NodeJS.Immediate | undefined;
  const schedule = (): void => {
    if (queue.length >= maxBatch || maxDelayMs === 0) {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      immediate ??= setImmediate(() => {
        immediate = undefined;
        void run();
      });
      return;
    }
    timer ??= setTimeout(() => {
      timer = undefined;
      void run();
    }, maxDelayMs);
  };

  const refused = (entry: DecisionLogEntry): Error | undefined =>
    (DECISION_RESULTS as readonly string[]).includes(entry.result as DecisionResult) ? undefined : invalid('result', `unknown decision result \`${String(entry.result)}\``);

  const enqueue = (entry: DecisionLogEntry): Promise<void> => {
    const p = new Promise<void>((resolve, reject) => waiters.push({ resolve, reject }));
    queue.push(entry);
    return p;
  };

  return {
    record(entry) {
      // Refuse a bad entry alone, so it cannot fail the batch it would share.
      const bad = refused(entry);
      if (bad !== undefined) return Promise.reject(bad);
      if (closed) return append([entry]);
      const p = enqueue(entry);
      schedule();
      return p;
    },
    async recordAll(entries) {
      for (const e of entries) {
        const bad = refused(e);
        if (bad !== undefined) throw bad;
      }
      if (entries.length === 0) return;
      if (closed) return append([...entries]);
      const ps = entries.map(enqueue);
      schedule();
      await Promise.all(ps);
    },
    push(entry) {
      if (closed) {
        const lost = (e: unknown): void => (options.onError ?? ((err: unknown) => console.error(`[steward] 1 audit entry not written: ${(err as Error).message}`)))(e, 1);
        void append([typeof entry === 'function' ? entry() : entry]).catch(lost);
        return;
      }
      queue.push(entry);
      waiters.push(NO_WAITER);
      schedule();
    },
    async drain() {
      if (timer !== undefined) clearTimeout(timer);
      if (immediate !== undefined) clearImmediate(immediate);
      timer = undefined;
      immediate = undefined;
      while (queue.length > 0 || running !== undefined) await run();
    },
    get pending() {
      return queue.length;
    },
    async close() {
      closed = true;
      await this.drain();
    },
  };
}
