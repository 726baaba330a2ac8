/**
 * The import graph of `src/` has no circles (issue 17). A circle blurs who
 * depends on whom: neither module can be read, tested or moved without the
 * other. Every relative import counts, `import type` included, since a type
 * shared both ways is the first sign of a concept living in the wrong module.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(import.meta.dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [full] : [];
  });
}

/** Relative imports and re-exports of one file, resolved to source paths. */
function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  const re = /^\s*(?:import|export)\s[^;]*?\sfrom\s+'(\.{1,2}\/[^']+)'/gms;
  for (const m of text.matchAll(re)) {
    out.push(path.resolve(path.dirname(file), (m[1] as string).replace(/\.js$/, '.ts')));
  }
  return out;
}

/** Every strongly connected component with more than one file (Tarjan). */
function circles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.map((f) => path.relative(SRC, f)).sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

describe('the import graph of src/', () => {
  it('finds a circle when there is one (the check can fail)', () => {
    const g = new Map([
      [path.join(SRC, 'a.ts'), [path.join(SRC, 'b.ts')]],
      [path.join(SRC, 'b.ts'), [path.join(SRC, 'a.ts')]],
      [path.join(SRC, 'c.ts'), [path.join(SRC, 'a.ts')]],
    ]);
    assert.deepEqual(circles(g), [['a.ts', 'b.ts']]);
    assert.deepEqual(importsOf(path.join(SRC, 'x/y.ts'), "import type { A } from '../a.js';\nexport { b } from './b.js';\nimport z from 'zod';"), [
      path.join(SRC, 'a.ts'),
      path.join(SRC, 'x/b.ts'),
    ]);
  });

  it('has no circles', () => {
    const graph = new Map(sourceFiles(SRC).map((f) => [f, importsOf(f, readFileSync(f, 'utf8'))]));
    assert.ok(graph.size > 100, `read ${graph.size} files`);
    assert.deepEqual(circles(graph), []);
  });
});
