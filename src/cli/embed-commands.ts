/**
 * `steward embed …`: embedded analytics. `token` mints an embed token and
 * prints the URL of the dashboard for that session; `plan`, `apply` and
 * `export` keep dashboards as code (a YAML file of `dashboards:`).
 */
import type { Command } from 'commander';
import { StewardError } from '../errors.js';
import { stableJson } from '../policy/changes.js';
import type { Dashboard } from '../embed/dashboard-spec.js';
import { emit } from './output.js';
import { enc, readInput, withClient } from './run.js';

interface MintJson {
  token: string;
  url: string;
  expiresAt: string;
  jti: string;
}

interface RlsJson {
  dialect: string;
  policies: { dataset: string; table: string; expressible: boolean; statements: string[]; message?: string }[];
}

interface Listed {
  dashboards: { id: string; dashboard: Dashboard }[];
}

/** `key=value` (the value may itself hold `=`); repeated `--tag` options collect into one object. */
function tagOption(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = value.indexOf('=');
  if (at <= 0) throw new StewardError('STEWARD_E_VALIDATION', `--tag: \`${value}\` is not \`key=value\``, { details: [{ path: '--tag', message: 'not key=value' }] });
  const key = value.slice(0, at).trim();
  if (Object.hasOwn(previous, key)) throw new StewardError('STEWARD_E_VALIDATION', `--tag: \`${key}\` is given twice; join several values with the rule's delimiter`, { details: [{ path: '--tag', message: 'duplicate' }] });
  return { ...previous, [key]: value.slice(at + 1) };
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** The YAML parser and the dashboard schema load only for the commands that read a file (zod and yaml cost every other command ~40 ms). */
async function readDashboards(file: string): Promise<Record<string, Dashboard>> {
  const [{ parse: parseYaml }, { DashboardsDocumentSchema }, { zodToStewardError }] = await Promise.all([import('yaml'), import('../embed/dashboard-spec.js'), import('../server/zod-error.js')]);
  let doc: unknown;
  try {
    doc = parseYaml(await readInput(file), { prettyErrors: true });
  } catch (e) {
    throw new StewardError('STEWARD_E_PARSE', `${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  const parsed = DashboardsDocumentSchema.safeParse(doc);
  if (!parsed.success) throw zodToStewardError(file, parsed.error);
  return parsed.data.dashboards;
}

/** What applying `wanted` would do, given the dashboards stored now: per id, create, change or keep. Stored dashboards not in the file are left alone. */
function planOf(wanted: Record<string, Dashboard>, stored: Listed['dashboards']): { id: string; action: 'create' | 'change' | 'keep' }[] {
  const now = new Map(stored.map((d) => [d.id, stableJson(d.dashboard)]));
  return Object.entries(wanted).map(([id, d]) => ({ id, action: !now.has(id) ? 'create' : now.get(id) === stableJson(d) ? 'keep' : 'change' }));
}

export function registerEmbedCommands(program: Command): void {
  const embed = program.command('embed').description('embedded analytics: embed tokens and dashboards as code');

  embed
    .command('token')
    .description('mint an embed token for one dashboard and session, and print the URL that opens it')
    .requiredOption('--dashboard <id>', 'dashboard id')
    .option('--user <id>', "the viewer's id in your application (recorded in the audit log)", 'preview')
    .option('--tag <key=value>', 'a session tag (repeat for several)', tagOption, {})
    .option('--origin <origin>', 'an origin that may frame the dashboard (repeat for several; default: the server itself)', collect)
    .option('--ttl <seconds>', 'lifetime in seconds, at most 900', (v) => Number(v))
    .action(async (o: { dashboard: string; user: string; tag: Record<string, string>; origin?: string[]; ttl?: number }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<MintJson>('POST', '/v1/embed/tokens', {
          dashboard: o.dashboard,
          user: o.user,
          tags: o.tag,
          ...(o.origin === undefined ? {} : { origins: o.origin }),
          ...(o.ttl === undefined ? {} : { ttlSeconds: o.ttl }),
        });
        emit(out, r, () => r.url);
      }),
    );

  embed
    .command('rls')
    .description("print the dashboard's row rules as warehouse row-level security for an application role")
    .requiredOption('--dashboard <id>', 'dashboard id')
    .requiredOption('--role <role>', "the application's warehouse role (not a role a sync target manages)")
    .option('--dialect <dialect>', 'postgres or redshift', 'postgres')
    .action(async (o: { dashboard: string; role: string; dialect: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<RlsJson>('GET', `/v1/embed/dashboards/${enc(o.dashboard)}/warehouse-policy?role=${enc(o.role)}&dialect=${enc(o.dialect)}`);
        emit(out, r, () => r.policies.map((p) => (p.expressible ? p.statements.map((st) => `${st};`).join('\n') : `-- ${p.message}`)).join('\n'));
      }),
    );

  embed
    .command('plan <file>')
    .description('show what applying a dashboards file would change')
    .action(async (file: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const wanted = await readDashboards(file);
        const plan = planOf(wanted, (await client.call<Listed>('GET', '/v1/embed/dashboards')).dashboards);
        emit(out, { dashboards: plan }, () => plan.map((p) => `${p.action === 'create' ? '+' : p.action === 'change' ? '~' : '='} dashboard ${p.id}`).join('\n'));
      }),
    );

  embed
    .command('apply <file>')
    .description('create or replace the dashboards of a file (others are left alone)')
    .action(async (file: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const wanted = await readDashboards(file);
        const plan = planOf(wanted, (await client.call<Listed>('GET', '/v1/embed/dashboards')).dashboards);
        for (const p of plan) if (p.action !== 'keep') await client.call('PUT', `/v1/embed/dashboards/${enc(p.id)}`, wanted[p.id]);
        const changed = plan.filter((p) => p.action !== 'keep').length;
        emit(out, { dashboards: plan, changed }, () => (changed === 0 ? 'No changes.' : `Applied ${changed} dashboard(s).`));
      }),
    );

  embed
    .command('export')
    .description('print every dashboard as a dashboards file')
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const listed = (await client.call<Listed>('GET', '/v1/embed/dashboards')).dashboards;
        const doc = { apiVersion: 'steward/v1', dashboards: Object.fromEntries(listed.map((d) => [d.id, d.dashboard])) };
        const { stringify: stringifyYaml } = await import('yaml');
        emit(out, doc, () => stringifyYaml(doc).trimEnd());
      }),
    );
}
