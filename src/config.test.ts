import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadConfig } from './config.js';
import { isStewardError } from './errors.js';

test('the lake roots always include the lake folder, then STEWARD_LAKE_ROOTS, resolved', () => {
  const c = loadConfig({ STEWARD_HOME: '/srv/steward', STEWARD_LAKE_ROOTS: `/data/lake${path.delimiter}relative/dir${path.delimiter}` });
  assert.deepEqual(c.lakeRoots, ['/srv/steward/lake', '/data/lake', path.resolve('relative/dir')]);
  assert.deepEqual(loadConfig({ STEWARD_HOME: '/srv/steward' }).lakeRoots, ['/srv/steward/lake']);
});

test('a lake folder that is the workspace folder, or contains it, is a configuration error naming the variable', () => {
  // Threat: a careless STEWARD_LAKE_DIR makes the store and the local admin token registrable lake data.
  for (const lakeDir of ['/srv/steward', '/srv', '/']) {
    assert.throws(
      () => loadConfig({ STEWARD_HOME: '/srv/steward', STEWARD_LAKE_DIR: lakeDir }),
      (e: unknown) => isStewardError(e) && e.code === 'STEWARD_E_CONFIG' && /STEWARD_LAKE_DIR: must not be the workspace folder/.test(e.message),
      lakeDir,
    );
  }
  assert.equal(loadConfig({ STEWARD_HOME: '/srv/steward', STEWARD_LAKE_DIR: '/data/lake' }).lakeDir, '/data/lake');
});

test('session timeouts default to 30 minutes idle and 12 hours absolute, and read durations', () => {
  const d = loadConfig({ STEWARD_HOME: '/srv/steward' });
  assert.equal(d.sessionIdle, 1800);
  assert.equal(d.sessionMax, 43_200);
  const c = loadConfig({ STEWARD_HOME: '/srv/steward', STEWARD_SESSION_IDLE: '15m', STEWARD_SESSION_MAX: '1d' });
  assert.equal(c.sessionIdle, 900);
  assert.equal(c.sessionMax, 86_400);
});

test('a session timeout that is not a duration, too short, too long or idle beyond the maximum stops the start naming the variable', () => {
  // Threat: a typo that silently gives sessions no timeout, or a one-second one nobody can work with.
  const cases: [Record<string, string>, RegExp][] = [
    [{ STEWARD_SESSION_IDLE: 'forever' }, /STEWARD_SESSION_IDLE: .*`forever` is not a duration/],
    [{ STEWARD_SESSION_IDLE: '10s' }, /STEWARD_SESSION_IDLE/],
    [{ STEWARD_SESSION_MAX: '365d' }, /STEWARD_SESSION_MAX/],
    [{ STEWARD_SESSION_IDLE: '2h', STEWARD_SESSION_MAX: '1h' }, /STEWARD_SESSION_IDLE: must not exceed STEWARD_SESSION_MAX/],
  ];
  for (const [env, pattern] of cases) {
    assert.throws(
      () => loadConfig({ STEWARD_HOME: '/srv/steward', ...env }),
      (e: unknown) => isStewardError(e) && e.code === 'STEWARD_E_CONFIG' && pattern.test(e.message),
      JSON.stringify(env),
    );
  }
});

const OIDC = {
  STEWARD_HOME: '/srv/steward',
  STEWARD_OIDC_ISSUER: 'https://login.example.com/realms/acme',
  STEWARD_OIDC_CLIENT_ID: 'steward',
  STEWARD_OIDC_CLIENT_SECRET: 'client-secret-value',
  STEWARD_PUBLIC_URL: 'https://steward.example.com',
};

test('OIDC settings are read whole, with the groups claim defaulting to `groups`', () => {
  const c = loadConfig(OIDC);
  assert.equal(c.oidcIssuer, OIDC.STEWARD_OIDC_ISSUER);
  assert.equal(c.oidcClientId, 'steward');
  assert.equal(c.oidcClientSecret, 'client-secret-value');
  assert.equal(c.oidcGroupsClaim, 'groups');
  assert.equal(loadConfig({ ...OIDC, STEWARD_OIDC_GROUPS_CLAIM: 'roles' }).oidcGroupsClaim, 'roles');
});

