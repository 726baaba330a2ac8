/**
 * `steward plan|apply|export`: policy as code. Files are read here and sent
 * as text; the server parses them, so errors name file, line and column the
 * same way whichever transport carries them.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { StewardError } from '../errors.js';
import { emit } from './output.js';
import { standalone, withClient } from './run.js';
import { exportTrinoRules } from './warehouse-commands.js';
import type { PolicySource } from '../code/load.js';

/** A YAML file, or every policy file below a folder, as text for the server to parse. */
export async function readPolicySources(target: string): Promise<PolicySource[]> {
  const stat = await fs.stat(target).catch(() => {
    throw new StewardError('STEWARD_E_NOT_FOUND', `policy path \`${target}\` does not exist`);
  });
  const { listPolicyFiles } = await import('../code/load.js');
  const files = stat.isDirectory() ? (await listPolicyFiles(target)).map((f) => path.join(target, f)) : [target];
  if (files.length === 0) throw new StewardError('STEWARD_E_NOT_FOUND', `no policy files under \`${target}\``);
  return Promise.all(files.map(async (f) => ({ file: path.relative(process.cwd(), f) || f, text: await fs.readFile(f, 'utf8') })));
}

interface PlanJson {
  changes: number;
  summary: Record<string, { added: number; changed: number; removed: number }>;
  text: string;
}

export function registerCodeCommands(program: Command): void {
  program
    .command('plan <path>')
    .description('show what applying a policy file or folder would change')
    .action(async (target: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const files = await readPolicySources(target);
        const r = await client.call<PlanJson>('POST', '/v1/policy/plan', { files });
        emit(out, r, () => r.text);
      }),
    );

  program
    .command('apply <path>')
    .description('apply a policy file or folder atomically')
    .action(async (target: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const files = await readPolicySources(target);
        const r = await client.call<PlanJson & { version: number }>('POST', '/v1/policy/apply', { files });
        emit(out, r, () => (r.changes === 0 ? 'No changes.' : `${r.text}\n\nApplied ${r.changes} change(s); policy version ${r.version}.`));
      }),
    );

  program
    .command('export [kind]')
    .description('write the current policy as YAML (round-trips through apply with an empty plan); `export trino-rules --catalog C` writes Trino access rules')
    .option('--out <file>', 'write to this file instead of stdout')
    .option('--catalog <catalog>', 'trino-rules: the catalog to export')
    .option('--trino-catalog <name>', 'trino-rules: the catalog name in Trino (default: the same)')
    .action(async (kind: string | undefined, opts: { out?: string; catalog?: string; trinoCatalog?: string }, cmd: Command) => {
      if (kind === 'trino-rules') return exportTrinoRules(opts, cmd);
      if (kind !== undefined && kind !== 'policy') return standalone(cmd, async () => {
        throw new StewardError('STEWARD_E_VALIDATION', `unknown export \`${kind}\` (expected \`policy\` or \`trino-rules\`)`);
      });
      return withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ yaml: string }>('GET', '/v1/policy/export');
        if (opts.out !== undefined) {
          await fs.writeFile(opts.out, r.yaml);
          emit(out, { written: opts.out }, () => `wrote ${opts.out}`);
        } else if (out.json) {
          emit(out, r, () => r.yaml);
        } else {
          process.stdout.write(r.yaml);
        }
      });
    });
}
