import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isStewardError } from '../errors.js';
import { formatTagExpression, isAtLeastAsNarrow, matchesTagExpression, parseTagExpression, TagExpressionError } from './tag-expression.js';

const tags = (o: Record<string, string>): Map<string, string> => new Map(Object.entries(o));

function parseError(text: string): TagExpressionError {
  try {
    parseTagExpression(text);
  } catch (e) {
    assert.ok(e instanceof TagExpressionError);
    return e;
  }
  assert.fail(`\`${text}\` parsed`);
}

test('parses key=value and key IN (a, b), AND-ed', () => {
  assert.deepStrictEqual(parseTagExpression('domain=claims AND confidentiality IN (public, internal)'), {
    domain: ['claims'],
    confidentiality: ['internal', 'public'],
  });
});

test('keywords are case-insensitive, keys are lowercased, values keep their case', () => {
  assert.deepStrictEqual(parseTagExpression('Domain = Claims and conf in (A,b)'), { domain: ['Claims'], conf: ['A', 'b'] });
});

test('quoted values, with a doubled quote inside', () => {
  assert.deepStrictEqual(parseTagExpression("owner='team:a' AND x IN ('b', c)"), { owner: ['team:a'], x: ['b', 'c'] });
  assert.equal(parseError("owner='it''s'").message, "invalid tag value `it's` at position 7");
});

test('the empty text is the empty expression, which matches everything', () => {
  assert.deepStrictEqual(parseTagExpression('   '), {});
  assert.equal(matchesTagExpression({}, tags({})), true);
});

test('errors name the position of the problem', () => {
  assert.equal(parseError('confidentiality=').message, 'expected a value after `=` at position 17');
  assert.equal(parseError('domain=claims AND').message, 'expected a tag key at position 18, found the end');
  assert.equal(parseError('a IN b').message, 'expected `(` after `IN` at position 6');
  assert.equal(parseError('a IN (x y)').message, 'expected `,` or `)` at position 9');
  assert.equal(parseError('a=b OR c=d').message, 'expected `AND` at position 5, found `OR`');
  assert.equal(parseError('a ~ b').message, 'unexpected character `~` at position 3');
  assert.equal(parseError("a='open").message, 'unterminated quoted value at position 3');
  assert.equal(parseError('a b').message, 'expected `=` or `IN` after `a` at position 3');
  assert.equal(parseError('9a=b').message, 'invalid tag key `9a` at position 1');
  assert.equal(parseError('a IN ()').message, 'expected a value after `(` at position 7');
});

test('parse errors are StewardErrors with code STEWARD_E_PARSE and the position in details', () => {
  const e = parseError('a=');
  assert.ok(isStewardError(e));
  assert.equal(e.code, 'STEWARD_E_PARSE');
  assert.equal(e.position, 3);
  assert.deepStrictEqual(e.details, [{ path: 'position 3', message: 'expected a value after `=` at position 3' }]);
});

test('a repeated key is refused rather than silently matching nothing', () => {
  assert.equal(parseError('a=x AND a=y').message, 'duplicate tag key `a` at position 9');
});

test('an over-long text is refused before any work', () => {
  assert.equal(parseError(`a=${'x'.repeat(9000)}`).code, 'STEWARD_E_PARSE');
});

test('a key or value named like an Object.prototype member is refused with its position (names are never prototype keys)', () => {
  assert.throws(() => parseTagExpression('pii=true AND __proto__=x'), /tag key `__proto__` at position 14 is reserved/);
  assert.throws(() => parseTagExpression('constructor=y'), /tag key `constructor` at position 1 is reserved/);
  assert.throws(() => parseTagExpression('tier IN (gold, toString)'), /tag value `toString` at position 16 is reserved/);
  // matching looks tags up as own properties, so even a hand-built expression cannot reach the prototype
  assert.equal(matchesTagExpression({ constructor: ['y'] }, tags({})), false);
});

test('format is canonical: keys and values sorted, IN for several values', () => {
  assert.equal(formatTagExpression({ z: ['b', 'a', 'a'], a: ['x'] }), 'a=x AND z IN (a, b)');
  assert.equal(formatTagExpression({}), '');
});

test('format then parse gives back the same expression', () => {
  const key = fc.constantFrom('pii', 'domain', 'conf', 'region');
  const value = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.:/@+-]{0,8}$/);
  fc.assert(
    fc.property(fc.dictionary(key, fc.uniqueArray(value, { minLength: 1, maxLength: 3 })), (expr) => {
      const canonical = Object.fromEntries(Object.entries(expr).map(([k, v]) => [k, [...v].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))]));
      assert.deepStrictEqual({ ...parseTagExpression(formatTagExpression(expr)) }, canonical);
    }),
  );
});

test('matching: keys AND, values OR, a missing key never matches', () => {
  const e = parseTagExpression('domain=claims AND confidentiality IN (public, internal)');
  assert.equal(matchesTagExpression(e, tags({ domain: 'claims', confidentiality: 'internal' })), true);
  assert.equal(matchesTagExpression(e, tags({ domain: 'claims', confidentiality: 'secret' })), false);
  assert.equal(matchesTagExpression(e, tags({ domain: 'sales', confidentiality: 'public' })), false);
  assert.equal(matchesTagExpression(e, tags({ domain: 'claims' })), false);
  assert.equal(matchesTagExpression({ a: [] }, tags({ a: 'x' })), false, 'a key with no value matches nothing');
});

test('narrowness: every key of the broad one present with a subset of its values', () => {
  const broad = parseTagExpression('domain IN (claims, sales)');
  assert.equal(isAtLeastAsNarrow(parseTagExpression('domain=claims AND pii=false'), broad), true);
  assert.equal(isAtLeastAsNarrow(broad, broad), true);
  assert.equal(isAtLeastAsNarrow(parseTagExpression('pii=false'), broad), false, 'dropping a key widens');
  assert.equal(isAtLeastAsNarrow(parseTagExpression('domain IN (claims, hr)'), broad), false);
  assert.equal(isAtLeastAsNarrow(broad, {}), true, 'anything is narrower than the empty expression');
});