test('a half-configured OIDC provider stops the start naming each missing variable, and never echoes the secret', () => {
  // Threat: a sign-in that fails (or falls back to something weaker) at the first user instead of at deployment.
  for (const missing of ['STEWARD_OIDC_CLIENT_ID', 'STEWARD_OIDC_CLIENT_SECRET', 'STEWARD_PUBLIC_URL', 'STEWARD_OIDC_ISSUER'] as const) {
    const env: Record<string, string> = { ...OIDC };
    delete env[missing];
    assert.throws(
      () => loadConfig(env),
      (e: unknown) => isStewardError(e) && e.code === 'STEWARD_E_CONFIG' && e.message.includes(`${missing}: is required`) && !e.message.includes('client-secret-value'),
      missing,
    );
  }
});

test('an OIDC issuer or public URL over plain http off loopback, or with credentials, is refused', () => {
  // Threat: ID tokens and authorization codes travelling in clear text.
  for (const [name, value] of [
    ['STEWARD_OIDC_ISSUER', 'http://login.example.com'],
    ['STEWARD_OIDC_ISSUER', 'https://user:pw@login.example.com'],
    ['STEWARD_PUBLIC_URL', 'http://steward.example.com'],
    ['STEWARD_PUBLIC_URL', 'https://steward.example.com/console'],
    ['STEWARD_PUBLIC_URL', 'javascript:alert(1)'],
  ] as const) {
    assert.throws(
      () => loadConfig({ ...OIDC, [name]: value }),
      (e: unknown) => isStewardError(e) && e.code === 'STEWARD_E_CONFIG' && e.message.includes(`${name}:`),
      `${name}=${value}`,
    );
  }
  assert.equal(loadConfig({ ...OIDC, STEWARD_OIDC_ISSUER: 'http://127.0.0.1:9000', STEWARD_PUBLIC_URL: 'http://127.0.0.1:8470' }).publicUrl, 'http://127.0.0.1:8470');
});

test('the client secret comes from a file when STEWARD_OIDC_CLIENT_SECRET_FILE names one; both at once, or an unreadable file, is refused', async () => {
  const fs = await import('node:fs/promises');
  const os = await import('node:os');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-config-'));
  try {
    const file = path.join(dir, 'secret');
    await fs.writeFile(file, 'from-the-file\n', { mode: 0o600 });
    const { STEWARD_OIDC_CLIENT_SECRET: _inline, ...rest } = OIDC;
    assert.equal(loadConfig({ ...rest, STEWARD_OIDC_CLIENT_SECRET_FILE: file }).oidcClientSecret, 'from-the-file');
    assert.throws(() => loadConfig({ ...OIDC, STEWARD_OIDC_CLIENT_SECRET_FILE: file }), /not both/);
    assert.throws(() => loadConfig({ ...rest, STEWARD_OIDC_CLIENT_SECRET_FILE: path.join(dir, 'missing') }), /STEWARD_OIDC_CLIENT_SECRET_FILE: cannot read .*ENOENT/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('STEWARD_AUDIT_LANES sets the security lake writer\'s lanes; anything but 1 to 16 stops the start naming it', () => {
  // Threat: a typo (`two`, `0`) that silently writes on no lane, or a huge number that opens a connection per lane.
  assert.equal(loadConfig({ STEWARD_HOME: '/srv/steward' }).auditLanes, undefined);
  assert.equal(loadConfig({ STEWARD_HOME: '/srv/steward', STEWARD_AUDIT_LANES: '4' }).auditLanes, 4);
  for (const bad of ['0', 'two', '1.5', '17', '-1']) {
    assert.throws(
      () => loadConfig({ STEWARD_HOME: '/srv/steward', STEWARD_AUDIT_LANES: bad }),
      (e: unknown) => isStewardError(e) && e.code === 'STEWARD_E_CONFIG' && /STEWARD_AUDIT_LANES: must be a whole number from 1 to 16/.test(e.message),
      bad,
    );
  }
});
