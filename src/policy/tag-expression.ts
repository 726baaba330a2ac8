/**
 * Tag expressions in text form: `domain=claims AND confidentiality IN (public, internal)`.
 *
 * Grammar (keywords case-insensitive, keys lowercased, values case-sensitive):
 *
 *     expression := ε | term ( AND term )*
 *     term       := key '=' value | key IN '(' value ( ',' value )* ')'
 *     value      := bare-word | "'" chars "'"      ('' inside quotes is one quote)
 *
 * A key may appear once: `a=x AND a=y` would silently never match, so it is
 * refused. Positions in errors are 1-based character columns.
 */
import { StewardError } from '../errors.js';
import type { TagExpression } from './model.js';
import { isReservedName, NAME_PATTERN, TAG_VALUE_PATTERN } from './model.js';

/** Longest text accepted, so a hostile request cannot make the parser work for long. */
export const MAX_TAG_EXPRESSION_LENGTH = 8192;

type Token =
  | { readonly t: 'word'; readonly text: string; readonly pos: number }
  | { readonly t: 'quoted'; readonly text: string; readonly pos: number }
  | { readonly t: 'punct'; readonly text: '=' | '(' | ')' | ','; readonly pos: number }
  | { readonly t: 'end'; readonly pos: number };

export class TagExpressionError extends StewardError {
  readonly position: number;
  constructor(message: string, position: number) {
    super('STEWARD_E_PARSE', message, { details: [{ path: `position ${position}`, message }] });
    this.position = position;
  }
}

const WORD_CHAR = /[A-Za-z0-9_.:/@+-]/;

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i] as string;
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '=' || ch === '(' || ch === ')' || ch === ',') {
      out.push({ t: 'punct', text: ch, pos: i + 1 });
      i++;
    } else if (ch === "'") {
      const start = i;
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) throw new TagExpressionError(`unterminated quoted value at position ${start + 1}`, start + 1);
        if (text[i] === "'") {
          if (text[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += text[i];
        i++;
      }
      out.push({ t: 'quoted', text: value, pos: start + 1 });
    } else if (WORD_CHAR.test(ch)) {
      const start = i;
      while (i < text.length && WORD_CHAR.test(text[i] as string)) i++;
      out.push({ t: 'word', text: text.slice(start, i), pos: start + 1 });
    } else {
      throw new TagExpressionError(`unexpected character \`${ch}\` at position ${i + 1}`, i + 1);
    }
  }
  out.push({ t: 'end', pos: text.length + 1 });
  return out;
}

function describe(tok: Token): string {
  return tok.t === 'end' ? 'the end' : `\`${tok.text}\``;
}

/**
 * Parses the text form. Throws a `TagExpressionError` (code STEWARD_E_PARSE)
 * naming the position of the first problem.
 *
 * @example parseTagExpression("domain=claims AND confidentiality IN (public, internal)")
 * // { domain: ['claims'], confidentiality: ['internal', 'public'] }
 */
