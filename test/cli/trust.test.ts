/**
 * Trust fixes of the CLI (issue #10), each through the built binary as an
 * attacker or a careless admin would meet it: workspace file modes under a
 * permissive umask, a planted `server.json`, a one-shot command that leaves a
 * flush behind, a closed stdout, the local admin's queries, and `serve` on a
 * busy port.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN, steward, stewardJson, type CliResult } from '../support/cli.js';
import { seedMigratedStore } from '../support/migrated-store.js';

const GOLDEN_CLOUDTRAIL = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'audit', 'golden', 'cloudtrail.input.jsonl');

const homes: string[] = [];
async function freshHome(tag: string): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), `steward-trust-${tag}-`));
  homes.push(d);
  return path.join(d, 'home');
}
after(async () => {
  for (const d of homes) await fs.rm(d, { recursive: true, force: true });
});

/** A fresh home with a store already in it, for the tests that are not about creating one. */
async function homeWithStore(tag: string): Promise<string> {
  const home = await freshHome(tag);
  await seedMigratedStore(home);
  return home;
}

/** The binary under a given umask (the shell sets it, as a user's login would). */
function stewardUnder(umask: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', `umask ${umask} && exec "$0" "$@"`, process.execPath, BIN, ...args], {
      env: { PATH: process.env['PATH'], HOME: process.env['HOME'], ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Every folder and file under `dir` whose mode is not 0700 / 0600. */
async function tooOpen(dir: string): Promise<string[]> {
  const bad: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      const s = await fs.lstat(full);
      if (s.isSymbolicLink()) continue;
      const want = s.isDirectory() ? 0o700 : 0o600;
      if ((s.mode & 0o777) !== want) bad.push(`${(s.mode & 0o777).toString(8)} ${path.relative(dir, full)}`);
      if (s.isDirectory()) await walk(full);
    }
  };
  const top = await fs.stat(dir);
  if ((top.mode & 0o777) !== 0o700) bad.push(`${(top.mode & 0o777).toString(8)} .`);
  await walk(dir);
  return bad;
}

