/**
 * Saved queries are written with Redshift-style `${name}` placeholders. Before
 * parsing, each placeholder outside strings, quoted identifiers and comments
 * becomes DuckDB's named parameter `$name`, and its value is bound at run time:
 * values never enter the SQL text.
 *
 * This is a scanner for placeholders only, not a SQL parser; DuckDB parses the
 * result. Getting a quote wrong could at worst leave a placeholder in place (a
 * syntax error) or turn one inside a string into `$name` text — never splice
 * a value.
 */
import { StewardError } from '../errors.js';

export const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

const isIdentStart = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
const isIdent = (c: string): boolean => isIdentStart(c) || (c >= '0' && c <= '9');

/** Rewrites `${name}` placeholders to `$name`; returns the text and the placeholder names in order of first use. */
export function placeholdersToParameters(sql: string): { sql: string; names: string[] } {
  let out = '';
  const names: string[] = [];
  let i = 0;
  const n = sql.length;
  const copyUntil = (end: number): void => {
    out += sql.slice(i, end);
    i = end;
  };
  while (i < n) {
    const c = sql[i] as string;
    const next = sql[i + 1];
    if (c === "'" || c === '"') {
      // Quoted string or identifier; a doubled quote is an escaped quote.
      let j = i + 1;
      while (j < n) {
        if (sql[j] === c) {
          if (sql[j + 1] === c) j += 2;
          else break;
        } else j++;
      }
      copyUntil(Math.min(j + 1, n));
    } else if (c === '-' && next === '-') {
      const j = sql.indexOf('\n', i);
      copyUntil(j < 0 ? n : j + 1);
    } else if (c === '/' && next === '*') {
      let depth = 1;
      let j = i + 2;
      while (j < n && depth > 0) {
        if (sql[j] === '/' && sql[j + 1] === '*') {
          depth++;
          j += 2;
        } else if (sql[j] === '*' && sql[j + 1] === '/') {
          depth--;
          j += 2;
        } else j++;
      }
      copyUntil(j);
    } else if (c === '$' && next === '{') {
      const close = sql.indexOf('}', i + 2);
      const name = close < 0 ? '' : sql.slice(i + 2, close).trim();
      if (!PARAM_NAME.test(name)) {
        throw new StewardError('STEWARD_E_PARSE', `invalid placeholder at offset ${i}: write \`\${name}\` with a letter or underscore first`, {
          details: [{ path: `sql:${i}`, message: 'invalid placeholder' }],
        });
      }
      out += `$${name}`;
      if (!names.includes(name)) names.push(name);
      i = close + 1;
    } else if (c === '$' && (next === '$' || (next !== undefined && isIdentStart(next)))) {
      // Dollar-quoted string `$tag$ … $tag$`, or a plain `$name` parameter.
      let j = i + 1;
      while (j < n && isIdent(sql[j] as string)) j++;
      if (sql[j] === '$') {
        const tag = sql.slice(i, j + 1);
        const end = sql.indexOf(tag, j + 1);
        copyUntil(end < 0 ? n : end + tag.length);
      } else {
        copyUntil(j);
      }
    } else {
      out += c;
      i++;
    }
  }
  return { sql: out, names };
}
