/**
 * Fresh temporary folders for one test file, each removed once the file's
 * tests are done (registered with `after` when the file loads).
 */
import { after } from 'node:test';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export function tempDirs(prefix: string): () => Promise<string> {
  const made: string[] = [];
  after(async () => {
    for (const d of made) await fs.rm(d, { recursive: true, force: true });
  });
  return async () => {
    const d = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
    made.push(d);
    return d;
  };
}
