/**
 * Which database errors mean "the database is away, retry" (503) and which
 * are Steward's or the statement's fault (unchanged): the classification
 * behind src/store/db.ts, with the errors `pg` and Node really raise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pg from 'pg';
import { isUnavailable } from '../../src/store/db.js';
import { StewardError } from '../../src/errors.js';

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

test('a refused connection, as the pg driver raises it, is unavailability', async () => {
  // threat: a stopped database turns into 500 internal errors instead of a retryable 503
  const client = new pg.Client({ connectionString: `postgres://steward@127.0.0.1:${await closedPort()}/steward`, connectionTimeoutMillis: 5_000 });
  const e = await client.connect().then(
    () => null,
    (err: unknown) => err,
  );
  assert.ok(e !== null);
  assert.equal(isUnavailable(e), true, String(e));
});

test('a server that closes the connection mid-conversation is unavailability', async () => {
  // threat: a restart that terminates open sessions (fast shutdown) surfaces as a 500
  const srv = net.createServer((socket) => socket.destroy());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const client = new pg.Client({ connectionString: `postgres://steward@127.0.0.1:${(srv.address() as net.AddressInfo).port}/steward` });
    const e = await client.connect().then(
      () => null,
      (err: unknown) => err,
    );
    assert.ok(e !== null);
    assert.equal(isUnavailable(e), true, String(e));
  } finally {
    srv.close();
  }
});

test('shutdown and startup states are unavailability; a bad statement or a constraint is not', () => {
  // threat: a real bug (or an attacker-triggered constraint error) hidden behind "retry in a moment", or the reverse
  const withState = (code: string): Error => Object.assign(new Error(`sqlstate ${code}`), { code });
  for (const code of ['57P01', '57P02', '57P03', '08006', '08001', '53300']) assert.equal(isUnavailable(withState(code)), true, code);
  for (const code of ['42601', '23505', '40001', '42P01', '28P01']) assert.equal(isUnavailable(withState(code)), false, code);
  assert.equal(isUnavailable(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })), true, 'EPIPE looks like a SQLSTATE but is a socket error');
  assert.equal(isUnavailable(new StewardError('STEWARD_E_VALIDATION', 'x')), false);
  assert.equal(isUnavailable(new Error('something else')), false);
});
