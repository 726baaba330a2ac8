/**
 * The demo workspace's access configuration (examples/demo-access/access.yaml):
 * permission set `read-with-pii`, an eligibility policy for group `analysts`
 * on `lake.claims` (up to 8 hours, with approval) and an approval policy
 * naming group `privacy-officers`. Installing it only adds what is missing.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import type { Services } from '../server/services.js';
import type { Actor } from '../server/actor.js';

/** Shipped with the package: two folders up from both src/access and dist/access. */
export const DEMO_ACCESS_FILE = fileURLToPath(new URL('../../examples/demo-access/access.yaml', import.meta.url));

/** Adds the demo's access configuration; returns true when anything changed. */
export async function installDemoAccess(services: Pick<Services, 'access'>, actor: Actor): Promise<boolean> {
  if (services.access === undefined) return false;
  const doc = YAML.parse(await readFile(DEMO_ACCESS_FILE, 'utf8')) as unknown;
  return services.access.mergeConfig({ principal: actor.principal, admin: actor.role === 'admin' }, doc);
}
