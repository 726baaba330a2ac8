import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createAuditBuffer } from './audit-buffer.js';
import type { DecisionLogEntry } from '../store/decision-log.js';

const entry = (i: number): DecisionLogEntry => ({ actor: 'user:a', action: 'authorize.SELECT', resource: `t${i}`, result: 'allow', reason: 'ok' });

describe('audit buffer (group commit)', () => {
  it('writes what arrives during a commit in the next single batch, in order', async () => {
    const batches: string[][] = [];
    const buf = createAuditBuffer(async (es) => {
      batches.push(es.map((e) => e.resource));
      await new Promise((r) => setTimeout(r, 5));
    }, { maxBatch: 100, maxDelayMs: 1 });
    const done = Array.from({ length: 250 }, (_, i) => buf.record(entry(i)));
    await Promise.all(done);
    assert.deepEqual(batches.flat(), Array.from({ length: 250 }, (_, i) => `t${i}`));
    assert.ok(batches.length <= 4, `${batches.length} batches`);
    assert.equal(buf.pending, 0);
  });

  it('a bad entry is refused alone; a failed commit rejects exactly its batch', async () => {
    let fail = true;
    const buf = createAuditBuffer(async () => {
      if (fail) {
        fail = false;
        throw new Error('disk full');
      }
    }, { maxDelayMs: 1 });
    await assert.rejects(buf.record({ ...entry(0), result: 'maybe' as 'allow' }), /unknown decision result/);
    await assert.rejects(buf.record(entry(1)), /disk full/);
    await buf.record(entry(2));
    await buf.close();
  });
});

describe('audit buffer: push', () => {
  it('builds lazy entries in the drain and reports a failed commit of pushed entries', async () => {
    const seen: string[] = [];
    let built = 0;
    const errors: number[] = [];
    let fail = true;
    const buf = createAuditBuffer(
      async (es) => {
        if (fail) {
          fail = false;
          throw new Error('down');
        }
        seen.push(...es.map((e) => e.resource));
      },
      { maxDelayMs: 1, onError: (_e, n) => errors.push(n) },
    );
    buf.push(() => {
      built++;
      return entry(0);
    });
    assert.equal(built, 0, 'not built on the caller\u2019s path');
    await buf.drain();
    assert.deepEqual(errors, [1]);
    buf.push(entry(1));
    await buf.drain();
    assert.deepEqual(seen, ['t1']);
  });
});

describe('audit buffer: pushWith', () => {
  it('builds each entry in the drain from the two values it was queued with, in order with other kinds', async () => {
    const seen: string[] = [];
    const buf = createAuditBuffer(async (es) => void seen.push(...es.map((e) => e.resource)), { maxDelayMs: 50 });
    let built = 0;
    const make = (i: number, suffix: string): DecisionLogEntry => {
      built++;
      return entry(Number(`${i}${suffix}`));
    };
    buf.pushWith(make, 1, '0');
    buf.push(entry(2));
    const p = buf.record(entry(3));
    buf.pushWith(make, 4, '1');
    assert.equal(built, 0, 'not built on the caller\u2019s path');
    assert.equal(buf.pending, 4);
    await buf.drain();
    await p;
    assert.deepEqual(seen, ['t10', 't2', 't3', 't41']);
  });

  it('a builder that throws fails its own batch only (reported), and the queue moves on', async () => {
    const seen: string[] = [];
    const errors: number[] = [];
    const buf = createAuditBuffer(async (es) => void seen.push(...es.map((e) => e.resource)), { maxBatch: 2, maxDelayMs: 50, onError: (_e, n) => errors.push(n) });
    buf.pushWith(() => {
      throw new Error('bad entry');
    }, 0, 0);
    buf.push(entry(1));
    buf.push(entry(2));
    await buf.drain();
    assert.deepEqual(errors, [2]);
    assert.deepEqual(seen, ['t2']);
    assert.equal(buf.pending, 0);
  });

  it('keeps order across many batches while entries keep arriving (the queue compacts as it drains)', async () => {
    const seen: number[] = [];
    const buf = createAuditBuffer(
      async (es) => {
        for (const e of es) seen.push(Number(e.resource.slice(1)));
        await new Promise((r) => setImmediate(r));
      },
      { maxBatch: 1000, maxDelayMs: 1 },
    );
    for (let i = 0; i < 20_000; i++) buf.pushWith(entry, i, undefined);
    const more = (async () => {
      await new Promise((r) => setImmediate(r));
      for (let i = 20_000; i < 25_000; i++) buf.pushWith(entry, i, undefined);
    })();
    await more;
    await buf.drain();
    assert.equal(seen.length, 25_000);
    assert.ok(seen.every((v, i) => v === i), 'out of order');
  });
});

describe('audit buffer: recordAll, as state.log uses it (maxDelayMs 0)', () => {
  it('keeps each call\u2019s entries in order, groups a burst of calls, and resolves each call only once committed', async () => {
    const batches: string[][] = [];
    const committed = new Set<string>();
    const buf = createAuditBuffer(
      async (es) => {
        batches.push(es.map((e) => e.resource));
        await new Promise((r) => setTimeout(r, 3));
        for (const e of es) committed.add(e.resource);
      },
      { maxDelayMs: 0 },
    );
    const calls = Array.from({ length: 200 }, (_, i) =>
      buf.recordAll([entry(2 * i), entry(2 * i + 1)]).then(() => {
        assert.ok(committed.has(`t${2 * i}`) && committed.has(`t${2 * i + 1}`), 'resolved before commit');
      }),
    );
    await Promise.all(calls);
    assert.deepEqual(batches.flat(), Array.from({ length: 400 }, (_, i) => `t${i}`));
    assert.ok(batches.length <= 3, `${batches.length} inserts for a burst of 200 calls`);
  });

  it('refuses a call with a bad entry whole, writing none of it', async () => {
    const seen: string[] = [];
    const buf = createAuditBuffer(async (es) => void seen.push(...es.map((e) => e.resource)), { maxDelayMs: 0 });
    await assert.rejects(buf.recordAll([entry(1), { ...entry(2), result: 'maybe' as 'allow' }]), /unknown decision result/);
    await buf.recordAll([entry(3)]);
    assert.deepEqual(seen, ['t3']);
  });

  it('close writes everything queued, and later entries are still written', async () => {
    const seen: string[] = [];
    const buf = createAuditBuffer(async (es) => void seen.push(...es.map((e) => e.resource)), { maxDelayMs: 50 });
    buf.push(entry(1));
    const p = buf.record(entry(2));
    await buf.close();
    await p;
    assert.deepEqual(seen, ['t1', 't2']);
    await buf.recordAll([entry(3)]);
    buf.push(entry(4));
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(seen, ['t1', 't2', 't3', 't4']);
  });
});
