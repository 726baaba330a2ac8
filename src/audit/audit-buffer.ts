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
  /**
   * `push(() => build(a, b))` without the closure: the two values the caller
   * already holds (a request and its decision) are queued as they are and
   * `build` runs in the drain. On a path making millions of decisions the
   * closure is what costs: every queued one survives the young-generation
   * collections until its batch is written.
   */
  pushWith<A, B>(build: (a: A, b: B) => DecisionLogEntry, a: A, b: B): void;
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

type Build = (a: unknown, b: unknown) => DecisionLogEntry;
/** Queue slots of a ready entry (`[AS_IS, entry, undefined]`) and of a closure (`[CALL, closure, undefined]`). */
const AS_IS: Build = (a) => a as DecisionLogEntry;
const CALL: Build = (a) => (a as () => DecisionLogEntry)();

/**
 * The queue: three slots per entry (builder, a, b) in fixed-size chunks, and
 * the waiters of the entries that have one (`record`, `recordAll`) apart, by
 * sequence number. Queuing a pushed entry writes three slots: no allocation,
 * no copying as the queue grows.
 */
const CHUNK = 4096;

class Queue {
  private chunks: unknown[][] = [new Array<unknown>(3 * CHUNK)];
  /** Entries ever added / ever taken; entry k lives in chunk floor((k - base) / CHUNK). */
  private added = 0;
  private taken = 0;
  private base = 0;
  private waiters: Waiter[] = [];
  private waiterSeq: number[] = [];
  private waiterHead = 0;

  get length(): number {
    return this.added - this.taken;
  }

  add(build: Build, a: unknown, b: unknown, waiter: Waiter | undefined): void {
    const k = this.added - this.base;
    let chunk = this.chunks[(k / CHUNK) | 0];
    if (chunk === undefined) this.chunks.push((chunk = new Array<unknown>(3 * CHUNK)));
    const at = 3 * (k % CHUNK);
    chunk[at] = build;
    chunk[at + 1] = a;
    chunk[at + 2] = b;
    if (waiter !== undefined) {
      this.waiters.push(waiter);
      this.waiterSeq.push(this.added);
    }
    this.added++;
  }

  /** Removes up to `n` entries from the front: their slots (builder, a, b per entry), their waiters and how many have none. */
  take(n: number): { slots: unknown[]; waiters: Waiter[]; unwaited: number } {
    const count = Math.min(n, this.length);
    const slots: unknown[] = [];
    for (let i = 0; i < count; i++) {
      const k = this.taken + i - this.base;
      const chunk = this.chunks[(k / CHUNK) | 0] as unknown[];
      const at = 3 * (k % CHUNK);
      slots.push(chunk[at], chunk[at + 1], chunk[at + 2]);
    }
    this.taken += count;
    const waiters: Waiter[] = [];
    while (this.waiterHead < this.waiters.length && (this.waiterSeq[this.waiterHead] as number) < this.taken) waiters.push(this.waiters[this.waiterHead++] as Waiter);
    // Drop consumed chunks (their slots would keep the queued values alive) and consumed waiters.
    while (this.taken - this.base >= CHUNK) {
      this.chunks.shift();
      this.base += CHUNK;
    }
    if (this.chunks.length === 0) this.chunks.push(new Array<unknown>(3 * CHUNK));
    if (this.waiterHead === this.waiters.length) {
      this.waiters = [];
      this.waiterSeq = [];
      this.waiterHead = 0;
    }
    return { slots, waiters, unwaited: count - waiters.length };
  }
}

/** The entries queued in `slots`, built now (a builder that throws fails its batch). */
function build(slots: unknown[]): DecisionLogEntry[] {
  const out: DecisionLogEntry[] = [];
  for (let i = 0; i < slots.length; i += 3) out.push((slots[i] as Build)(slots[i + 1], slots[i + 2]));
  return out;
}

export function createAuditBuffer(append: (entries: DecisionLogEntry[]) => Promise<void>, options: AuditBufferOptions = {}): AuditBuffer {
  const maxBatch = options.maxBatch ?? 5_000;
  const maxDelayMs = options.maxDelayMs ?? 5;
  const queue = new Queue();
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const report = (e: unknown, lost: number): void =>
    (options.onError ?? ((err: unknown, n: number) => console.error(`[steward] ${n} audit entr${n === 1 ? 'y' : 'ies'} not written: ${(err as Error).message}`)))(e, lost);

  const run = (): Promise<void> => {
    if (running !== undefined) return running;
    running = (async () => {
      while (queue.length > 0) {
        const { slots, waiters: ws, unwaited } = queue.take(maxBatch);
        try {
          await append(build(slots));
          for (const w of ws) w.resolve();
        } catch (e) {
          for (const w of ws) w.reject(e);
          if (unwaited > 0) report(e, unwaited);
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

  const enqueue = (entry: DecisionLogEntry): Promise<void> => new Promise<void>((resolve, reject) => queue.add(AS_IS, entry, undefined, { resolve, reject }));

  const pushed = (make: Build, a: unknown, b: unknown): void => {
    if (closed) {
      let entries: DecisionLogEntry[];
      try {
        entries = build([make, a, b]);
      } catch (e) {
        report(e, 1);
        return;
      }
      void append(entries).catch((e: unknown) => report(e, 1));
      return;
    }
    queue.add(make, a, b, undefined);
    schedule();
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
      if (typeof entry === 'function') pushed(CALL, entry, undefined);
      else pushed(AS_IS, entry, undefined);
    },
    pushWith(make, a, b) {
      // The queue is heterogeneous; `make` only ever receives the `a` and `b` it was queued with.
      pushed(make as Build, a, b);
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