// Each test has its own workspace: they run at once.
describe('workspace file modes', { concurrency: true }, () => {
  for (const umask of ['0022', '0000']) {
    // Threat: another local user reads the demo's SSNs, the security lake or the store because the user's umask is permissive.
    it(`keeps every folder 0700 and every file 0600 after demo, flush and query under umask ${umask}`, { timeout: 180_000 }, async () => {
      const home = await freshHome(`umask${umask}`);
      const env = { STEWARD_HOME: home };
      for (const args of [['demo'], ['audit', 'flush'], ['query', '--as', 'alice', 'SELECT count(*) AS n FROM claims.patient_claims']]) {
        const r = await stewardUnder(umask, args, env);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      }
      assert.ok(existsSync(path.join(home, 'lake', 'demo', 'claims', 'patient_claims', 'data.parquet')));
      assert.ok(existsSync(path.join(home, 'lake', 'security')), 'the flush wrote the security lake');
      assert.deepEqual(await tooOpen(home), []);
    });
  }

  // Threat: a workspace made world-readable (older version, careless mkdir) stays readable forever.
  it('narrows an existing world-readable STEWARD_HOME and says so', { timeout: 60_000 }, async () => {
    // A workspace whose store exists (the modes PGlite gives a new store are the umask tests' subject).
    const home = await homeWithStore('open');
    await fs.mkdir(path.join(home, 'lake'), { recursive: true });
    await fs.writeFile(path.join(home, 'lake', 'notes.csv'), 'ssn\n123-45-6789\n');
    chmodSync(home, 0o755);
    chmodSync(path.join(home, 'lake', 'notes.csv'), 0o644);
    const r = await stewardUnder('0022', ['status'], { STEWARD_HOME: home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: workspace `.*` was open to other users \(mode 0755\); it is now 0700/);
    assert.deepEqual(await tooOpen(home), []);
  });
});

interface Recorder {
  readonly url: string;
  readonly received: string[];
  close(): Promise<void>;
}

/** A plain HTTP server that answers like Steward would and records every request (method, path, headers, body). */
async function recorder(): Promise<Recorder> {
  const received: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      received.push(`${req.method} ${req.url} ${JSON.stringify(req.headers)} ${body}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"principal":"user:local-admin","role":"admin","changes":0}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return { url: `http://127.0.0.1:${port}`, received, close: () => new Promise((r) => server.close(() => r())) };
}

describe('a planted server.json', () => {
  let home: string;
  let fake: Recorder;
  let policyFile: string;
  const secretEnv = (): NodeJS.ProcessEnv => ({ STEWARD_HOME: home, STEWARD_TOKEN: 'stw_the_users_real_secret' });

  before(async () => {
    home = await homeWithStore('planted');
    fake = await recorder();
    policyFile = path.join(path.dirname(home), 'secret-policy.yaml');
    await fs.writeFile(policyFile, 'apiVersion: steward/v1\nusers:\n  secret_hire: { displayName: Secret Hire }\n');
  });
  after(async () => {
    await fake.close();
  });

  async function plant(fields: { pid: number; hostname?: string }, mode = 0o600): Promise<string> {
    const file = path.join(home, 'server.json');
    await fs.rm(file, { force: true });
    await fs.writeFile(file, JSON.stringify({ pid: fields.pid, url: fake.url, token: 'planted', hostname: fields.hostname ?? os.hostname() }));
    chmodSync(file, mode);
    return file;
  }

  /** `status` and `apply <policy>` with STEWARD_TOKEN set: the two things an attacker wants to receive. */
  async function runBoth(): Promise<CliResult[]> {
    return [await steward(['status'], secretEnv()), await steward(['apply', policyFile], secretEnv())];
  }

  // Threat: anyone who can write the folder plants a world-writable server.json and collects the token and policy files.
  it('refuses a server.json with mode 0644, and the fake server receives nothing', { timeout: 60_000 }, async () => {
    await plant({ pid: process.pid }, 0o644);
    for (const r of await runBoth()) {
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /refusing `.*server\.json`: its mode is 0644, not 0600/);
    }
    assert.deepEqual(fake.received, []);
  });

  // Threat: another local user plants the file (tests run as root, so chown to nobody).
  it('refuses a server.json owned by another user, and the fake server receives nothing', { timeout: 60_000 }, async () => {
    const file = await plant({ pid: process.pid });
    chownSync(file, 65534, 65534);
    for (const r of await runBoth()) {
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /refusing `.*server\.json`: it belongs to uid 65534, not to you/);
    }
    assert.deepEqual(fake.received, []);
  });

  // Threat: a home synced from another machine points at a server there (or anywhere).
  it('ignores a server.json naming another host, says so, and works on the workspace itself', { timeout: 60_000 }, async () => {
    await plant({ pid: process.pid, hostname: 'attacker.example' });
    const [status, apply] = await runBoth();
    assert.equal(status?.code, 0, status?.stderr);
    assert.match(status?.stderr ?? '', /ignoring `.*server\.json`: it names host `attacker\.example`/);
    assert.match(status?.stdout ?? '', /embedded workspace/);
    assert.equal(apply?.code, 0, apply?.stderr);
    assert.deepEqual(fake.received, []);
  });

  // Threat: a live pid that is not a steward server (a reused pid, or one the attacker controls).
  it('ignores a server.json whose pid is a sleep process, and the fake server receives nothing', { timeout: 60_000 }, async () => {
    const sleeper: ChildProcess = spawn('sleep', ['120'], { stdio: 'ignore' });
    try {
      await plant({ pid: sleeper.pid ?? -1 });
      const [status, apply] = await runBoth();
      assert.equal(status?.code, 0, status?.stderr);
      assert.match(status?.stderr ?? '', new RegExp(`ignoring \`.*server\\.json\`: pid ${sleeper.pid} does not hold this workspace as a steward server`));
      assert.match(status?.stdout ?? '', /embedded workspace/);
      assert.equal(apply?.code, 0, apply?.stderr);
    } finally {
      sleeper.kill();
    }
    assert.deepEqual(fake.received, []);
  });

  // Threat: the attacker's own HTTP server, with a lock planted to look like it owns the workspace.
  it('ignores a server.json whose pid is a plain HTTP server holding a planted lock, and sends it nothing', { timeout: 60_000 }, async () => {
    await plant({ pid: process.pid });
    const lock = path.join(home, 'lock');
    await fs.writeFile(lock, JSON.stringify({ pid: process.pid, purpose: 'server', startedAt: new Date().toISOString(), hostname: os.hostname() }), { mode: 0o600 });
    try {
      const r = await steward(['status'], secretEnv());
      assert.match(r.stderr, new RegExp(`ignoring \`.*server\\.json\`: pid ${process.pid} is not a steward server`));
      // The planted lock still keeps the CLI off the store: it refuses, it never falls back to the fake server.
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /STEWARD_E_WORKSPACE_LOCKED/);
    } finally {
      await fs.rm(lock, { force: true });
    }
    assert.deepEqual(fake.received, []);
  });
});