export function parseTagExpression(text: string): TagExpression {
  if (text.length > MAX_TAG_EXPRESSION_LENGTH) {
    throw new TagExpressionError(`tag expression longer than ${MAX_TAG_EXPRESSION_LENGTH} characters`, MAX_TAG_EXPRESSION_LENGTH + 1);
  }
  const tokens = tokenize(text);
  let at = 0;
  const peek = (): Token => tokens[at] as Token;
  const next = (): Token => tokens[at++] as Token;
  const entries: [string, string[]][] = [];
  const seen = new Set<string>();

  const readValue = (after: string): string => {
    const tok = next();
    if (tok.t !== 'word' && tok.t !== 'quoted') {
      throw new TagExpressionError(`expected a value after \`${after}\` at position ${tok.pos}`, tok.pos);
    }
    if (isReservedName(tok.text)) {
      throw new TagExpressionError(`tag value \`${tok.text}\` at position ${tok.pos} is reserved (a property of every javascript object)`, tok.pos);
    }
    if (!TAG_VALUE_PATTERN.test(tok.text)) {
      throw new TagExpressionError(`invalid tag value \`${tok.text}\` at position ${tok.pos}`, tok.pos);
    }
    return tok.text;
  };

  if (peek().t === 'end') return Object.freeze({});
  for (;;) {
    const keyTok = next();
    if (keyTok.t !== 'word') throw new TagExpressionError(`expected a tag key at position ${keyTok.pos}, found ${describe(keyTok)}`, keyTok.pos);
    const key = keyTok.text.toLowerCase();
    if (isReservedName(key)) throw new TagExpressionError(`tag key \`${keyTok.text}\` at position ${keyTok.pos} is reserved (a property of every javascript object)`, keyTok.pos);
    if (!NAME_PATTERN.test(key)) throw new TagExpressionError(`invalid tag key \`${keyTok.text}\` at position ${keyTok.pos}`, keyTok.pos);
    if (seen.has(key)) throw new TagExpressionError(`duplicate tag key \`${key}\` at position ${keyTok.pos}`, keyTok.pos);
    seen.add(key);
    const op = next();
    const values: string[] = [];
    if (op.t === 'punct' && op.text === '=') {
      values.push(readValue('='));
    } else if (op.t === 'word' && op.text.toUpperCase() === 'IN') {
      const open = next();
      if (open.t !== 'punct' || open.text !== '(') throw new TagExpressionError(`expected \`(\` after \`IN\` at position ${open.pos}`, open.pos);
      values.push(readValue('('));
      for (;;) {
        const sep = next();
        if (sep.t === 'punct' && sep.text === ')') break;
        if (sep.t !== 'punct' || sep.text !== ',') throw new TagExpressionError(`expected \`,\` or \`)\` at position ${sep.pos}`, sep.pos);
        values.push(readValue(','));
      }
    } else {
      throw new TagExpressionError(`expected \`=\` or \`IN\` after \`${key}\` at position ${op.pos}`, op.pos);
    }
    entries.push([key, [...new Set(values)].sort(compareCodeUnits)]);
    const joint = next();
    if (joint.t === 'end') break;
    if (joint.t !== 'word' || joint.text.toUpperCase() !== 'AND') {
      throw new TagExpressionError(`expected \`AND\` at position ${joint.pos}, found ${describe(joint)}`, joint.pos);
    }
  }
  // fromEntries defines own properties, so a key like `__proto__` stays data
  return Object.freeze(Object.fromEntries(entries));
}

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const BARE_VALUE = /^[A-Za-z0-9_][A-Za-z0-9_.:/@+-]*$/;

function printValue(v: string): string {
  return BARE_VALUE.test(v) ? v : `'${v.replaceAll("'", "''")}'`;
}

/**
 * The canonical text form: keys sorted, values sorted and unique, `k=v` for
 * one value and `k IN (a, b)` for several. `parseTagExpression` reads it back
 * to an equal expression. The empty expression prints as the empty string.
 */
export function formatTagExpression(expr: TagExpression): string {
  return Object.keys(expr)
    .sort(compareCodeUnits)
    .map((key) => {
      const values = [...new Set(expr[key] ?? [])].sort(compareCodeUnits);
      return values.length === 1 ? `${key}=${printValue(values[0] as string)}` : `${key} IN (${values.map(printValue).join(', ')})`;
    })
    .join(' AND ');
}

/**
 * True when, for every key of the expression, the resource has an effective
 * value for it and that value is listed (keys AND, values OR). An empty
 * expression matches everything; a key with an empty list matches nothing.
 */
export function matchesTagExpression(expr: TagExpression, values: ReadonlyMap<string, string>): boolean {
  for (const key of Object.keys(expr)) {
    const have = values.get(key);
    if (have === undefined || !(expr[key] ?? []).includes(have)) return false;
  }
  return true;
}

/** True when the expression has no keys (it matches every resource). */
export function isEmptyExpression(expr: TagExpression): boolean {
  return Object.keys(expr).length === 0;
}

/**
 * True when `narrow` matches only resources `broad` matches, by syntax: every
 * key of `broad` is in `narrow` with a subset of its values.
 */
export function isAtLeastAsNarrow(narrow: TagExpression, broad: TagExpression): boolean {
  for (const key of Object.keys(broad)) {
    if (!Object.hasOwn(narrow, key)) return false;
    const allowed = broad[key] ?? [];
    if (!(narrow[key] ?? []).every((v) => allowed.includes(v))) return false;
  }
  return true;
}
