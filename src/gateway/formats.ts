/**
 * Streams a governed query's result as JSON, NDJSON, CSV or Arrow IPC.
 *
 * The first batch is read before the response starts, so errors that DuckDB
 * raises when it binds or starts the query (a hidden column, a bad cast) are
 * ordinary HTTP errors. An error after the first batch can no longer change the
 * status: JSON ends with an `error` member, NDJSON with an `{"error":…}` line,
 * CSV with a `#error:` line, and an Arrow stream is aborted (the client sees a
 * truncated stream).
 *
 * NDJSON is the form to show rows while the query runs (the console's grid):
 * one line `{"columns":[…],"tables":[…]}`, then one JSON array of values per
 * row (in column order), then `{"rowCount":n,"truncated":b,"durationMs":t}` or
 * `{"error":{"code","message"}}`. A reader that has not seen the last line has
 * not seen the whole result.
 */
import type { DuckDBValue } from '@duckdb/node-api';
import { toPlainValue, type PlainValue } from '../lake/duckdb.js';
import { isStewardError } from '../errors.js';
import type { QueryStream, ResultColumn } from './types.js';

export const FORMATS = ['json', 'ndjson', 'csv', 'arrow'] as const;
export type ResultFormat = (typeof FORMATS)[number];

export const CONTENT_TYPES: Readonly<Record<ResultFormat, string>> = {
  json: 'application/json; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  arrow: 'application/vnd.apache.arrow.stream',
};

/**
 * The format an `Accept` header asks for, when the body names none: the first
 * media type listed that is one of ours (quality values are not weighed), else
 * JSON. A wildcard and anything unknown mean JSON, as before.
 */
export function formatFromAccept(accept: string | null): ResultFormat {
  for (const part of (accept ?? '').split(',')) {
    const type = part.split(';')[0]?.trim().toLowerCase();
    const found = FORMATS.find((f) => CONTENT_TYPES[f].startsWith(`${type};`) || CONTENT_TYPES[f] === type);
    if (found !== undefined) return found;
  }
  return 'json';
}

type Batch = DuckDBValue[][];

/** Opens the batches and reads the first one (errors surface here, before any byte is sent). */
export async function firstBatch(stream: QueryStream): Promise<{ first: Batch | null; rest: AsyncGenerator<Batch> }> {
  const rest = stream.batches();
  const head = await rest.next();
  return { first: head.done === true ? null : head.value, rest };
}

/** A Response whose body streams the result in `format`. */
export async function resultResponse(stream: QueryStream, format: ResultFormat, extraHeaders: Record<string, string> = {}): Promise<Response> {
  const { first, rest } = await firstBatch(stream);
  const encoder = new TextEncoder();
  const headers = { 'content-type': CONTENT_TYPES[format], 'x-steward-tables': stream.tables.join(','), ...extraHeaders };
  let iterator: AsyncGenerator<Uint8Array>;
  switch (format) {
    case 'json':
      iterator = mapText(jsonChunks(stream, first, rest), encoder);
      break;
    case 'ndjson':
      iterator = mapText(ndjsonChunks(stream, first, rest), encoder);
      break;
    case 'csv':
      iterator = mapText(csvChunks(stream.columns, first, rest), encoder);
      break;
    case 'arrow': {
      // Arrow (apache-arrow) is loaded only by the requests that ask for it.
      const { arrowChunks } = await import('./arrow-format.js');
      iterator = arrowChunks(stream.columns, all(first, rest));
      break;
    }
    default: {
      const never: never = format;
      return never;
    }
  }
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await iterator.next();
        if (next.done === true) controller.close();
        else controller.enqueue(next.value);
      } catch (e) {
        controller.error(e);
      }
    },
    async cancel() {
      stream.cancel();
      await iterator.return(undefined);
    },
  });
  return new Response(body, { status: 200, headers });
}

async function* mapText(source: AsyncGenerator<string>, encoder: InstanceType<typeof TextEncoder>): AsyncGenerator<Uint8Array> {
  for await (const s of source) yield encoder.encode(s);
}

async function* all(first: Batch | null, rest: AsyncGenerator<Batch>): AsyncGenerator<Batch> {
  if (first !== null) yield first;
  yield* rest;
}

function errorJson(e: unknown): { code: string; message: string } {
  return isStewardError(e) ? { code: e.code, message: e.message } : { code: 'STEWARD_E_INTERNAL', message: 'internal error' };
}

/** `{"columns":[…],"rows":[{…},…],"rowCount":n,"truncated":b,"durationMs":t,"tables":[…]}`. */
async function* jsonChunks(stream: QueryStream, first: Batch | null, rest: AsyncGenerator<Batch>): AsyncGenerator<string> {
  const names = stream.columns.map((c) => c.name);
  yield `{"columns":${JSON.stringify(stream.columns)},"rows":[`;
  let sep = '';
  try {
    for await (const batch of all(first, rest)) {
      let text = '';
      for (const row of batch) {
        // fromEntries defines own properties: a column aliased `__proto__` stays a column
        const obj: Record<string, PlainValue> = Object.fromEntries(row.map((v, i) => [names[i] as string, toPlainValue(v)]));
        text += sep + JSON.stringify(obj);
        sep = ',';
      }
      yield text;
    }
    const s = await stream.summary;
    yield `],"rowCount":${s.rowCount},"truncated":${s.truncated},"durationMs":${Math.round(s.durationMs)},"tables":${JSON.stringify(stream.tables)}}`;
  } catch (e) {
    yield `],"error":${JSON.stringify(errorJson(e))}}`;
  }
}

/** One line per message; rows as arrays (100k rows of objects would repeat every column name 100k times). */
async function* ndjsonChunks(stream: QueryStream, first: Batch | null, rest: AsyncGenerator<Batch>): AsyncGenerator<string> {
  yield `${JSON.stringify({ columns: stream.columns, tables: stream.tables })}\n`;
  try {
    for await (const batch of all(first, rest)) {
      yield batch.map((row) => `${JSON.stringify(row.map((v) => toPlainValue(v)))}\n`).join('');
    }
    const s = await stream.summary;
    yield `${JSON.stringify({ rowCount: s.rowCount, truncated: s.truncated, durationMs: Math.round(s.durationMs) })}\n`;
  } catch (e) {
    yield `${JSON.stringify({ error: errorJson(e) })}\n`;
  }
}

function csvCell(v: PlainValue): string {
  if (v === null) return '';
  const text = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\r\n]/.test(text) || text !== text.trim() ? `"${text.replaceAll('"', '""')}"` : text;
}

async function* csvChunks(columns: readonly ResultColumn[], first: Batch | null, rest: AsyncGenerator<Batch>): AsyncGenerator<string> {
  yield `${columns.map((c) => csvCell(c.name)).join(',')}\r\n`;
  try {
    for await (const batch of all(first, rest)) {
      yield batch.map((row) => `${row.map((v) => csvCell(toPlainValue(v))).join(',')}\r\n`).join('');
    }
  } catch (e) {
    yield `#error: ${errorJson(e).message.replace(/[\r\n]+/g, ' ')}\r\n`;
  }
}
