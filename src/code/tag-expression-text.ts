/**
 * The text form of a tag expression, as policy files write it:
 * `domain=claims AND confidentiality IN (public, internal)`.
 *
 * Policy files need this before the shared parser exists; it is small and
 * self-contained so that switching to `src/policy/tag-expression.ts` later is
 * a one-import change in `schema.ts` and `export.ts`.
 */
import type { TagExpression } from '../policy/model.js';
import { NAME_PATTERN, TAG_VALUE_PATTERN } from '../policy/model.js';

export type TagExpressionParseResult =
  | { readonly ok: true; readonly expression: TagExpression }
  | { readonly ok: false; readonly error: string };

type Token =
  | { readonly t: 'word'; readonly text: string; readonly quoted: boolean }
  | { readonly t: 'punct'; readonly text: '=' | '(' | ')' | ',' };

const WORD_CHAR = /[A-Za-z0-9_.:/@+-]/;

function tokenize(text: string): Token[] | string {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i] as string;
    if (/\s/.test(ch)) {
      i += 1;
    } else if (ch === '=' || ch === '(' || ch === ')' || ch === ',') {
      out.push({ t: 'punct', text: ch });
      i += 1;
    } else if (ch === "'" || ch === '"') {
      const end = text.indexOf(ch, i + 1);
      if (end < 0) return `unterminated quote at position ${i + 1}`;
      out.push({ t: 'word', text: text.slice(i + 1, end), quoted: true });
      i = end + 1;
    } else if (WORD_CHAR.test(ch)) {
      let j = i;
      while (j < text.length && WORD_CHAR.test(text[j] as string)) j += 1;
      out.push({ t: 'word', text: text.slice(i, j), quoted: false });
      i = j;
    } else {
      return `unexpected character \`${ch}\` at position ${i + 1}`;
    }
  }
  return out;
}

const isKeyword = (tok: Token | undefined, kw: string): boolean =>
  tok !== undefined && tok.t === 'word' && !tok.quoted && tok.text.toUpperCase() === kw;

/**
 * Parses the text form. Keys are lowercased (tag keys are lowercase names);
 * values keep their case. `*` is the empty expression, which matches everything.
 *
 * @example parseTagExpressionText('pii=true AND domain IN (claims, finance)')
 *   // { ok: true, expression: { pii: ['true'], domain: ['claims', 'finance'] } }
 */
export function parseTagExpressionText(text: string): TagExpressionParseResult {
  const trimmed = text.trim();
  if (trimmed === '*') return { ok: true, expression: {} };
  if (trimmed === '') return { ok: false, error: 'empty tag expression (write `*` to match everything)' };
  const tokens = tokenize(trimmed);
  if (typeof tokens === 'string') return { ok: false, error: tokens };
  const expression: Record<string, string[]> = {};
  let pos = 0;
  const value = (): string | { error: string } => {
    const tok = tokens[pos];
    if (tok === undefined || tok.t !== 'word') return { error: 'expected a tag value' };
    pos += 1;
    if (!TAG_VALUE_PATTERN.test(tok.text)) return { error: `\`${tok.text}\` is not a valid tag value` };
    return tok.text;
  };
  for (;;) {
    const keyTok = tokens[pos];
    if (keyTok === undefined || keyTok.t !== 'word') return { ok: false, error: 'expected a tag key' };
    const key = keyTok.text.toLowerCase();
    if (!NAME_PATTERN.test(key)) return { ok: false, error: `\`${keyTok.text}\` is not a valid tag key` };
    if (expression[key] !== undefined) {
      // Two conditions on one key can only be AND-ed, which is never what the author meant.
      return { ok: false, error: `tag key \`${key}\` appears twice (use \`${key} IN (a, b)\` for alternatives)` };
    }
    pos += 1;
    const op = tokens[pos];
    const values: string[] = [];
    if (op !== undefined && op.t === 'punct' && op.text === '=') {
      pos += 1;
      const v = value();
      if (typeof v !== 'string') return { ok: false, error: v.error };
      values.push(v);
    } else if (isKeyword(op, 'IN')) {
      pos += 1;
      const open = tokens[pos];
      if (open === undefined || open.t !== 'punct' || open.text !== '(') return { ok: false, error: `expected \`(\` after \`IN\`` };
      pos += 1;
      for (;;) {
        const v = value();
        if (typeof v !== 'string') return { ok: false, error: v.error };
        values.push(v);
        const sep = tokens[pos];
        pos += 1;
        if (sep !== undefined && sep.t === 'punct' && sep.text === ',') continue;
        if (sep !== undefined && sep.t === 'punct' && sep.text === ')') break;
        return { ok: false, error: 'expected `,` or `)` in value list' };
      }
    } else {
      return { ok: false, error: `expected \`=\` or \`IN\` after \`${key}\`` };
    }
    expression[key] = [...new Set(values)].sort();
    if (pos === tokens.length) break;
    if (!isKeyword(tokens[pos], 'AND')) return { ok: false, error: 'expected `AND` between conditions' };
    pos += 1;
  }
  return { ok: true, expression };
}

/** Prints an expression in canonical text form: keys sorted, values sorted; `*` when empty. */
export function formatTagExpression(expression: TagExpression): string {
  const keys = Object.keys(expression).sort();
  if (keys.length === 0) return '*';
  return keys
    .map((k) => {
      const values = [...(expression[k] ?? [])].sort();
      return values.length === 1 ? `${k}=${values[0] as string}` : `${k} IN (${values.join(', ')})`;
    })
    .join(' AND ');
}
