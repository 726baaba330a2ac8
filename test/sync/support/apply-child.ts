/**
 * Child process for the kill test: applies one variant of the small world to
 * the warehouse in small batches. argv: variant prefix loginPrefix envVar [target].
 * Prints `ready` just before applying, so the parent can kill it mid-apply.
 */
import { harness, smallWorld, targetDef } from './small-world.js';

const [variant, prefix, login, envVar, target] = process.argv.slice(2) as ['A' | 'B', string, string, string, string | undefined];
const h = harness(smallWorld({ tables: 40, variant }));
await h.sync.targets.put(targetDef(target ?? 'kill', prefix, login, envVar, { batchSize: 7 }));
process.stdout.write('ready\n');
const r = await h.sync.apply(target ?? 'kill');
process.stdout.write(`applied ${r.applied}\n`);
