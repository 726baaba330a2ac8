/**
 * A command loads only what it needs (issue 11): talking to a server must
 * not pay for the server stack, the validation library, the YAML parser or
 * the embedded store. Checked on the built binary with a module-load hook,
 * so a static import added anywhere on the command table's path fails here.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { steward } from '../support/cli.js';

/** Packages a client-side command has no use for. */
const HEAVY = ['zod', 'yaml', 'hono', '@hono/node-server', 'jose', '@electric-sql/pglite', '@duckdb/node-api', 'apache-arrow', 'pg', 'nodemailer', 'openid-client'];

let dir = '';
let hookEnv: NodeJS.ProcessEnv = {};

/** Packages (by name) whose files were loaded, from the hook's `LOAD <url>` lines. */
function loadedPackages(stderr: string): Set<string> {
  const out = new Set<string>();
  for (const m of stderr.matchAll(/^LOAD .*\/node_modules\/((?:@[^/]+\/)?[^/]+)\//gm)) out.add(m[1] as string);
  return out;
}

describe('what a command loads', () => {
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'steward-startup-'));
    const hook = path.join(dir, 'hook.mjs');
    await writeFile(hook, "export async function load(url, context, next) { if (!url.startsWith('node:')) process.stderr.write(`LOAD ${url}\\n`); return next(url, context); }\n");
    const register = path.join(dir, 'register.mjs');
    await writeFile(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hook).href)});\n`);
    hookEnv = { NODE_OPTIONS: `--import=${pathToFileURL(register).href}`, STEWARD_HOME: path.join(dir, 'home') };
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('the hook sees packages load (the check can fail)', async () => {
    // Reading a dashboards file is one of the commands that needs the YAML parser and the schema.
    const r = await steward(['--url', 'http://127.0.0.1:9', '--token', 'stw_x_y', 'embed', 'plan', path.join(dir, 'missing.yaml')], hookEnv);
    assert.notEqual(r.code, 0);
    const loaded = loadedPackages(r.stderr);
    assert.ok(loaded.has('yaml') && loaded.has('zod'), r.stderr.slice(0, 500));
  });

  // Threat to the goal: one eager import of the server stack costs every call to a server ~100 ms (issue 11's 200 ms).
  it('a command sent to a server loads no server, store, schema or YAML package', async () => {
    const r = await steward(['--url', 'http://127.0.0.1:9', '--token', 'stw_x_y', 'authorize', '--principal', 'alice', '--action', 'SELECT', '--resource', 'lake.claims.patient_claims'], hookEnv);
    assert.notEqual(r.code, 0, 'nothing listens on port 9');
    const loaded = loadedPackages(r.stderr);
    assert.ok(loaded.has('commander'), r.stderr.slice(0, 500));
    assert.deepEqual(HEAVY.filter((p) => loaded.has(p)), []);
  });

  it('--help loads no server, store, schema or YAML package', async () => {
    const r = await steward(['--help'], hookEnv);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(HEAVY.filter((p) => loadedPackages(r.stderr).has(p)), []);
  });
});