describe('one-shot commands', () => {
  let home: string;
  before(async () => {
    home = await homeWithStore('oneshot');
    const demo = await steward(['demo'], { STEWARD_HOME: home });
    assert.equal(demo.code, 0, demo.stderr);
  });

  // Threat: an ingest that crosses the size threshold starts a flush the CLI then closes the store under ("PGlite is closed"), losing the flush.
  it('an ingest over the size threshold flushes before exit, with no PGlite-is-closed error', { timeout: 240_000 }, async () => {
    const env = { STEWARD_HOME: home };
    assert.equal((await steward(['audit', 'source', 'create', 'trail', '--mapping', 'cloudtrail'], env)).code, 0);
    const line = (await fs.readFile(GOLDEN_CLOUDTRAIL, 'utf8')).split('\n')[0] ?? '';
    const file = path.join(path.dirname(home), 'trail.jsonl');
    await fs.writeFile(file, `${line}\n`.repeat(50_001));
    const r = await steward(['audit', 'ingest', 'trail', file], env);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /PGlite is closed|flush failed|Unhandled|Error:/);
    const { sources } = await stewardJson<{ sources: { name: string; events: number; backlog: number }[] }>(['audit', 'sources'], env);
    const trail = sources.find((s) => s.name === 'trail');
    assert.equal(trail?.events, 50_001, JSON.stringify(trail));
    assert.equal(trail?.backlog, 0);
  });

  // Threat: `steward … | head -1` crashes with an unhandled EPIPE and a stack trace.
  it('access config show into a closed pipe exits 0 without an EPIPE error', { timeout: 60_000 }, async () => {
    const child = spawn(process.execPath, [BIN, 'access', 'config', 'show'], { env: { PATH: process.env['PATH'], STEWARD_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // the reader is gone before the first byte
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /EPIPE|Unhandled|at /);
  });

  // Failure: `apply -` looked for a file named `-`, so piping a config in was impossible.
  it('access config apply - reads the configuration from stdin', { timeout: 60_000 }, async () => {
    const env = { STEWARD_HOME: home };
    const shown = await steward(['access', 'config', 'show'], env);
    assert.equal(shown.code, 0, shown.stderr);
    const changed = shown.stdout.replace('Browse and read tables (guardrails still apply)', 'Browse and read tables, from stdin');
    const r = await steward(['access', 'config', 'apply', '-'], env, changed);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /applied from stdin/);
    assert.match((await steward(['access', 'config', 'show'], env)).stdout, /from stdin/);
  });

  // Failure: the local admin's query said "table not found", sending admins hunting for a table that exists.
  it('a query by the local admin without --as says it has no data access and how to use --as or a grant', { timeout: 60_000 }, async () => {
    const r = await steward(['query', 'SELECT count(*) FROM claims.patient_claims'], { STEWARD_HOME: home });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the local admin \(`user:local-admin`\) manages policy but has no data access/);
    assert.match(r.stderr, /--as/);
    assert.match(r.stderr, /steward grant create --principal local-admin/);
    assert.doesNotMatch(r.stderr, /not found/);
  });
});

describe('steward serve on a busy port', () => {
  // Threat: a failed start prints (and stores) a bootstrap admin token nobody will use, and keeps the workspace locked.
  it('exits non-zero before printing or storing a bootstrap token, and releases the lock', { timeout: 60_000 }, async () => {
    const home = await homeWithStore('busy');
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const r = await steward(['serve', '--host', '127.0.0.1', '--port', String(port)], { STEWARD_HOME: home });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, new RegExp(`port ${port} on \`127\\.0\\.0\\.1\` is in use`));
      assert.doesNotMatch(r.stdout, /STEWARD_TOKEN|Bootstrapped/);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
    assert.equal(existsSync(path.join(home, 'lock')), false, 'the lock is released');
    assert.equal(existsSync(path.join(home, 'server.json')), false);
    const tokens = await stewardJson<{ tokens: unknown[] }>(['token', 'list'], { STEWARD_HOME: home });
    assert.deepEqual(tokens.tokens, [], 'no bootstrap token was stored');
  });
});
