/**
 * Tells every server on one PostgreSQL that something it caches changed.
 *
 * Writers call `notifyChange(tx, topic)` inside the transaction that makes the
 * change: PostgreSQL delivers a NOTIFY only at commit (and never for a rolled
 * back one), so a listener hears of exactly the changes that happened. Each
 * server holds one extra connection that LISTENs (`startChangeFeed`) and calls
 * the handlers of the topic it hears.
 *
 * Notifications are fire-and-forget: one sent while the listening connection
 * was down is lost. So when the connection drops the feed falls back to
 * polling (every handler every `pollMs`, as if everything had changed) and
 * reconnects with exponential backoff; once listening again it calls every
 * handler once more for what it missed in between. A heartbeat query finds a
 * connection that died without closing (a network partition).
 *
 * Handlers must therefore be cheap and idempotent ("look again"), never
 * "apply this delta".
 *
 * The embedded store (PGlite) has one process, and its feed (`embeddedFeed`)
 * hears the same NOTIFYs inside it. PGlite delivers them as the transaction
 * commits, before the writer's call returns, so the feed is `synchronous`:
 * a cache cleared by its handler is never read stale in this process, and
 * may be trusted until the next notification without asking the store.
 */
import type pg from 'pg';
import type { Db } from './db.js';

/** The one channel Steward uses; the payload is the topic. */
export const CHANGE_CHANNEL = 'steward_changes';

/**
 * `state`: the policy version moved (state-store.ts, every writer).
 * `embed-keys`: an embed signing key was created or rotated (embed/signing-keys.ts).
 * `tokens`: an API token was revoked (token-store.ts).
 */
export type ChangeTopic = 'state' | 'embed-keys' | 'tokens';

const TOPICS: readonly ChangeTopic[] = ['state', 'embed-keys', 'tokens'];

/** Announces a change to every listening server when `tx` commits. */
export async function notifyChange(tx: { query(sql: string, params?: readonly unknown[]): Promise<unknown> }, topic: ChangeTopic): Promise<void> {
  await tx.query('SELECT pg_notify($1, $2)', [CHANGE_CHANNEL, topic]);
}

export interface ChangeFeedStatus {
  /** `listening`: notifications arrive; `polling`: the connection is down, handlers run every pollMs; `in-process`: embedded store. */
  readonly mode: 'listening' | 'polling' | 'in-process';
  /** Times the listening connection was (re)established. */
  readonly connects: number;
  readonly notifications: number;
}

export interface ChangeFeed {
  /** Runs `handler` when `topic` changes (and on every poll or reconnect). */
  on(topic: ChangeTopic, handler: () => void): void;
  status(): ChangeFeedStatus;
  close(): Promise<void>;
  /**
   * True when every commit that notifies runs its handlers before the commit
   * returns to its writer, and no other process writes (the embedded store):
   * what a handler clears cannot be read stale, so a cache may be trusted
   * until the next notification without asking the store.
   */
  readonly synchronous: boolean;
}

/** Handlers by topic; a handler that throws is reported and does not stop the others. */
function topicHandlers(warn: (message: string) => void): { on: ChangeFeed['on']; fire(topic: ChangeTopic): void } {
  const handlers = new Map<ChangeTopic, (() => void)[]>(TOPICS.map((t) => [t, []]));
  return {
    on: (topic, handler) => void handlers.get(topic)?.push(handler),
    fire(topic) {
      for (const h of handlers.get(topic) ?? []) {
        try {
          h();
        } catch (e) {
          warn(`change handler for \`${topic}\` failed: ${(e as Error).message}`);
        }
      }
    },
  };
}

/** A feed that never fires: a one-shot command on a shared PostgreSQL, which lives for one call. */
export function inProcessFeed(): ChangeFeed {
  return { on: () => undefined, status: () => ({ mode: 'in-process', connects: 0, notifications: 0 }), close: async () => undefined, synchronous: false };
}

/** The embedded store's feed: its own NOTIFYs, heard as each transaction commits (see the module comment). */
export async function embeddedFeed(db: Pick<Db, 'listen'>): Promise<ChangeFeed> {
  if (db.listen === undefined) return inProcessFeed();
  const topics = topicHandlers((m) => console.error(`[steward] ${m}`));
  let notifications = 0;
  const unlisten = await db.listen(CHANGE_CHANNEL, (payload) => {
    notifications++;
    if (TOPICS.includes(payload as ChangeTopic)) topics.fire(payload as ChangeTopic);
  });
  return {
    on: topics.on,
    status: () => ({ mode: 'in-process', connects: 0, notifications }),
    close: async () => {
      await unlisten().catch(() => undefined);
    },
    synchronous: true,
  };
}

