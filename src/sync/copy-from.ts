/**
 * `COPY … FROM STDIN` over `pg`'s own connection, without pg-copy-streams.
 *
 * `pg` accepts any object with `submit(connection)` as a query (a
 * "submittable"); the client then forwards the protocol messages of that
 * query to it. This one sends the COPY statement, answers CopyInResponse with
 * the data as CopyData messages and CopyDone, and resolves on ReadyForQuery.
 * The caller hands over the rows of one chunk as CSV text, so memory stays
 * bounded by the chunk size.
 */
import type pg from 'pg';

interface CopyConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  sendCopyFail(message: string): void;
}

const CHUNK_BYTES = 64 * 1024;

class CopyFromQuery {
  private error: Error | undefined;
  private rowCount = 0;
  readonly done: Promise<number>;
  private resolve!: (n: number) => void;
  private reject!: (e: Error) => void;
  callback: ((err: Error | null) => void) | undefined;

  constructor(
    private readonly text: string,
    private readonly data: Buffer,
  ) {
    this.done = new Promise<number>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  submit(connection: CopyConnection): void {
    connection.query(this.text);
  }

  handleCopyInResponse(connection: CopyConnection): void {
    for (let i = 0; i < this.data.length; i += CHUNK_BYTES) connection.sendCopyFromChunk(this.data.subarray(i, i + CHUNK_BYTES));
    connection.endCopyFrom();
  }

  handleCommandComplete(msg: { text?: string }): void {
    const m = /COPY (\d+)/.exec(msg.text ?? '');
    if (m) this.rowCount = Number(m[1]);
  }

  handleError(err: Error): void {
    this.error = err;
  }

  handleReadyForQuery(): void {
    if (this.error !== undefined) this.reject(this.error);
    else this.resolve(this.rowCount);
    this.callback?.(this.error ?? null);
  }

  // the protocol messages a COPY FROM never produces; present so an unexpected one is ignored, not fatal
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handlePortalSuspended(): void {}
  handleEmptyQuery(): void {}
  handleCopyData(): void {}
}

/** Runs `COPY <sql> FROM STDIN` with the given data; returns the number of rows copied. */
export function copyFrom(client: pg.Client, copySql: string, data: Buffer): Promise<number> {
  const q = new CopyFromQuery(copySql, data);
  (client as unknown as { query(q: CopyFromQuery): void }).query(q);
  return q.done;
}

/** One CSV field: quoted when it needs to be; null is an unquoted empty field (COPY's CSV NULL). */
export function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  // an empty string must be quoted, or COPY reads it as NULL
  if (s === '' || /[",\n\r]/.test(s) || s.trim() !== s) return `"${s.replaceAll('"', '""')}"`;
  return s;
}
