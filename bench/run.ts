/**
 * `npm run bench [-- --quick] [-- only=policy,gateway]`: runs every
 * `bench/*.bench.ts` in its own process (so heap figures do not bleed between
 * benchmarks), one after the other so they do not compete for the two cores,
 * and copies each one's printed summary into the README between the bench
 * markers. Raw figures stay in `bench/results/<name>.json`.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.find((a) => a.startsWith('only='))?.slice(5).split(',');

const benches = fs
  .readdirSync(path.join(root, 'bench'))
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.replace(/\.bench\.ts$/, ''))
  .filter((name) => only === undefined || only.includes(name))
  .sort();

const sections: string[] = [];
let failed = 0;
for (const name of benches) {
  process.stderr.write(`\n== bench ${name}${quick ? ' (quick)' : ''}\n`);
  const r = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=16384', '--import', 'tsx', path.join('bench', `${name}.bench.ts`), ...(quick ? ['--quick'] : [])], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  process.stdout.write(r.stdout ?? '');
  if (r.status !== 0) {
    failed++;
    sections.push(`### ${name}\n\nfailed (exit ${r.status ?? r.signal}); see the run's output.`);
    continue;
  }
  sections.push(`### ${name}\n\n${(r.stdout ?? '').trim()}`);
}

const header = `Run on ${os.cpus()[0]?.model ?? 'unknown CPU'} (${os.cpus().length} cores), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}${quick ? ', quick mode (smaller worlds)' : ''}. Reproduce with \`npm run bench\`; raw figures in \`bench/results/\`.`;
const block = `<!-- bench:start -->\n${header}\n\n${sections.join('\n\n')}\n<!-- bench:end -->`;
const readmePath = path.join(root, 'README.md');
const readme = fs.readFileSync(readmePath, 'utf8');
const updated = /<!-- bench:start -->[\s\S]*<!-- bench:end -->/.test(readme)
  ? readme.replace(/<!-- bench:start -->[\s\S]*<!-- bench:end -->/, block)
  : `${readme.trimEnd()}\n\n## Benchmark results\n\n${block}\n`;
if (only === undefined) fs.writeFileSync(readmePath, updated);
process.exitCode = failed === 0 ? 0 : 1;