export interface ChangeFeedOptions {
  readonly databaseUrl: string;
  /** Fallback polling interval while not listening (default 1000 ms: the bound on staleness). */
  readonly pollMs?: number;
  /** First reconnect delay, doubled per failure up to `maxBackoffMs` (defaults 100 ms and 5 s). */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** How often the listening connection is checked with a query (default 10 s). */
  readonly heartbeatMs?: number;
  /** Where connection problems are said (default stderr); called once per outage, not per retry. */
  readonly warn?: (message: string) => void;
}

/**
 * Starts listening on a dedicated connection. Resolves at once: until the
 * first connection is up the feed polls, so a server starts even while
 * PostgreSQL is briefly unreachable.
 */
export function startChangeFeed(options: ChangeFeedOptions): ChangeFeed {
  const pollMs = options.pollMs ?? 1000;
  const minBackoff = options.minBackoffMs ?? 100;
  const maxBackoff = options.maxBackoffMs ?? 5000;
  const heartbeatMs = options.heartbeatMs ?? 10_000;
  const warn = options.warn ?? ((m: string) => console.error(`[steward] ${m}`));
  let client: pg.Client | undefined;
  let mode: 'listening' | 'polling' = 'polling';
  let connects = 0;
  let notifications = 0;
  let failures = 0;
  let closed = false;
  let pollTimer: NodeJS.Timeout | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let heartbeatTimer: NodeJS.Timeout | undefined;

  const topics = topicHandlers(warn);
  const fire = (topic: ChangeTopic): void => topics.fire(topic);
  const fireAll = (): void => TOPICS.forEach(fire);

  const startPolling = (): void => {
    mode = 'polling';
    pollTimer ??= setInterval(fireAll, pollMs);
    pollTimer.unref();
  };
  const stopPolling = (): void => {
    if (pollTimer !== undefined) clearInterval(pollTimer);
    pollTimer = undefined;
  };

  /** The connection is gone (error, end, failed heartbeat): poll, and try again after a backoff. */
  const dropped = (c: pg.Client, reason: string): void => {
    if (client !== c) return; // already handled
    client = undefined;
    if (heartbeatTimer !== undefined) clearInterval(heartbeatTimer);
    heartbeatTimer = undefined;
    c.removeAllListeners('notification');
    void c.end().catch(() => undefined);
    if (closed) return;
    if (mode === 'listening') warn(`policy change notifications lost (${reason}); polling every ${pollMs} ms until reconnected`);
    startPolling();
    scheduleConnect();
  };

  const scheduleConnect = (): void => {
    if (closed || retryTimer !== undefined) return;
    const delay = failures === 0 ? 0 : Math.min(maxBackoff, minBackoff * 2 ** (failures - 1));
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void connect();
    }, delay);
    retryTimer.unref();
  };

  const connect = async (): Promise<void> => {
    const { default: driver } = await import('pg');
    const c = new driver.Client({ connectionString: options.databaseUrl, application_name: 'steward-change-feed', connectionTimeoutMillis: 5000, keepAlive: true });
    // Registered before connecting: an error event without a listener would crash the process.
    c.on('error', (e) => dropped(c, e.message));
    c.on('end', () => dropped(c, 'connection closed'));
    try {
      await c.connect();
      await c.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch (e) {
      c.removeAllListeners('end');
      void c.end().catch(() => undefined);
      failures++;
      if (failures === 1 && connects > 0) warn(`cannot listen for policy changes yet: ${(e as Error).message}`);
      scheduleConnect();
      return;
    }
    if (closed) {
      await c.end().catch(() => undefined);
      return;
    }
    client = c;
    failures = 0;
    connects++;
    c.on('notification', (n) => {
      notifications++;
      if (TOPICS.includes(n.payload as ChangeTopic)) fire(n.payload as ChangeTopic);
    });
    mode = 'listening';
    stopPolling();
    heartbeatTimer = setInterval(() => {
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('heartbeat timed out')), Math.max(1000, heartbeatMs / 2)).unref());
      Promise.race([c.query('SELECT 1'), timeout]).catch((e: unknown) => dropped(c, (e as Error).message));
    }, heartbeatMs);
    heartbeatTimer.unref();
    // Whatever changed while nobody was listening (before the first connect too).
    fireAll();
  };

  startPolling();
  scheduleConnect();

  return {
    on: topics.on,
    status: () => ({ mode, connects, notifications }),
    synchronous: false,
    async close() {
      closed = true;
      stopPolling();
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      if (heartbeatTimer !== undefined) clearInterval(heartbeatTimer);
      const c = client;
      client = undefined;
      if (c !== undefined) {
        c.removeAllListeners('end');
        await c.end().catch(() => undefined);
      }
    },
  };
}
