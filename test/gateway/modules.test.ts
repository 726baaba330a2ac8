/**
 * The shape of the gateway's modules: no import circle among them, and each
 * opens with a comment saying what it is.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'gateway');
const modules = fs.readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
const source = (m: string): string => fs.readFileSync(path.join(dir, m), 'utf8');

/** Sibling modules a module imports, type-only imports and re-exports included. */
function importsOf(m: string): string[] {
  const out = new Set<string>();
  for (const match of source(m).matchAll(/\bfrom\s+'\.\/([^']+)\.js'/g)) out.add(`${match[1]}.ts`);
  return [...out].filter((x) => modules.includes(x));
}

/** The first import circle found (a path that returns to its start), or null. */
function findCycle(): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (m: string): string[] | null => {
    if (state.get(m) === 'done') return null;
    if (state.get(m) === 'open') return [...stack.slice(stack.indexOf(m)), m];
    state.set(m, 'open');
    stack.push(m);
    for (const next of importsOf(m)) {
      const cycle = visit(next);
      if (cycle !== null) return cycle;
    }
    stack.pop();
    state.set(m, 'done');
    return null;
  };
  for (const m of modules) {
    const cycle = visit(m);
    if (cycle !== null) return cycle;
  }
  return null;
}

describe('gateway modules', () => {
  it('has no import circle among the gateway modules (gateway.ts ↔ leakproof.ts was one)', () => {
    // Failure it stops: a step importing the module that wires the steps, so neither can be read or loaded without the other.
    assert.ok(modules.includes('leakproof.ts') && modules.includes('gateway.ts'));
    assert.equal(findCycle()?.join(' → ') ?? null, null);
  });

  it('opens every gateway module with a comment saying what it is', () => {
    // Failure it stops: a module whose purpose a reader must reverse-engineer from its code.
    for (const m of modules) assert.match(source(m), /^\/\*\*\n \* \S/, `${m} has no opening comment`);
  });
});
