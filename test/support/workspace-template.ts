/**
 * A prepared embedded workspace, made once by the built binary and copied for
 * each test that needs one, instead of each test creating its own: a new
 * workspace costs seconds of CPU (PGlite's initdb in WebAssembly, then the
 * migrations; `steward demo` adds the demo lake), copying it a few
 * milliseconds. For tests whose subject is not the creation itself; a test of
 * what a first command does to an empty `STEWARD_HOME` keeps starting from
 * nothing.
 *
 * The template is a closed workspace: no lock, no server.json, no daemon log,
 * and no token (an embedded command creates none).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { steward } from './cli.js';

export interface WorkspaceTemplate {
  /** A copy of the template at `home` (which must not exist yet); made on first use. Returns `home`. */
  copyTo(home: string): Promise<string>;
}

/**
 * `commands` (default: one `steward status`, which creates and migrates the
 * store) run in order on `<dir>/template`, on first use only.
 */
export function workspaceTemplate(dir: string, commands: readonly (readonly string[])[] = [['status']]): WorkspaceTemplate {
  const template = path.join(dir, 'template');
  let made: Promise<void> | undefined;
  const make = async (): Promise<void> => {
    for (const args of commands) {
      const r = await steward(args, { STEWARD_HOME: template });
      if (r.code !== 0) throw new Error(`preparing the workspace template: steward ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    }
  };
  return {
    async copyTo(home) {
      made ??= make();
      await made;
      // fs.cp keeps file and folder modes, so the copy is as private as the template.
      await fs.cp(template, home, { recursive: true, errorOnExist: true, force: false });
      return home;
    },
  };
}
