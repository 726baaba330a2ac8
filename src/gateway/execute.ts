/**
 * Step 4 of the gateway pipeline: run a plan in the sandbox and stream its
 * rows, under the query's timeout and row cap, and log how it ended.
 *
 * A run owns one connection of the current sandbox (`sandbox.ts`) and the
 * concurrency slot the caller acquired; both are freed exactly once, however
 * the query ends (read to the end, failed, timed out, cancelled, or dropped by
 * a reader that stopped early). DuckDB's errors are cut to their first line
 * (the rest echoes the rewritten SQL).
 */
import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api';
import { StewardError, isStewardError } from '../errors.js';
import { refusal } from './analyze.js';
import { messageOf, type Recorder } from './query-log.js';
import { loadRemote } from './remote.js';
import type { Sandbox, SandboxPool } from './sandbox.js';
import type { QueryPlan, QueryRequest, QueryStream, QuerySummary, RemoteTables } from './types.js';

export interface ExecuteInput {
  readonly plan: QueryPlan;
  readonly request: QueryRequest;
  /** `performance.now()` when the request arrived: logged durations include planning and waiting for a slot. */
  readonly started: number;
  readonly maxRows: number;
  readonly timeoutMs: number;
  /** Frees the concurrency slot; called once, when the query ends. */
  readonly release: () => void;
  readonly sandboxes: SandboxPool;
  readonly record: Recorder;
  /** Where the plan's remote tables come from (remote.ts). */
  readonly remote?: RemoteTables;
}

type Streaming = Awaited<ReturnType<DuckDBConnection['stream']>>;

/** One query's hold on the sandbox: its connection, timer and slot, and why it was stopped. */
interface Run {
  readonly stop: 'timeout' | 'cancel' | null;
  readonly finished: boolean;
  /** Enters the sandbox, connects and arms the timeout and the caller's abort signal. */
  connect(): Promise<{ box: Sandbox; con: DuckDBConnection }>;
  cancel(why: 'timeout' | 'cancel'): void;
  /** Frees the connection, the sandbox and the slot (once). */
  cleanup(): void;
  /** The error to report for `e`, given why the run was stopped. */
  fail(e: unknown): StewardError;
  /**
   * The error to report for a failure while DuckDB read the lake: a file torn by a writer mid-query fails in
   * DuckDB as bad input, but the user's query was fine, so a changed file is a conflict to retry.
   */
  readFailure(e: unknown, files: readonly string[]): Promise<StewardError>;
}

/** Starts the plan and returns its open stream; a failure to start is logged and thrown. */
export async function execute(input: ExecuteInput): Promise<QueryStream> {
  const run = createRun(input);
  const result = await start(run, input);
  return resultStream(run, input, result);
}

function createRun(input: ExecuteInput): Run {
  const { request: req, plan: p, timeoutMs } = input;
  let con: DuckDBConnection | undefined;
  let box: Sandbox | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stop: Run['stop'] = null;
  let finished = false;
  const onAbort = (): void => cancel('cancel');
  const cancel = (why: 'timeout' | 'cancel'): void => {
    if (finished) return;
    stop ??= why;
    con?.interrupt();
  };
  return {
    get stop() {
      return stop;
    },
    get finished() {
      return finished;
    },
    async connect() {
      box = await input.sandboxes.enter(p.snapshot.world, p.files);
      con = await box.connect();
      timer = setTimeout(() => cancel('timeout'), timeoutMs);
      req.signal?.addEventListener('abort', onAbort, { once: true });
      if (req.signal?.aborted === true) cancel('cancel');
      return { box, con };
    },
    cancel,
    cleanup() {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
      try {
        con?.closeSync();
      } catch {
        // already closed
      }
      box?.leave();
      input.release();
    },
    fail(e) {
      if (stop === 'timeout') return new StewardError('STEWARD_E_TIMEOUT', `query exceeded the time limit of ${timeoutMs} ms and was stopped`);
      if (stop === 'cancel') return new StewardError('STEWARD_E_TIMEOUT', 'query cancelled');
      return runtimeError(e);
    },
    async readFailure(e, files) {
      if (isStewardError(e) && stop === null) return e;
      const err = this.fail(e);
      if (err.code !== 'STEWARD_E_VALIDATION' || box === undefined || files.length === 0) return err;
      const same = await box.unchanged(files).catch(() => false);
      return same ? err : new StewardError('STEWARD_E_CONFLICT', 'the lake files of this query changed while it ran: run it again');
    },
  };
}

async function start(run: Run, input: ExecuteInput): Promise<Streaming> {
  const { plan: p, request: req } = input;
  try {
    const { box, con } = await run.connect();
    if (p.remote !== undefined && p.remote.length > 0) {
      // Fetched on the query's time: the timeout and the caller's cancel stop the fetch too.
      const signals = [AbortSignal.timeout(input.timeoutMs), ...(req.signal === undefined ? [] : [req.signal])];
      await loadRemote(con, p.remote, input.remote, AbortSignal.any(signals));
    }
    // Prepared directly, not through `con.stream(sql)`, which first splits the text into statements (one more
    // round trip and parse): the rewrite is one statement, and `prepare` refuses more than one.
    const prepared = await con.prepare(p.sql);
    let result: Streaming;
    try {
      if (p.binds !== undefined) prepared.bind(p.binds);
      result = await prepared.stream();
    } finally {
      prepared.destroySync();
    }
    // The footers are read: a file rewritten since `enter` checked it may have been read through the cache.
    if (!(await box.unchanged(p.files))) {
      throw new StewardError('STEWARD_E_CONFLICT', 'the lake files of this query changed while it started: run it again');
    }
    return result;
  } catch (e) {
    const err = await run.readFailure(e, p.files);
    run.cleanup();
    const refused = err.code === 'STEWARD_E_FORBIDDEN';
    await input.record(req, refused ? 'refused' : 'failed', p, performance.now() - input.started, 0, messageOf(err));
    throw err;
  }
}

