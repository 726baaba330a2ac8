/**
 * Reads a query's NDJSON result (src/gateway/formats.ts) as it arrives: the
 * columns first, then rows in batches, then the summary or the error. The
 * grid is refreshed at most every `FLUSH_MS`, so 100k rows do not mean 100k
 * renders.
 */
import { request } from '../api.js';

export interface StreamColumn {
  readonly name: string;
  readonly type: string;
}

export interface StreamSummary {
  readonly rowCount: number;
  readonly truncated: boolean;
  readonly durationMs: number;
}

export interface StreamHandlers {
  readonly onColumns: (columns: readonly StreamColumn[], tables: readonly string[]) => void;
  /** `rows` is the same array each time, grown; `count` is its new length. */
  readonly onRows: (rows: readonly Record<string, unknown>[], count: number) => void;
  readonly onEnd: (end: { summary: StreamSummary } | { error: { code: string; message: string } }) => void;
}

const FLUSH_MS = 100;

export async function streamQuery(path: string, body: Record<string, unknown>, signal: AbortSignal, h: StreamHandlers): Promise<void> {
  const res = await request('POST', path, { body: { ...body, format: 'ndjson' }, accept: 'application/x-ndjson', signal });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const rows: Record<string, unknown>[] = [];
  let names: string[] = [];
  let rest = '';
  let flushed = 0;
  let lastFlush = 0;
  let ended = false;
  const flush = (force: boolean): void => {
    if (rows.length === flushed || (!force && performance.now() - lastFlush < FLUSH_MS)) return;
    flushed = rows.length;
    lastFlush = performance.now();
    h.onRows(rows, rows.length);
  };
  const line = (text: string): void => {
    if (text === '') return;
    const value = JSON.parse(text) as unknown;
    if (Array.isArray(value)) {
      // fromEntries defines own properties: a column named `__proto__` stays a column.
      rows.push(Object.fromEntries(names.map((n, i) => [n, value[i]])));
    } else if (value !== null && typeof value === 'object' && 'columns' in value) {
      const v = value as { columns: StreamColumn[]; tables: string[] };
      names = v.columns.map((c) => c.name);
      h.onColumns(v.columns, v.tables);
    } else if (value !== null && typeof value === 'object' && 'error' in value) {
      flush(true);
      ended = true;
      h.onEnd({ error: (value as { error: { code: string; message: string } }).error });
    } else {
      flush(true);
      ended = true;
      h.onEnd({ summary: value as StreamSummary });
    }
  };
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    rest += decoder.decode(value, { stream: true });
    const parts = rest.split('\n');
    rest = parts.pop() ?? '';
    for (const p of parts) line(p);
    flush(false);
  }
  line(rest + decoder.decode());
  flush(true);
  // No closing line: the connection was cut, and what arrived is not the whole result.
  if (!ended) h.onEnd({ error: { code: 'STEWARD_E_INCOMPLETE', message: `the result stopped after ${rows.length} row(s) without its end: it is incomplete` } });
}
