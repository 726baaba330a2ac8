/**
 * `steward serve` on an embedded workspace: the admin token is printed once,
 * CLI commands on the same workspace go through the running server instead
 * of opening the store under it, and a second process cannot take the store.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BIN, steward, stewardJson } from '../support/cli.js';

let home: string;
let env: NodeJS.ProcessEnv;

interface Running {
  readonly child: ChildProcess;
  readonly url: string;
  readonly output: () => string;
}

function startServer(): Promise<Running> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], { env: { PATH: process.env['PATH'], ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 60_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve({ child, url: m[1], output: () => out });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${out}`));
    });
  });
}

async function stop(r: Running): Promise<void> {
  r.child.removeAllListeners('exit');
  const exited = new Promise((resolve) => r.child.once('exit', resolve));
  r.child.kill('SIGTERM');
  await exited;
}

before(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-serve-'));
  env = { STEWARD_HOME: home };
});

after(async () => {
  await fs.rm(home, { recursive: true, force: true });
});

describe('steward serve', () => {
  it('prints the bootstrap admin token once, and it works over HTTP', async () => {
    const first = await startServer();
    try {
      const m = /STEWARD_TOKEN=(stw_\S+)/.exec(first.output());
      assert.ok(m?.[1], first.output());
      const res = await fetch(`${first.url}/v1/me`, { headers: { authorization: `Bearer ${m[1]}` } });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { role: string }).role, 'admin');
      assert.equal((await fetch(`${first.url}/v1/me`)).status, 401);
    } finally {
      await stop(first);
    }
    const second = await startServer();
    try {
      assert.doesNotMatch(second.output(), /STEWARD_TOKEN=/);
    } finally {
      await stop(second);
    }
  });

  it('routes CLI commands on the same workspace through the running server', async () => {
    const s = await startServer();
    try {
      const status = await stewardJson<{ target: string }>(['status'], env);
      assert.match(status.target, /local server/);
      const demo = await stewardJson<{ changes: number }>(['demo'], env);
      assert.ok(demo.changes > 0);
      const d = await stewardJson<{ decision: string }>(['authorize', '--principal', 'alice', '--action', 'SELECT', '--resource', 'lake.claims.patient_claims.ssn'], env);
      assert.equal(d.decision, 'deny');
    } finally {
      await stop(s);
    }
    // With the server gone, the CLI opens the workspace itself and sees the same state.
    const status = await stewardJson<{ target: string }>(['status'], env);
    assert.match(status.target, /embedded workspace/);
    const d = await stewardJson<{ decision: string }>(['authorize', '--principal', 'carol', '--action', 'SELECT', '--resource', 'lake.claims.patient_claims.ssn'], env);
    assert.equal(d.decision, 'allow');
  });

  it('a second server on the same workspace is refused, not allowed to corrupt it', async () => {
    const s = await startServer();
    try {
      const r = await steward(['serve', '--port', '0'], env);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /STEWARD_E_WORKSPACE_LOCKED/);
    } finally {
      await stop(s);
    }
  });
});