/** How far a stream was read, and how its summary settles. */
interface Reading {
  rowCount: number;
  truncated: boolean;
  consumed: boolean;
  readonly settle: (s: QuerySummary) => void;
  readonly reject: (e: unknown) => void;
}

function resultStream(run: Run, input: ExecuteInput, result: Streaming): QueryStream {
  const { plan: p, request: req } = input;
  const names = result.deduplicatedColumnNames();
  const columns = names.map((name, i) => ({ name, type: result.columnType(i).toString() }));
  let settle!: (s: QuerySummary) => void;
  let reject!: (e: unknown) => void;
  const summary = new Promise<QuerySummary>((res, rej) => {
    settle = res;
    reject = rej;
  });
  summary.catch(() => undefined);
  const reading: Reading = { rowCount: 0, truncated: false, consumed: false, settle, reject };
  return {
    columns,
    tables: p.tables,
    batches: () => readBatches(run, input, result, reading),
    cancel: () => {
      run.cancel('cancel');
      if (!reading.consumed) {
        reading.consumed = true;
        run.cleanup();
        void input.record(req, 'failed', p, performance.now() - input.started, 0, 'query cancelled').catch(() => undefined);
        reject(new StewardError('STEWARD_E_TIMEOUT', 'query cancelled'));
      }
    },
    summary,
  };
}

async function* readBatches(run: Run, input: ExecuteInput, result: Streaming, r: Reading): AsyncGenerator<DuckDBValue[][]> {
  const { plan: p, request: req, maxRows, started } = input;
  if (r.consumed) throw new StewardError('STEWARD_E_INTERNAL', 'a result can be read once');
  r.consumed = true;
  try {
    while (r.rowCount < maxRows || maxRows === 0) {
      if (run.stop !== null) throw run.fail(null);
      const chunk = await result.fetchChunk();
      if (chunk === null || chunk.rowCount === 0) break;
      let rows = chunk.getRows();
      if (r.rowCount + rows.length > maxRows) {
        rows = rows.slice(0, maxRows - r.rowCount);
        r.truncated = true;
      }
      r.rowCount += rows.length;
      if (rows.length > 0) yield rows;
      if (r.truncated) break;
    }
    // An interrupted DuckDB stream may end with an empty chunk instead of an error: a cancel or timeout is still that.
    if (run.stop !== null) throw run.fail(null);
    if (r.rowCount >= maxRows && !r.truncated) {
      // Exactly maxRows so far: one more chunk tells whether the result was cut.
      const more = await result.fetchChunk();
      r.truncated = more !== null && more.rowCount > 0;
    }
    const durationMs = performance.now() - started;
    run.cleanup();
    await input.record(req, 'allowed', p, durationMs, r.rowCount, r.truncated ? `${r.rowCount} row(s), truncated` : `${r.rowCount} row(s)`);
    r.settle({ rowCount: r.rowCount, truncated: r.truncated, durationMs });
  } catch (e) {
    const err = isStewardError(e) ? e : await run.readFailure(e, p.files);
    run.cleanup();
    await input.record(req, err.code === 'STEWARD_E_FORBIDDEN' ? 'refused' : 'failed', p, performance.now() - started, r.rowCount, messageOf(err)).catch(() => undefined);
    r.reject(err);
    throw err;
  } finally {
    if (!run.finished) {
      // The reader stopped early (client went away): free the connection now.
      run.cancel('cancel');
      run.cleanup();
      await input.record(req, 'failed', p, performance.now() - started, r.rowCount, 'query cancelled').catch(() => undefined);
      r.reject(new StewardError('STEWARD_E_TIMEOUT', 'query cancelled'));
    }
  }
}

/**
 * DuckDB's error for a failed query, cut to its first line: the rest echoes
 * the rewritten SQL (file paths, predicates). A hidden column never gets here:
 * `authorizeQuery` refuses a query naming one, from the tree.
 */
function runtimeError(e: unknown): StewardError {
  const text = e instanceof Error ? e.message : String(e);
  const first = (text.split('\n')[0] ?? text).trim();
  if (first.startsWith('Binder Error')) return new StewardError('STEWARD_E_VALIDATION', scrub(first));
  if (first.startsWith('INTERRUPT')) return new StewardError('STEWARD_E_TIMEOUT', 'query interrupted');
  if (first.startsWith('Out of Memory')) return new StewardError('STEWARD_E_VALIDATION', `query ran out of memory: ${scrub(first)}`);
  if (first.startsWith('Permission Error')) return refusal('the query tried to read a file or setting it may not: only catalog tables can be read');
  return new StewardError('STEWARD_E_VALIDATION', `query failed: ${scrub(first)}`);
}

/** Generated CTE names are ours, not the user's. */
function scrub(message: string): string {
  return message.replace(/__steward_cte_\d+/g, 'cte');
}
