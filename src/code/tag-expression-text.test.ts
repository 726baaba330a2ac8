import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatTagExpression, parseTagExpressionText } from './tag-expression-text.js';

test('parses = and IN, lowercases keys, keeps value case, sorts values', () => {
  assert.deepEqual(parseTagExpressionText('Domain=claims and confidentiality in (Public, internal)'), {
    ok: true,
    expression: { domain: ['claims'], confidentiality: ['Public', 'internal'] },
  });
});

test('accepts quoted values and every character a tag value may hold', () => {
  assert.deepEqual(parseTagExpressionText(`owner = 'team:data/eu@x+y-z.1' AND pii="true"`), {
    ok: true,
    expression: { owner: ['team:data/eu@x+y-z.1'], pii: ['true'] },
  });
});

test('`*` is the empty expression; the empty string is refused', () => {
  assert.deepEqual(parseTagExpressionText(' * '), { ok: true, expression: {} });
  assert.equal(parseTagExpressionText('  ').ok, false);
});

test('refuses malformed expressions with a reason', () => {
  for (const bad of ['pii', 'pii=', 'pii=true AND', 'pii=true OR x=y', 'pii IN (true', 'pii IN ()', 'pii=true AND pii=false', 'pii=tr ue', "pii='true", 'pii=true; DROP']) {
    const r = parseTagExpressionText(bad);
    assert.equal(r.ok, false, bad);
    if (!r.ok) assert.match(r.error, /^[a-z`]/, bad);
  }
});

test('format is canonical and parses back to the same expression', () => {
  const e = { pii: ['true'], domain: ['finance', 'claims'] };
  const text = formatTagExpression(e);
  assert.equal(text, 'domain IN (claims, finance) AND pii=true');
  assert.deepEqual(parseTagExpressionText(text), { ok: true, expression: { domain: ['claims', 'finance'], pii: ['true'] } });
  assert.equal(formatTagExpression({}), '*');
});
