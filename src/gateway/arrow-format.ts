/**
 * Arrow IPC encoding of a governed query's result, one IPC message per batch.
 * Its own module so that apache-arrow loads only when a client asks for Arrow.
 */
import {
  Bool,
  DateDay,
  Float64,
  Int32,
  Int64,
  RecordBatchStreamWriter,
  Table,
  TimestampMicrosecond,
  Utf8,
  vectorFromArray,
  type DataType,
  type Vector,
} from 'apache-arrow';
import type { DuckDBValue } from '@duckdb/node-api';
import { toPlainValue } from '../lake/duckdb.js';
import type { ResultColumn } from './types.js';

type Batch = DuckDBValue[][];

/** Arrow type for a DuckDB type; anything without a direct match travels as text. */
export function arrowTypeOf(duckType: string): DataType {
  const t = duckType.toUpperCase();
  if (t === 'BOOLEAN') return new Bool();
  if (['TINYINT', 'SMALLINT', 'INTEGER', 'UTINYINT', 'USMALLINT'].includes(t)) return new Int32();
  if (['BIGINT', 'UINTEGER'].includes(t)) return new Int64();
  if (['FLOAT', 'DOUBLE'].includes(t) || t.startsWith('DECIMAL')) return new Float64();
  if (t === 'DATE') return new DateDay();
  if (t === 'TIMESTAMP' || t === 'TIMESTAMP WITH TIME ZONE') return new TimestampMicrosecond();
  return new Utf8();
}

function arrowValue(type: DataType, v: DuckDBValue): unknown {
  if (v === null) return null;
  if (type instanceof Int64) return typeof v === 'bigint' ? v : BigInt(String(toPlainValue(v)));
  if (type instanceof Int32 || type instanceof Float64) return Number(toPlainValue(v));
  if (type instanceof Bool) return v === true;
  if (type instanceof DateDay || type instanceof TimestampMicrosecond) {
    const p = toPlainValue(v);
    const d = new Date(typeof p === 'string' && !p.endsWith('Z') && p.length > 10 ? `${p}Z` : String(p));
    return Number.isNaN(d.getTime()) ? null : d;
  }
  const p = toPlainValue(v);
  return typeof p === 'object' && p !== null ? JSON.stringify(p) : String(p);
}

function arrowTable(columns: readonly ResultColumn[], types: readonly DataType[], batch: Batch): Table {
  const vectors: Record<string, Vector> = Object.fromEntries(
    columns.map((c, i) => {
      const type = types[i] as DataType;
      return [c.name, vectorFromArray(batch.map((row) => arrowValue(type, row[i] as DuckDBValue)), type)];
    }),
  );
  return new Table(vectors);
}

export async function* arrowChunks(columns: readonly ResultColumn[], batches: AsyncIterable<Batch>): AsyncGenerator<Uint8Array> {
  const types = columns.map((c) => arrowTypeOf(c.type));
  const writer = new RecordBatchStreamWriter();
  let wrote = false;
  for await (const batch of batches) {
    for (const b of arrowTable(columns, types, batch).batches) writer.write(b);
    wrote = true;
    // Hand over what the writer produced so far: one IPC message per batch.
    yield* drain(writer);
  }
  if (!wrote) writer.reset(undefined, arrowTable(columns, types, []).schema);
  writer.finish();
  yield* drain(writer);
  writer.close();
}

function* drain(writer: RecordBatchStreamWriter): Generator<Uint8Array> {
  // The writer queues bytes synchronously; read its queue so each batch leaves as soon as it is encoded
  // (toUint8Array would end the stream). Checked at runtime: an apache-arrow without the queue fails loudly.
  const sink = (writer as unknown as { _sink?: { _values?: unknown } })._sink;
  const values = sink?._values;
  if (!Array.isArray(values)) throw new Error('apache-arrow writer internals changed: cannot stream Arrow IPC');
  while (values.length > 0) yield values.shift() as Uint8Array;
}
