/**
 * Step 1 of the gateway pipeline: the query text to DuckDB's statement tree.
 *
 * DuckDB's own parser (`json_serialize_sql`, in the parser instance of
 * `sandbox.ts`, which never executes user text) reads the text. Syntax errors
 * come back with DuckDB's message and position; anything that is not exactly
 * one SELECT statement is refused here, before any table is looked at.
 */
import { parse as parseLossless } from 'lossless-json';
import { StewardError, type ErrorDetail } from '../errors.js';
import { refusal, type Json } from './analyze.js';
import type { Parser } from './sandbox.js';

/**
 * The one statement of `sql` (already past `placeholdersToParameters`), as
 * DuckDB's tree; `written` is the text as the user wrote it, for messages.
 */
export async function parseQuery(parser: Parser, sql: string, written: string): Promise<Json> {
  const parsed = parseTree(await parser.serialize(sql));
  if (parsed['error'] === true) throw parseError(parsed, written);
  const statements = parsed['statements'];
  if (!Array.isArray(statements) || statements.length === 0) throw new StewardError('STEWARD_E_VALIDATION', 'the query is empty');
  if (statements.length > 1) {
    throw refusal(`only one statement may run at a time, found ${statements.length}: multiple statements are refused`);
  }
  return statements[0] as Json;
}

/** Refuses text that is empty, too long or carries a NUL before anything parses it. */
export function checkText(sql: string, max: number): void {
  if (typeof sql !== 'string' || sql.trim() === '') throw new StewardError('STEWARD_E_VALIDATION', 'the query is empty');
  if (sql.length > max) throw new StewardError('STEWARD_E_PAYLOAD_TOO_LARGE', `the query is ${sql.length} characters long, the maximum is ${max}`);
  if (sql.includes('\u0000')) throw new StewardError('STEWARD_E_VALIDATION', 'the query contains a NUL character');
}

export function parseTree(json: string): Json {
  const v = parseLossless(json);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new StewardError('STEWARD_E_INTERNAL', 'the parser returned no tree');
  return v as Json;
}

/** The one statement of a tree Steward wrote itself (a governed subquery): anything else is a bug, not a refusal. */
export function firstStatement(tree: Json): Json {
  const sts = tree['statements'];
  if (tree['error'] === true || !Array.isArray(sts) || sts.length !== 1) throw new StewardError('STEWARD_E_INTERNAL', 'the parser refused governed SQL');
  return sts[0] as Json;
}

/** The first keyword of a statement, for messages only (comments and parentheses skipped). */
export function firstKeyword(sql: string): string {
  let i = 0;
  while (i < sql.length) {
    const c = sql[i] as string;
    if (c === '-' && sql[i + 1] === '-') {
      const j = sql.indexOf('\n', i);
      i = j < 0 ? sql.length : j + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      const j = sql.indexOf('*/', i + 2);
      i = j < 0 ? sql.length : j + 2;
    } else if (c === '(' || c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === ';') {
      i++;
    } else break;
  }
  let j = i;
  while (j < sql.length && /[A-Za-z_]/.test(sql[j] as string)) j++;
  return sql.slice(i, j).toUpperCase();
}

function parseError(tree: Json, sql: string): StewardError {
  const message = String(tree['error_message'] ?? 'cannot parse the query');
  const type = String(tree['error_type'] ?? '');
  if (type === 'parser') {
    const pos = tree['position'] === undefined ? undefined : Number(String(tree['position']));
    const where = pos === undefined || Number.isNaN(pos) ? '' : ` at position ${pos}`;
    const details: ErrorDetail[] = pos === undefined || Number.isNaN(pos) ? [{ message }] : [{ path: `sql:${pos}`, message }];
    return new StewardError('STEWARD_E_PARSE', `syntax error${where}: ${message}`, { details });
  }
  if (message.includes('Only SELECT statements')) {
    const kw = firstKeyword(sql);
    return refusal(
      `only read-only SELECT queries may run through the gateway: ${kw === '' ? 'this statement is' : `\`${kw}\` statements are`} refused (COPY, ATTACH, DETACH, INSTALL, LOAD, PRAGMA, SET, RESET, CALL, EXPORT, IMPORT, PREPARE, EXECUTE, macros, DDL and DML never run)`,
      [{ path: 'statement', message: kw }],
    );
  }
  return refusal(`the query cannot be accepted: ${message}`);
}
