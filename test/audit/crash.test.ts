/**
 * Crash durability with kill -9: acknowledged events survive a crash before
 * any flush, and a crash between writing a batch's Parquet file and marking
 * its rows written neither loses nor duplicates a single event.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config.js';
import { openWorkspace } from '../../src/workspace/open.js';
import { openDuckDb } from '../../src/lake/duckdb.js';
import { steward } from '../support/cli.js';
import { seedMigratedStore } from '../support/migrated-store.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const child = path.join(here, 'fixtures', 'crash-child.ts');

function runChild(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describe('crash durability (kill -9)', () => {
  let home: string;
  before(async () => {
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-crash-'));
    await seedMigratedStore(home); // the crashes, not creating a store, are the subject
  });
  after(async () => fs.rm(home, { recursive: true, force: true }));

  it('acknowledged events survive a kill before the flush; a kill between file and commit is redone exactly once', async () => {
    const a = await runChild([home, 'append', '250']);
    assert.equal(a.signal, 'SIGKILL', a.stderr);
    assert.match(a.stdout, /acked 250/);

    const b = await runChild([home, 'flush-crash']);
    assert.equal(b.signal, 'SIGKILL', b.stderr);
    assert.match(b.stdout, /wrote batch 1/);

    const lake = path.join(home, 'lake', 'security', 'ext', 'steward', '**', '*.parquet');
    const duck = await openDuckDb();
    try {
      // The crashed batch's file is there, but the batch is still pending in the store.
      const [before] = await duck.all<{ n: number }>('SELECT count(*) AS n FROM read_parquet($1)', [lake]);
      assert.equal(before?.n, 100);

      const ws = await openWorkspace(loadConfig({}, { home }), { purpose: 'cli' });
      try {
        const { rows: pending } = await ws.db.query<{ pending: { batch: number } | null }>("SELECT pending FROM steward.audit_sources WHERE name = 'steward'");
        assert.equal(pending[0]?.pending?.batch, 1);
        const { rows: total } = await ws.db.query<{ n: number }>('SELECT count(*)::int AS n FROM steward.decision_log');
        const logged = Number(total[0]?.n);
        const { rows: acked } = await ws.db.query<{ n: number }>("SELECT count(*)::int AS n FROM steward.decision_log WHERE actor = 'user:crash'");
        assert.equal(Number(acked[0]?.n), 250, 'every acknowledged row survived the kill');

        await ws.services.audit?.service.flush();
        const [after] = await duck.all<{ n: number; uids: number; seqs: number; maxseq: number; crash: number }>(
          "SELECT count(*) AS n, count(DISTINCT metadata.uid) AS uids, count(DISTINCT seq) AS seqs, max(seq) AS maxseq, count(*) FILTER (WHERE actor.user.uid = 'user:crash') AS crash FROM read_parquet($1)",
          [lake],
        );
        // Exactly the rows of the decision log as it was (this flush adds its own rows only after it).
        assert.equal(after?.crash, 250);
        assert.ok((after?.n ?? 0) >= logged);
        assert.equal(after?.uids, after?.n, 'no event twice');
        assert.equal(after?.seqs, after?.n);
        assert.equal(after?.maxseq, after?.n, 'no gap');
        const files = await duck.all<{ file: string }>('SELECT file FROM glob($1) ORDER BY file', [lake]);
        assert.match(files[0]?.file ?? '', /b000000000001\.parquet$/, 'the redone batch overwrote its own file');
        const v = await ws.services.audit?.service.verify('steward');
        assert.equal(v?.ok, true, JSON.stringify(v?.problems));
        const { rows: left } = await ws.db.query<{ n: number }>('SELECT count(*)::int AS n FROM steward.decision_log WHERE audit_batch IS NULL');
        const { rows: head } = await ws.db.query<{ head_seq: number }>("SELECT head_seq FROM steward.audit_sources WHERE name = 'steward'");
        assert.equal(Number(head[0]?.head_seq) + Number(left[0]?.n), (await ws.db.query<{ n: number }>('SELECT count(*)::int AS n FROM steward.decision_log')).rows[0]?.n);
      } finally {
        await ws.close();
      }
    } finally {
      duck.close();
    }
  });
});

describe('a flush killed between the slices of its claim', () => {
  let home: string;
  before(async () => {
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-crash-slices-'));
    await seedMigratedStore(home);
  });
  after(async () => fs.rm(home, { recursive: true, force: true }));

  // Threat: a batch claimed in slices is redone after a crash with more rows than were stamped before it (a different
  // batch under the same name), or the unstamped rest is lost or written twice.
  it('redoes the batch with exactly the rows stamped before the kill; the rest follow in later batches, once', async () => {
    const a = await runChild([home, 'append', '250']);
    assert.equal(a.signal, 'SIGKILL', a.stderr);
    const b = await runChild([home, 'claim-crash']);
    assert.equal(b.signal, 'SIGKILL', b.stderr);
    assert.match(b.stdout, /claimed 30 of batch 1/);

    const ws = await openWorkspace(loadConfig({}, { home }), { purpose: 'cli' });
    const duck = await openDuckDb();
    try {
      const { rows: stamped } = await ws.db.query<{ n: number }>('SELECT count(*)::int AS n FROM steward.decision_log WHERE audit_batch = 1');
      assert.equal(Number(stamped[0]?.n), 30, 'the killed claim stamped one slice');
      const { rows: total } = await ws.db.query<{ n: number }>('SELECT count(*)::int AS n FROM steward.decision_log');
      const logged = Number(total[0]?.n);

      await ws.services.audit?.service.flush();
      const lake = path.join(home, 'lake', 'security', 'ext', 'steward', '**', '*.parquet');
      const [after] = await duck.all<{ n: number; uids: number; maxseq: number; crash: number }>(
        "SELECT count(*) AS n, count(DISTINCT metadata.uid) AS uids, max(seq) AS maxseq, count(*) FILTER (WHERE actor.user.uid = 'user:crash') AS crash FROM read_parquet($1)",
        [lake],
      );
      assert.equal(after?.crash, 250);
      assert.ok((after?.n ?? 0) >= logged);
      assert.equal(after?.uids, after?.n, 'no event twice');
      assert.equal(after?.maxseq, after?.n, 'no gap');
      const [first] = await duck.all<{ n: number }>('SELECT count(*) AS n FROM read_parquet($1) WHERE filename LIKE $2', [lake, '%b000000000001.parquet']);
      assert.equal(first?.n, 30, 'the redone batch is the 30 rows stamped before the kill');
      const v = await ws.services.audit?.service.verify('steward');
      assert.equal(v?.ok, true, JSON.stringify(v?.problems));
    } finally {
      duck.close();
      await ws.close();
    }
  });
});

describe('audit verify after a killed flush (CLI)', () => {
  let home: string;
  before(async () => {
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-crash-verify-'));
    await seedMigratedStore(home);
  });
  after(async () => fs.rm(home, { recursive: true, force: true }));

  interface Report {
    source: string;
    ok: boolean;
    events: number;
    problems: { kind: string }[];
  }

  // Threat: after a kill -9 mid-flush the lake holds a batch the chain does not record yet; an auditor
  // running verify is told "duplicated"/"unrecorded file" (crying wolf trains people to ignore verify),
  // and the killed writer's staging files pile up.
  it('recovers the killed batch when verify starts: no duplicates reported, staging cleaned', async () => {
    assert.equal((await runChild([home, 'append', '150'])).signal, 'SIGKILL');
    // Killed after the batch's file is in the lake, before the chain records it ...
    const b = await runChild([home, 'flush-crash']);
    assert.equal(b.signal, 'SIGKILL', b.stderr);
    // ... then the process taking the batch over is killed inside the writer.
    const c = await runChild([home, 'flush-kill-staging']);
    assert.equal(c.signal, 'SIGKILL', c.stdout + c.stderr);
    assert.match(c.stdout, /staging seen/);
    const staging = path.join(home, 'lake', 'security', '.staging');
    assert.ok((await fs.readdir(staging)).length > 0, 'the killed writer left staging files behind');

    const env = { STEWARD_HOME: home };
    const r = await steward(['audit', 'verify', 'steward', '--json'], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const one = JSON.parse(r.stdout) as Report;
    assert.equal(one.ok, true, JSON.stringify(one.problems));
    assert.deepEqual(one.problems, []);
    assert.ok(one.events >= 100, 'the recovered batch is part of the chain');
    assert.deepEqual(await fs.readdir(staging), [], 'staging files of the dead writer are removed');

    const ws = await openWorkspace(loadConfig({}, { home }), { purpose: 'cli' });
    try {
      const { rows } = await ws.db.query<{ pending: unknown }>("SELECT pending FROM steward.audit_sources WHERE name = 'steward'");
      assert.equal(rows[0]?.pending, null, 'recovery completed the pending batch');
    } finally {
      await ws.close();
    }
  });

  // Threat: `audit verify` with no source checked nothing (or only `steward`), so a tampered custom
  // source passed an auditor's routine check.
  it('verify with no source checks every source and fails on a tampered custom one', async () => {
    const ws = await openWorkspace(loadConfig({}, { home }), { purpose: 'cli' });
    const audit = ws.services.audit;
    assert.ok(audit);
    try {
      await audit.service.createSource({ name: 'cloudtrail', mapping: 'cloudtrail' });
      const lines = (await fs.readFile(path.join(here, 'golden', 'cloudtrail.input.jsonl'), 'utf8')).split('\n').filter((l) => l.trim() !== '');
      await audit.service.ingest('cloudtrail', lines);
      await audit.service.flush();
    } finally {
      await ws.close();
    }
    const env = { STEWARD_HOME: home };
    const clean = await steward(['audit', 'verify', '--json'], env);
    assert.equal(clean.code, 0, clean.stdout + clean.stderr);
    const all = JSON.parse(clean.stdout) as { ok: boolean; reports: Report[] };
    assert.equal(all.ok, true);
    assert.deepEqual(all.reports.map((x) => x.source), ['cloudtrail', 'steward']);

    const ctFiles = (await fs.readdir(path.join(home, 'lake', 'security', 'ext', 'cloudtrail'), { recursive: true })).filter((f) => f.endsWith('.parquet'));
    assert.ok(ctFiles.length > 0);
    await fs.rm(path.join(home, 'lake', 'security', 'ext', 'cloudtrail', ctFiles[0] ?? ''));
    const bad = await steward(['audit', 'verify'], env);
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout, /^cloudtrail: \d+ problem\(s\)/m);
    assert.match(bad.stdout, /^steward: \d+ event\(s\), chain intact/m);
  });
});
