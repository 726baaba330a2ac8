/**
 * CLI start-up benchmark: how long a user waits for an answer.
 *
 *     npm run build && node --import tsx bench/cli.bench.ts [--quick]
 *
 * Every figure is a whole process, from spawn to exit, of the built
 * `bin/steward.js` on a demo workspace, measured in rounds that interleave the
 * commands with `node -e 0` so that all of them meet the same machine load.
 * Reported: the median of each, and its ratio to `node -e 0` of the same run
 * (the figure to compare across machines). Goals (issue #11, part 3), as
 * medians: `--version` ≤ 150 ms, `authorize` through a running server
 * ≤ 200 ms, embedded `authorize` ≤ 700 ms. Embedded `authorize` is timed both
 * ways a user meets it: answered from the world cache that every clean close
 * leaves (the usual case: any earlier command, or a stopped server, wrote
 * it), and with the store opened (no cache: after a crash, or a due timer).
 * Each `authorize` asks about a different table, so nothing is answered from
 * a warm memo that a user would not have.
 * Results go to bench/results/cli.json (cli-quick.json with --quick).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'steward.js');

interface Row {
  readonly name: string;
  readonly medianMs: number;
  readonly ratioToNode: number;
  readonly goalMs: number | null;
  readonly met: boolean | null;
}

export interface CliBenchResult {
  readonly machine: { cpu: string; cores: number; node: string; date: string; loadAverage: number[] };
  readonly rounds: number;
  readonly nodeBaselineMs: number;
  readonly rows: readonly Row[];
}

/** Wall time of one process, in milliseconds; fails loudly when the command fails. */
function timed(args: readonly string[], env: NodeJS.ProcessEnv): number {
  const started = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (r.status !== 0) throw new Error(`\`node ${args.join(' ')}\` exited ${r.status}: ${r.stderr}`);
  return ms;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const RESOURCES = ['lake.claims.patient_claims', 'lake.finance.revenue', 'lake.claims.patient_claims.ssn', 'lake.finance.revenue.amount', 'lake.claims', 'lake.finance', 'lake'];
const PRINCIPALS = ['alice', 'bob', 'carol', 'dana', 'erin', 'north_admin'];

/** A different question each call: principal × resource, cycling. */
function authorizeArgs(i: number): string[] {
  return [bin, 'authorize', '--principal', PRINCIPALS[i % PRINCIPALS.length] as string, '--action', 'SELECT', '--resource', RESOURCES[i % RESOURCES.length] as string, '--json'];
}

async function startServer(env: NodeJS.ProcessEnv): Promise<() => Promise<void>> {
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`the server did not start: ${out}`)), 60_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (/listening on http/.test(out)) {
        clearTimeout(timer);
        ok();
      }
    });
    child.on('exit', (code) => fail(new Error(`the server exited ${code}: ${out}`)));
  });
  return () =>
    new Promise<void>((ok) => {
      child.once('exit', () => ok());
      child.kill('SIGTERM');
    });
}

export async function run(options: { quick?: boolean; out?: string | null; log?: (line: string) => void } = {}): Promise<CliBenchResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const rounds = options.quick === true ? 5 : 15;
  const home = mkdtempSync(join(tmpdir(), 'steward-cli-bench-'));
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], HOME: process.env['HOME'], STEWARD_HOME: join(home, 'ws') };
  try {
    log('creating the demo workspace');
    timed([bin, 'demo'], env);
    // Two phases, each against its own `node -e 0` rounds: the small commands beside a running
    // server, then the embedded ones (whose store opening would otherwise load the machine the
    // small ones are timed on).
    const samples: Record<string, number[]> = { node1: [], version: [], server: [], node2: [], embedded: [], opened: [] };
    const push = (key: string, ms: number): void => void samples[key]?.push(ms);
    let q = 0;
    log('starting a server on the workspace');
    const stop = await startServer(env);
    try {
      log(`${rounds} rounds: node -e 0, --version, authorize through the server`);
      for (let r = 0; r < rounds; r++) {
        push('node1', timed(['-e', '0'], env));
        push('version', timed([bin, '--version'], env));
        push('server', timed(authorizeArgs(q++), env));
      }
    } finally {
      await stop();
    }
    log(`${rounds} rounds: node -e 0, embedded authorize from the world cache, embedded authorize opening the store`);
    const ws = env['STEWARD_HOME'] as string;
    const cache = join(ws, 'world-cache.json');
    const spooled = (): number => (existsSync(join(ws, 'decision-spool')) ? readdirSync(join(ws, 'decision-spool')).length : 0);
    for (let r = 0; r < rounds; r++) {
      push('node2', timed(['-e', '0'], env));
      // Each opened command's clean close writes the cache again; a cached answer is spooled, which proves the path.
      if (!existsSync(cache)) throw new Error('no world cache after a clean close');
      const before = spooled();
      push('embedded', timed(authorizeArgs(q++), env));
      if (spooled() !== before + 1) throw new Error('the embedded authorize did not answer from the world cache');
      rmSync(cache);
      push('opened', timed(authorizeArgs(q++), env));
    }
    const row = (name: string, key: string, baseKey: string, goalMs: number | null): Row => {
      const m = median(samples[key] ?? []);
      const base = median(samples[baseKey] ?? []);
      return { name, medianMs: Math.round(m), ratioToNode: Math.round((m / base) * 100) / 100, goalMs, met: goalMs === null ? null : m <= goalMs };
    };
    const result: CliBenchResult = {
      machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, date: new Date().toISOString(), loadAverage: loadavg().map((x) => Math.round(x * 100) / 100) },
      rounds,
      nodeBaselineMs: Math.round(median([...(samples['node1'] ?? []), ...(samples['node2'] ?? [])])),
      rows: [
        row('`node -e 0` (baseline)', 'node1', 'node1', null),
        row('`steward --version`', 'version', 'node1', 150),
        row('`steward authorize` through a running server', 'server', 'node1', 200),
        row('`steward authorize` embedded, from the world cache (any earlier clean close)', 'embedded', 'node2', 700),
        row('`steward authorize` embedded, opening the store (no cache: after a crash or a due timer)', 'opened', 'node2', null),
      ],
    };
    const out = options.out === undefined ? join(root, 'bench', 'results', options.quick === true ? 'cli-quick.json' : 'cli.json') : options.out;
    if (out !== null) {
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    }
    process.stdout.write(`${markdown(result)}\n`);
    return result;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

function markdown(r: CliBenchResult): string {
  const goal = (x: Row): string => (x.goalMs === null ? '' : `≤ ${x.goalMs} ms: ${x.met === true ? 'met' : 'NOT met'}`);
  return [
    `Whole processes, median of ${r.rounds} interleaved rounds; load average ${r.machine.loadAverage.join(' ')}.`,
    '',
    '| command | median | × `node -e 0` | goal |',
    '|---|---|---|---|',
    ...r.rows.map((x) => `| ${x.name} | ${x.medianMs} ms | ${x.ratioToNode} | ${goal(x)} |`),
  ].join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run({ quick: process.argv.includes('--quick') });
}
