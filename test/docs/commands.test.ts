/**
 * Every shell example in README.md and docs/*.md runs as written.
 *
 * Each ```sh block is run by bash, in file order (README first, then docs/ by
 * name), against one fresh demo workspace, through the built binary: `steward`
 * on the PATH and `node bin/steward.js` both run bin/steward.js. A `steward
 * serve` runs on the workspace meanwhile, as after `npm start`, so commands go
 * through it (an embedded command opens the store each time: ~3 s). Blocks share
 * the workspace (a later block may use what an earlier one created), not shell
 * variables. The scratch folder they run in holds `trail.jsonl` (CloudTrail
 * records, for the security-lake examples).
 *
 * What a block may say about its commands:
 * - every command must exit 0, except one whose trailing comment starts with
 *   `refused` (`steward query … # refused, naming the guardrail`): that one
 *   must exit non-zero;
 * - `# …` lines right after a command are its expected stdout, line by line;
 *   a line ending in `...` or `…` matches any line that starts with the rest;
 * - other trailing comments are prose.
 *
 * A block that cannot run here (a server, a warehouse, the network, the test
 * suite itself) says so right above its fence with
 * `<!-- docs-test: skip REASON -->`; skipped blocks are reported, and a
 * command that is not a steward command in an unmarked block fails the test.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN } from '../support/cli.js';
import { seedMigratedStore } from '../support/migrated-store.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SKIP_MARK = /^<!--\s*docs-test:\s*skip\s+(.+?)\s*-->$/;
/** A command this test runs: steward, directly or as a variable's value (`id=$(steward …)`). */
const STEWARD_COMMAND = /^(?:[A-Za-z_][A-Za-z0-9_]*=\$\()?(?:steward|node bin\/steward\.js)(?:\s|$)/;

export interface DocCommand {
  /** 1-based line in the file. */
  readonly line: number;
  /** The shell text, continuation lines included. */
  readonly text: string;
  readonly refused: boolean;
  readonly expected: readonly string[];
}

export interface DocBlock {
  readonly file: string;
  readonly line: number;
  readonly skip?: string;
  readonly commands: readonly DocCommand[];
}

/** The ```sh blocks of a Markdown file, with their skip marks and commands. */
export function parseBlocks(file: string, markdown: string): DocBlock[] {
  const lines = markdown.split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*```sh\s*$/.test(lines[i] ?? '')) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end] ?? '')) end++;
    let prev = i - 1;
    while (prev >= 0 && (lines[prev] ?? '').trim() === '') prev--;
    const mark = SKIP_MARK.exec((lines[prev] ?? '').trim());
    blocks.push({ file, line: i + 1, ...(mark?.[1] === undefined ? {} : { skip: mark[1] }), commands: parseCommands(lines.slice(start, end), start + 1) });
    i = end;
  }
  return blocks;
}

function parseCommands(body: readonly string[], firstLine: number): DocCommand[] {
  const commands: { line: number; text: string; refused: boolean; expected: string[] }[] = [];
  let outputOf: (typeof commands)[number] | undefined;
  for (let i = 0; i < body.length; i++) {
    const raw = (body[i] ?? '').replace(/^ {0,3}/, '');
    if (raw.trim() === '') {
      outputOf = undefined;
      continue;
    }
    if (raw.startsWith('#')) {
      outputOf?.expected.push(raw.replace(/^# ?/, ''));
      continue;
    }
    const line = firstLine + i;
    const parts = [raw];
    while ((parts.at(-1) ?? '').endsWith('\\') && i + 1 < body.length) parts.push(body[++i] ?? '');
    const last = parts.at(-1) ?? '';
    const command = { line, text: parts.join('\n'), refused: /\s#\s*refused\b/i.test(last), expected: [] };
    commands.push(command);
    outputOf = command;
  }
  return commands;
}

/** Why actual stdout does not show the expected lines, or null. */
export function outputMismatch(expected: readonly string[], stdout: string): string | null {
  const actual = stdout.split('\n').map((l) => l.trimEnd());
  for (const [i, want] of expected.entries()) {
    const got = actual[i];
    const prefix = /(\.\.\.|…)$/.test(want) ? want.replace(/\s*(\.\.\.|…)$/, '') : undefined;
    const ok = got !== undefined && (prefix === undefined ? got === want.trimEnd() : got.startsWith(prefix));
    if (!ok) return `line ${i + 1}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got ?? '(no line)')}`;
  }
  return null;
}

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a block's commands in one bash, each with its own stdout, stderr and exit code. */
async function runBlock(block: DocBlock, cwd: string, env: NodeJS.ProcessEnv): Promise<Ran[]> {
  const out = await fs.mkdtemp(path.join(cwd, '.run-'));
  const script = block.commands.map((c, i) => `{ ${c.text}\n} >"${out}/${i}.out" 2>"${out}/${i}.err" </dev/null; echo $? >"${out}/${i}.rc"`).join('\n');
  await new Promise<void>((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      // A block bash cannot even parse shows up as commands with no exit code.
      if (code !== 0) process.stderr.write(`bash exited ${code} running ${block.file}:${block.line}: ${stderr}\n`);
      resolve();
    });
  });
  const read = (f: string): Promise<string> => fs.readFile(path.join(out, f), 'utf8').catch(() => '');
  return Promise.all(
    block.commands.map(async (_c, i) => {
      const rc = (await read(`${i}.rc`)).trim();
      return { code: rc === '' ? -1 : Number(rc), stdout: await read(`${i}.out`), stderr: rc === '' ? 'did not run (see the bash error above)' : await read(`${i}.err`) };
    }),
  );
}

/** `steward serve` on the workspace, resolved once it listens (and has written server.json). */
function startServer(cwd: string, env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'serve', '--host', '127.0.0.1', '--port', '0'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`steward serve did not start: ${out}`)), 60_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (/listening on http/.test(out)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`steward serve exited ${code}: ${out}`)));
  });
}

describe('the docs’ command blocks', () => {
  let scratch: string;
  let env: NodeJS.ProcessEnv;
  let blocks: DocBlock[];
  let server: ChildProcess | undefined;

  before(async () => {
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-docs-'));
    const shims = path.join(scratch, '.bin');
    await fs.mkdir(shims);
    await fs.writeFile(path.join(shims, 'steward'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`, { mode: 0o755 });
    // `node bin/steward.js` as the README writes it, from a folder of our own.
    await fs.symlink(path.join(ROOT, 'bin'), path.join(scratch, 'bin'));
    await fs.copyFile(path.join(ROOT, 'test', 'audit', 'golden', 'cloudtrail.input.jsonl'), path.join(scratch, 'trail.jsonl'));
    env = {
      PATH: `${shims}:${path.dirname(process.execPath)}:${process.env['PATH'] ?? ''}`,
      HOME: process.env['HOME'],
      STEWARD_HOME: path.join(scratch, 'home'),
    };
    const docs = (await fs.readdir(path.join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).sort();
    blocks = [];
    for (const f of ['README.md', ...docs.map((d) => `docs/${d}`)]) blocks.push(...parseBlocks(f, await fs.readFile(path.join(ROOT, f), 'utf8')));
    // A migrated store to start from (creating one is not what the docs show), the server on it, then
    // `steward demo` through the server: an embedded demo would open the store once more.
    await seedMigratedStore(env['STEWARD_HOME'] as string);
    server = await startServer(scratch, env);
    const demo = await runBlock({ file: '(setup)', line: 0, commands: [{ line: 0, text: 'steward demo', refused: false, expected: [] }] }, scratch, env);
    assert.equal(demo[0]?.code, 0, demo[0]?.stderr);
  });

  after(async () => {
    if (server !== undefined && server.exitCode === null) {
      const exited = new Promise((r) => server?.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    await fs.rm(scratch, { recursive: true, force: true });
  });

  // Failure: a reader copies an example from the docs and it does not run, or prints something else than the docs say.
  it('runs every example as written, and each shows what the docs say', { timeout: 300_000 }, async (t) => {
    const failures: string[] = [];
    for (const block of blocks) {
      const where = `${block.file}:${block.line}`;
      if (block.skip !== undefined) {
        t.diagnostic(`skipped ${where}: ${block.skip}`);
        continue;
      }
      const foreign = block.commands.filter((c) => !STEWARD_COMMAND.test(c.text));
      if (foreign.length > 0) {
        failures.push(...foreign.map((c) => `${block.file}:${c.line}: \`${c.text.split('\n')[0]}\` is not a steward command; mark the block <!-- docs-test: skip REASON --> if it cannot run here`));
        continue;
      }
      const ran = await runBlock(block, scratch, env);
      block.commands.forEach((c, i) => {
        const r = ran[i] as Ran;
        const at = `${block.file}:${c.line} \`${c.text.split('\n')[0]}\``;
        if (c.refused && r.code === 0) failures.push(`${at}: the docs say it is refused, but it exited 0`);
        if (!c.refused && r.code !== 0) failures.push(`${at}: exited ${r.code}: ${r.stderr.trim().slice(0, 400)}`);
        const mismatch = outputMismatch(c.expected, r.stdout);
        if (mismatch !== null) failures.push(`${at}: output differs from the docs, ${mismatch}`);
      });
    }
    assert.deepEqual(failures, []);
  });
});

