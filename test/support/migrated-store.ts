/**
 * A migrated, empty embedded store (a PGlite data folder), made once per
 * machine and schema and copied into a test workspace's `<home>/pgdata`
 * before the workspace opens. Creating a store costs seconds of CPU (initdb in
 * WebAssembly, then every migration) and dozens of test files each created
 * one; a copy costs milliseconds, and the workspace then opens as any existing
 * one does. Only the store is shared: no catalog, lake or token is in it, so
 * nothing a test makes can leak into another.
 *
 * The copy lives in the temporary folder under a name made of a hash of the
 * migrations, the store driver and PGlite's version, so a schema change makes
 * a new one. Test files running at once race to make it; the first rename
 * wins and the others use the winner's.
 *
 * Tests whose subject is creating a store (its modes, its first open) do not
 * use it.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openPglite } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrations.js';
import { tightenModes } from '../../src/store/workspace.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** What the migrated store depends on: the migrations, the driver that runs them, and PGlite. */
async function schemaKey(): Promise<string> {
  const migrations = (await fs.readdir(path.join(SRC, 'store', 'migrations'))).sort().map((f) => path.join('store', 'migrations', f));
  const hash = createHash('sha256');
  for (const f of ['store/migrations.ts', 'store/db.ts', ...migrations]) hash.update(f).update(await fs.readFile(path.join(SRC, f)));
  hash.update(await fs.readFile(path.join(SRC, '..', 'node_modules', '@electric-sql', 'pglite', 'package.json')));
  return hash.digest('hex').slice(0, 16);
}

async function make(dir: string): Promise<void> {
  const building = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-test-store-building-'));
  try {
    const db = await openPglite(path.join(building, 'pgdata'));
    try {
      await migrate(db);
    } finally {
      await db.close();
    }
    // As private as a store the workspace creates (it narrows PGlite's 0666 files too); copies keep these modes.
    await tightenModes(building);
    await fs.rename(building, dir);
  } catch (e) {
    await fs.rm(building, { recursive: true, force: true });
    const code = (e as NodeJS.ErrnoException).code;
    // Another test file renamed its copy into place first: use that one.
    if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw e;
  }
}

let ready: Promise<string> | undefined;

/** The folder holding the migrated store (`<it>/pgdata`), made on first use. */
function migratedStore(): Promise<string> {
  ready ??= (async () => {
    const dir = path.join(os.tmpdir(), `steward-test-store-${await schemaKey()}`);
    const exists = await fs.stat(path.join(dir, 'pgdata')).then(
      () => true,
      () => false,
    );
    if (!exists) await make(dir);
    return dir;
  })();
  return ready;
}

/** Puts a migrated, empty store at `<home>/pgdata` (which must not exist yet). */
export async function seedMigratedStore(home: string): Promise<void> {
  const dir = await migratedStore();
  await fs.mkdir(home, { recursive: true, mode: 0o700 });
  await fs.cp(path.join(dir, 'pgdata'), path.join(home, 'pgdata'), { recursive: true, errorOnExist: true, force: false });
}
