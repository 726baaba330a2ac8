/**
 * The CLI's background server (`STEWARD_DAEMON`): the first embedded command
 * starts a `steward serve` on loopback, later commands go through it, and it
 * stops by itself when idle or with `steward stop`. It is held to the rules
 * of any server: no bootstrap token, a 0600 log, a server.json the CLI checks.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { steward, stewardJson } from '../support/cli.js';
import { pollUntil } from '../support/poll.js';
import { seedMigratedStore } from '../support/migrated-store.js';

interface Status {
  readonly target: string;
  readonly principal: string;
}

interface ServerJson {
  readonly pid: number;
  readonly url: string;
  readonly idleStopSeconds?: number;
}

let root: string;

before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-daemon-'));
});

/** A workspace with a store, for the tests about a running daemon (the first test starts from an empty STEWARD_HOME). */
async function homeWithStore(name: string): Promise<string> {
  const home = path.join(root, name);
  await seedMigratedStore(home);
  return home;
}

after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function serverJson(home: string): Promise<ServerJson | null> {
  const raw = await fs.readFile(path.join(home, 'server.json'), 'utf8').catch(() => null);
  return raw === null ? null : (JSON.parse(raw) as ServerJson);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const until = (what: string, check: () => Promise<boolean>): Promise<number> => pollUntil(what, check, 30_000, 100);

// The tests use a workspace each, so they run at once: most of their time is spent waiting for servers to start and stop.
describe('background server (STEWARD_DAEMON)', { concurrency: true }, () => {
  it('the first command starts it on loopback, later commands reuse it, and `steward stop` ends it', async () => {
    const home = path.join(root, 'reuse');
    const env = { STEWARD_HOME: home, STEWARD_DAEMON: '10m' };
    const created = await steward(['user', 'add', 'alice'], env);
    assert.equal(created.code, 0, created.stderr);
    const first = await serverJson(home);
    assert.ok(first !== null, 'the first command left a background server');
    assert.match(first.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'it listens on loopback only');
    assert.equal(first.idleStopSeconds, 600);

    const status = await stewardJson<Status>(['status'], env);
    assert.match(status.target, new RegExp(`^local server pid ${first.pid} at ${first.url} \\(background server: stops after 10m`));
    const users = await stewardJson<{ users: { name: string }[] }>(['user', 'list'], env);
    assert.deepEqual(users.users.map((u) => u.name), ['alice'], 'the write of the first command is what the second one reads');
    assert.equal((await serverJson(home))?.pid, first.pid, 'no second server was started');

    const stopped = await stewardJson<{ stopped: boolean; pid: number }>(['stop'], env);
    assert.deepEqual(stopped, { stopped: true, pid: first.pid });
    assert.equal(alive(first.pid), false);
    assert.equal(await serverJson(home), null, 'server.json is removed');
    // Without the variable, the next command opens the workspace itself again.
    const embedded = await stewardJson<Status>(['status'], { STEWARD_HOME: home });
    assert.match(embedded.target, /^embedded workspace /);
  });

  it('stops by itself after its idle time, and the next command starts a new one', async () => {
    const home = await homeWithStore('idle');
    const env = { STEWARD_HOME: home, STEWARD_DAEMON: '2s' };
    assert.equal((await steward(['user', 'add', 'bob'], env)).code, 0);
    const first = await serverJson(home);
    assert.ok(first !== null);
    await until('the idle server exits', async () => !alive(first.pid));
    assert.equal(await serverJson(home), null);
    const users = await stewardJson<{ users: { name: string }[] }>(['user', 'list'], env);
    assert.deepEqual(users.users.map((u) => u.name), ['bob']);
    const second = await serverJson(home);
    assert.ok(second !== null && second.pid !== first.pid, 'a new background server answered');
    await stewardJson(['stop'], env);
  });

  // Threat: a background server nobody watches prints the bootstrap admin token into a log file.
  it('creates no bootstrap admin token, and its log is private and holds no secret', async () => {
    const home = await homeWithStore('secrets');
    const env = { STEWARD_HOME: home, STEWARD_DAEMON: '1' };
    const tokens = await stewardJson<{ tokens: { name: string }[] }>(['token', 'list'], env);
    assert.deepEqual(tokens.tokens, [], 'no admin token was created behind the user’s back');
    const log = path.join(home, 'daemon.log');
    const st = await fs.stat(log);
    assert.equal(st.mode & 0o777, 0o600);
    // The server may print its address just after it answered the command: wait for the line.
    await until('the background server logged its address', async () => /listening on http:\/\/127\.0\.0\.1/.test(await fs.readFile(log, 'utf8')));
    const text = await fs.readFile(log, 'utf8');
    assert.doesNotMatch(text, /STEWARD_TOKEN|stw_|stwlocal_/);
    await stewardJson(['stop'], env);
  });

  // Threat: two commands at once each start a server on one workspace, and one of them fails or writes past the other.
  it('two commands started at once share one background server', async () => {
    const home = await homeWithStore('race');
    const env = { STEWARD_HOME: home, STEWARD_DAEMON: '10m' };
    const [a, b] = await Promise.all([steward(['user', 'add', 'ann'], env), steward(['user', 'add', 'ben'], env)]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const users = await stewardJson<{ users: { name: string }[] }>(['user', 'list'], env);
    assert.deepEqual(users.users.map((u) => u.name).sort(), ['ann', 'ben']);
    await stewardJson(['stop'], env);
  });

  it('a value that is not a duration is a configuration error naming STEWARD_DAEMON, and nothing starts', async () => {
    const home = path.join(root, 'bad');
    const r = await steward(['status'], { STEWARD_HOME: home, STEWARD_DAEMON: 'soon' });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /STEWARD_DAEMON: must be/);
    assert.equal(await serverJson(home), null);
  });

  it('`steward serve --idle-stop` refuses a malformed duration, naming the option', async () => {
    const r = await steward(['serve', '--port', '0', '--idle-stop', 'later'], { STEWARD_HOME: path.join(root, 'bad-idle') });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--idle-stop: `later` is not a duration/);
  });

  it('`steward stop` with no server says so and succeeds', async () => {
    const r = await stewardJson<{ stopped: boolean }>(['stop'], { STEWARD_HOME: path.join(root, 'none') });
    assert.deepEqual(r, { stopped: false });
  });
});