describe('the docs test reads its conventions', () => {
  // Failure: a block skipped without a mark, or output lines not compared, would let docs rot silently.
  it('parses skip marks, continuations, refusals and expected output', () => {
    const md = [
      '<!-- docs-test: skip needs a server -->',
      '```sh',
      'curl http://x',
      '```',
      '',
      '```sh',
      'steward a --x \\',
      '  --y   # refused, because',
      'steward b',
      '# OUT 1',
      '#   more ...',
      '',
      '# a preface, not output',
      'id=$(steward c --json | jq -r .id)',
      '```',
    ].join('\n');
    const [skipped, run] = parseBlocks('x.md', md);
    assert.equal(skipped?.skip, 'needs a server');
    assert.equal(run?.skip, undefined);
    assert.deepEqual(
      run?.commands.map((c) => [c.line, c.text, c.refused, c.expected]),
      [
        [7, 'steward a --x \\\n  --y   # refused, because', true, []],
        [9, 'steward b', false, ['OUT 1', '  more ...']],
        [14, 'id=$(steward c --json | jq -r .id)', false, []],
      ],
    );
    assert.ok(run?.commands.every((c) => STEWARD_COMMAND.test(c.text)));
    assert.equal(outputMismatch(['OUT 1', '  more ...'], 'OUT 1\n  more and more\n'), null);
    assert.match(outputMismatch(['OUT 1'], 'OUT 2\n') ?? '', /expected "OUT 1", got "OUT 2"/);
    assert.match(outputMismatch(['a', 'b'], 'a\n') ?? '', /got ""|no line/);
  });
});
